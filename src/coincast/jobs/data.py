"""Where training data comes from: a klines parquet file, or the serving store's closed candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from coincast.domain import Clock, ConfigError, Interval, InvalidRequest, UnknownSymbol
from coincast.store.base import CandleStore
from coincast.stream.predict import candles_to_klines


def read_klines(path: Path, symbol: str) -> pd.DataFrame:
    """Klines of ``symbol`` from a parquet file with the schema of ``klines_1h.parquet``.

    Raises:
        ConfigError: missing or unreadable file.
        UnknownSymbol: the symbol is not in the file (naming the ones that are).
    """
    if not path.is_file():
        raise ConfigError(f"training data {str(path)!r} not found")
    try:
        df = pd.read_parquet(path, filters=[("symbol", "==", symbol)])
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ConfigError(f"cannot read {str(path)!r} as a klines parquet file: {exc}") from exc
    if df.empty:
        present = sorted(pd.read_parquet(path, columns=["symbol"])["symbol"].astype(str).unique())
        raise UnknownSymbol(f"no {symbol} bars in {path.name}; it has {', '.join(present) or 'none'}")
    return df


async def store_klines(
    store: CandleStore, symbol: str, interval: Interval, *, limit: int, clock: Clock
) -> pd.DataFrame:
    """The newest ``limit`` closed candles of (symbol, interval) in the store, as klines.

    Raises:
        InvalidRequest: the store has fewer than two of them.
    """
    rows = await store.history(symbol, interval, start_ms=0, end_ms=clock.now_ms(), limit=limit)
    if len(rows) < 2:
        raise InvalidRequest(
            f"the store has {len(rows)} closed {interval.value} candles of {symbol}; too few to train on. "
            "Let the stream run longer, or set COINCAST_MODELS__TRAIN_DATA to a klines parquet file"
        )
    return candles_to_klines(rows)
