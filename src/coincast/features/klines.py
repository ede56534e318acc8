"""Reading and checking klines frames (the schema of ``klines_1h.parquet``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from coincast.domain import ConfigError, InvalidRequest, normalize_symbol
from coincast.features.bars import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

_NUMERIC = ("open", "high", "low", "close", "volume")


def read_klines(path: str | Path, symbols: Sequence[str] | None = None, *, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Read a klines Parquet file (optionally only ``symbols``, plus ``keep`` if present) and check it.

    Raises:
        ConfigError: the file does not exist or is not Parquet.
        InvalidRequest: the schema is wrong or a requested symbol is absent.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"klines file {str(p)!r} does not exist")
    try:
        frame = pd.read_parquet(p)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ConfigError(f"cannot read {str(p)!r} as Parquet: {exc}") from exc
    frame = normalise_klines(frame)
    if symbols:
        return select_symbols(frame, symbols, keep=keep)
    return frame


def select_symbols(frame: pd.DataFrame, symbols: Sequence[str], *, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of the given symbols (normalised like ``btcusdt`` -> ``BTCUSDT``) plus ``keep`` if present.

    Raises:
        InvalidRequest: a requested symbol has no rows, naming the symbols that do.
    """
    wanted = symbol_list(symbols)
    have = set(frame["symbol"].unique())
    missing = [s for s in wanted if s not in have]
    if missing:
        have_text = ", ".join(sorted(have))
        raise InvalidRequest(f"symbols {', '.join(missing)} not in the data; it has {have_text}")
    return frame[frame["symbol"].isin([*wanted, *keep])].reset_index(drop=True)


def symbol_list(symbols: Sequence[str]) -> list[str]:
    """Normalised symbols.

    Raises:
        InvalidRequest: a value cannot be a Binance symbol.
    """
    try:
        return [normalize_symbol(s) for s in symbols]
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def normalise_klines(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the schema and return a copy with canonical types, sorted by (symbol, open_time).

    ``open_time`` becomes datetime64[ms, UTC] (naive datetimes are taken as UTC; integers as
    epoch milliseconds), prices and volumes float64; optional columns are kept when present.

    Raises:
        InvalidRequest: missing columns, non-numeric prices, duplicate (symbol, open_time), no rows.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidRequest(
            f"klines need columns {', '.join(REQUIRED_COLUMNS)}; missing {', '.join(missing)} "
            f"(got {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise InvalidRequest("klines frame has no rows")
    keep = [*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in frame.columns)]
    out = frame.loc[:, keep].copy()
    out["symbol"] = out["symbol"].astype("str")
    out["open_time"] = to_utc_ms(out["open_time"])
    for col in (*_NUMERIC, *(c for c in OPTIONAL_COLUMNS if c in out.columns)):
        try:
            out[col] = pd.to_numeric(out[col], errors="raise").astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"klines column {col!r} must be numeric: {exc}") from exc
    if out[list(_NUMERIC)].isna().any().any():
        bad = [c for c in _NUMERIC if out[c].isna().any()]
        raise InvalidRequest(f"klines columns {', '.join(bad)} have null values")
    dup = out.duplicated(["symbol", "open_time"])
    if dup.any():
        row = out[dup].iloc[0]
        raise InvalidRequest(f"duplicate klines rows, e.g. {row['symbol']} at {row['open_time']}")
    return out.sort_values(["symbol", "open_time"], kind="stable").reset_index(drop=True)


def to_utc_ms(times: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(times):
        return pd.to_datetime(times, unit="ms", utc=True).dt.as_unit("ms")
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise InvalidRequest(f"klines column 'open_time' must be a timestamp or epoch ms, got {times.dtype}")
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_localize("UTC")
    return times.dt.tz_convert("UTC").dt.as_unit("ms")


def interval_ms_of(frame: pd.DataFrame) -> int:
    """The candle interval: the most common step between consecutive rows of a symbol.

    Raises:
        InvalidRequest: no symbol has two rows.
    """
    ms = frame["open_time"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    same = frame["symbol"].to_numpy()[1:] == frame["symbol"].to_numpy()[:-1]
    steps = np.diff(ms)[same]
    steps = steps[steps > 0]
    if steps.size == 0:
        raise InvalidRequest("cannot tell the candle interval: no symbol has two rows")
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])
