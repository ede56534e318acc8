"""Replay recorded trades or candles through the live pipeline at a chosen speed.

Inputs:

* trades Parquet (``trade_id, price, qty, time, is_buyer_maker`` [, ``symbol``]) as in the shared
  ``trades_btcusdt.parquet``; played trade by trade;
* candles Parquet in the lake schema (``symbol, open_time, open, high, low, close, volume``) or
  any CSV :mod:`coincast.sources.files` reads. Each candle becomes four trades, at the open, a
  third, two thirds and the last millisecond of its interval, priced open, low/high (in the
  order that matches the candle's direction) and close, a quarter of the volume each, so the
  aggregator rebuilds the same OHLC and volume.

Pacing: ``speed`` recorded seconds per real second (60 = one recorded minute per second); 0
plays as fast as the consumer takes it. The watermark is the replay's virtual time; once the
file is exhausted it moves :data:`END_ADVANCE_MS` ahead, announced by one heartbeat batch per
symbol, so the last minute's candles close.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from coincast.domain import Clock, DeadLetter, Interval, InvalidRequest, TradeBatch, normalize_symbol
from coincast.sources.base import DeadLetterSink, SourceHealth

# At the end of the data the watermark moves this far past the last trade: the last minute
# closes (plus a grace period) but longer candles the file does not cover stay open, and the
# aggregator is not asked to fill a day of empty seconds.
END_ADVANCE_MS = 65_000


@dataclass(frozen=True, slots=True)
class Tape:
    """Trades of all symbols in time order (parallel arrays; ``symbol`` indexes ``names``)."""

    names: list[str]
    symbol: npt.NDArray[np.int32]
    trade_id: npt.NDArray[np.int64]
    event_ms: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    qty: npt.NDArray[np.float64]
    is_buyer_maker: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.trade_id.shape[0])


def _ms(col: pl.Series) -> pl.Series:
    return col.dt.epoch("ms") if isinstance(col.dtype, pl.Datetime) else col.cast(pl.Int64)


_QUOTED = re.compile(r"^[A-Za-z0-9]{2,15}(USDT|USDC|FDUSD|BUSD|TUSD|BTC|ETH|BNB|EUR|TRY)$", re.IGNORECASE)


def _symbol_from_name(path: Path) -> str | None:
    """The symbol in a file name: ``BTCUSDT-trades-2024-01-01``, ``trades_btcusdt``, ``ETHBTC_1m``."""
    for token in re.split(r"[-_. ]", path.stem):
        if _QUOTED.match(token):
            return normalize_symbol(token)
    return None


def _tape(df: pl.DataFrame) -> Tape:
    df = df.sort("event_ms", "trade_id")
    names = sorted(df["symbol"].unique().to_list())
    codes = df["symbol"].replace_strict({n: i for i, n in enumerate(names)}, return_dtype=pl.Int32)
    return Tape(
        names,
        codes.to_numpy(),
        df["trade_id"].to_numpy().astype(np.int64),
        df["event_ms"].to_numpy().astype(np.int64),
        df["price"].to_numpy().astype(np.float64),
        df["qty"].to_numpy().astype(np.float64),
        df["is_buyer_maker"].to_numpy().astype(np.bool_),
    )


def load_tape(
    path: Path, *, symbol: str | None = None, interval: Interval | None = None, dead_letters: DeadLetterSink | None
) -> Tape:
    """Read a trades or candles file into a :class:`Tape`; invalid rows go to ``dead_letters``.

    Raises:
        InvalidRequest: missing file, unknown layout, no symbol to be found.
    """
    if not path.exists():
        raise InvalidRequest(f"replay file {path}: no such file")
    if path.suffix.lower() != ".parquet":
        from coincast.sources.files import read_market_file

        results = read_market_file(path, symbol=symbol, interval=interval)
        for r in results:
            for bad in r.bad:
                _dead(dead_letters, f"{bad.file}:{bad.line}: {bad.reason}", "")
        iv = results[0].interval
        return candles_tape(pl.concat([r.frame for r in results]), iv)
    df = pl.read_parquet(path)
    if "trade_id" not in df.columns:
        return candles_tape(df, interval)
    sym = symbol or _symbol_from_name(path)
    if "symbol" not in df.columns:
        if sym is None:
            raise InvalidRequest(f"replay file {path}: no symbol column; pass the symbol")
        df = df.with_columns(symbol=pl.lit(normalize_symbol(sym)))
    df = df.with_columns(event_ms=_ms(df["time"]), row=pl.int_range(1, pl.len() + 1))
    ok = (pl.col("price") > 0) & (pl.col("qty") >= 0) & pl.col("event_ms").is_not_null()
    ok = ok & pl.col("price").is_finite() & pl.col("is_buyer_maker").is_not_null()
    for row in df.filter(~ok.fill_null(False)).iter_rows(named=True):
        _dead(dead_letters, f"{path} row {row['row']}: invalid trade (price, qty, time or side)", str(row))
    return _tape(df.filter(ok.fill_null(False)))


def candles_tape(frame: pl.DataFrame, interval: Interval | None = None) -> Tape:
    """Four synthetic trades per candle (see the module docstring)."""
    df = frame.with_columns(open_ms=_ms(frame["open_time"])).sort("symbol", "open_ms")
    if interval is None:
        gaps = df.group_by("symbol").agg(pl.col("open_ms").diff().min().alias("d"))["d"].drop_nulls()
        if gaps.is_empty():
            raise InvalidRequest("replay: cannot tell the candle interval from one candle; pass it")
        step = int(gaps.min())  # type: ignore[arg-type]
        interval = next((i for i in Interval if i.ms == step), None)
        if interval is None:
            raise InvalidRequest(f"replay: candles {step} ms apart match no known interval")
    n = df.height
    length = interval.ms
    offsets = np.array([0, length // 3, 2 * length // 3, length - 1], np.int64)
    up = (df["close"] >= df["open"]).to_numpy()
    o, h, lo, c = (df[x].to_numpy().astype(np.float64) for x in ("open", "high", "low", "close"))
    second = np.where(up, lo, h)
    third = np.where(up, h, lo)
    prices = np.stack([o, second, third, c], axis=1).reshape(-1)
    qty = np.repeat(df["volume"].fill_null(0.0).to_numpy().astype(np.float64) / 4.0, 4)
    times = (df["open_ms"].to_numpy().astype(np.int64)[:, None] + offsets[None, :]).reshape(-1)
    ids = (df["open_ms"].to_numpy().astype(np.int64)[:, None] // 1000 * 4 + np.arange(4)[None, :]).reshape(-1)
    trades = pl.DataFrame(
        {
            "symbol": np.repeat(df["symbol"].to_numpy(), 4),
            "trade_id": ids,
            "event_ms": times,
            "price": prices,
            "qty": qty,
            "is_buyer_maker": np.tile(np.array([False, True, False, True]), n),
        }
    )
    return _tape(trades)


def _dead(sink: DeadLetterSink | None, reason: str, raw: str) -> None:
    if sink is not None:
        sink.put(DeadLetter("replay", reason, raw[:2000], 0))


class ReplaySource:
    """Plays a :class:`Tape` (implements :class:`coincast.sources.base.Source`)."""

    name = "replay"

    def __init__(
        self,
        path: Path | Tape,
        speed: float,
        *,
        dead_letters: DeadLetterSink | None,
        clock: Clock,
        symbol: str | None = None,
        interval: Interval | None = None,
        chunk: int = 5_000,
    ) -> None:
        """Args: ``path`` a trades or candles file (or a ready :class:`Tape`); ``speed`` >= 0.

        Raises:
            InvalidRequest: unreadable file or unknown layout (see :func:`load_tape`).
            ValueError: negative speed.
        """
        if speed < 0:
            raise ValueError(f"replay speed {speed}: must be >= 0 (0 = as fast as possible)")
        tape = (
            path
            if isinstance(path, Tape)
            else load_tape(path, symbol=symbol, interval=interval, dead_letters=dead_letters)
        )
        self.health = SourceHealth(name=self.name)
        self.health.detail.update(file=str(path) if isinstance(path, Path) else "", speed=f"{speed:g}")
        self.health.detail["trades"] = str(len(tape))
        self._tape = tape
        self._speed = speed
        self._clock = clock
        self._chunk = chunk
        self._pos = 0
        self._virtual_ms = int(tape.event_ms[0]) if len(tape) else 0
        self._closed = False

    def watermark_ms(self) -> int:
        """Virtual time: every trade before it has been yielded."""
        return self._virtual_ms

    async def events(self) -> AsyncIterator[TradeBatch]:
        tape = self._tape
        n = len(tape)
        loop = asyncio.get_running_loop()
        start_real = loop.time()
        start_virtual = self._virtual_ms
        self.health.connected = True
        while self._pos < n and not self._closed:
            if self._speed == 0:
                hi = min(n, self._pos + self._chunk)
            else:
                now_v = start_virtual + int((loop.time() - start_real) * self._speed * 1000)
                due = int(np.searchsorted(tape.event_ms, now_v, side="right"))
                if due <= self._pos:
                    wait_s = (int(tape.event_ms[self._pos]) - now_v) / 1000 / self._speed
                    await asyncio.sleep(min(max(wait_s, 0.001), 0.25))
                    continue
                hi = min(due, self._pos + self._chunk)
                self._virtual_ms = max(self._virtual_ms, now_v if hi == due else int(tape.event_ms[hi]))
            for batch in self._batches(self._pos, hi):
                yield batch
            self._pos = hi
            if self._speed == 0:
                self._virtual_ms = int(tape.event_ms[hi - 1]) if hi == n else int(tape.event_ms[hi])
                await asyncio.sleep(0)
            self.health.detail["progress"] = f"{hi}/{n}"
        if self._pos >= n and n:
            self._virtual_ms = int(tape.event_ms[-1]) + END_ADVANCE_MS
            # the data ends here: say so in the stream itself, so every last candle closes
            now = self._clock.now_ms()
            for name in tape.names:
                yield TradeBatch.heartbeat(name, self._virtual_ms, now)
            self.health.detail["finished"] = "true"  # set once the consumer took the last batch
        self.health.connected = False

    def _batches(self, lo: int, hi: int) -> list[TradeBatch]:
        t = self._tape
        now = self._clock.now_ms()
        codes = t.symbol[lo:hi]
        out = []
        for code in np.unique(codes):
            sel = np.nonzero(codes == code)[0] + lo
            out.append(
                TradeBatch(
                    t.names[int(code)],
                    t.trade_id[sel],
                    t.event_ms[sel],
                    t.price[sel],
                    t.qty[sel],
                    t.is_buyer_maker[sel],
                    now,
                )
            )
        self.health.messages += hi - lo
        self.health.last_message_ms = now
        return out

    async def close(self) -> None:
        self._closed = True
