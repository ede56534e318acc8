"""The history lake: candles as Parquet, partitioned ``symbol=/interval=/date=``.

Layout under the root (local path, ``file:///abs/path`` or ``s3://bucket/prefix``)::

    symbol=BTCUSDT/interval=1h/date=2023-01-01/part.parquet

``date`` is the first UTC day of the partition's period, which depends on the interval so files
stay a sensible size: minute intervals get one file per day, hour intervals one per month, day
intervals one per year. Each file holds the columns of :data:`SCHEMA` (the schema of the shared
``klines_1h.parquet``), sorted by ``open_time`` with one row per open time.

Writes are idempotent per (symbol, interval, open_time): a partition is read, merged with the new
rows (new values win), de-duplicated and rewritten through a temporary file and a rename.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from coincast.domain import Candle, ConfigError, Interval

SCHEMA = pa.schema(
    [
        ("symbol", pa.large_string()),
        ("open_time", pa.timestamp("ms", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("quote_volume", pa.float64()),
        ("trades", pa.int64()),
        ("taker_buy_base", pa.float64()),
        ("taker_buy_quote", pa.float64()),
    ]
)
COLUMNS = SCHEMA.names
_POLARS = pl.from_arrow(SCHEMA.empty_table()).schema  # type: ignore[union-attr]

TimeLike = datetime | date | int | str | None


def to_ms(value: TimeLike) -> int | None:
    """Epoch ms from a datetime (naive = UTC), a date, an ISO string or ms; None stays None.

    Raises:
        ValueError: for a string that is not an ISO date or datetime.
    """
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def partition_start(interval: Interval, open_ms: int) -> date:
    """First day of the partition holding ``open_ms`` (day, month or year by interval)."""
    day = datetime.fromtimestamp(open_ms / 1000, UTC).date()
    if interval.ms < Interval.H1.ms:
        return day
    if interval.ms < Interval.D1.ms:
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def candles_frame(candles: Sequence[Candle]) -> pl.DataFrame:
    """Candles as a lake frame (:data:`SCHEMA` columns)."""
    return pl.DataFrame(
        {
            "symbol": [c.symbol for c in candles],
            "open_time": [c.open_ms for c in candles],
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
            "quote_volume": [c.quote_volume for c in candles],
            "trades": [c.trades for c in candles],
            "taker_buy_base": [c.taker_buy_volume for c in candles],
            "taker_buy_quote": [c.taker_buy_quote_volume for c in candles],
        },
        schema_overrides={"open_time": pl.Int64},
    ).pipe(conform)


def conform(frame: pl.DataFrame | pa.Table | Any) -> pl.DataFrame:
    """Cast a frame to the lake schema (missing optional columns become null).

    ``open_time`` may be epoch ms integers or timestamps. Accepts polars, pyarrow or pandas.

    Raises:
        ValueError: a required column (symbol, open_time, OHLC, volume) is missing.
    """
    df = frame if isinstance(frame, pl.DataFrame) else pl.from_arrow(frame) if isinstance(frame, pa.Table) else None
    if df is None:
        df = pl.from_pandas(frame)
    assert isinstance(df, pl.DataFrame)
    missing = [c for c in ("symbol", "open_time", "open", "high", "low", "close", "volume") if c not in df.columns]
    if missing:
        raise ValueError(f"lake frame lacks columns {missing}; has {df.columns}")
    t = df["open_time"]
    if t.dtype.is_integer():
        df = df.with_columns(pl.col("open_time").cast(pl.Int64).cast(pl.Datetime("ms", "UTC")))
    elif isinstance(t.dtype, pl.Datetime) and t.dtype.time_zone is None:
        df = df.with_columns(pl.col("open_time").dt.replace_time_zone("UTC"))
    exprs = [
        (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in _POLARS.items()
    ]
    return df.select(exprs)


def frame_to_candles(frame: pl.DataFrame, interval: Interval) -> list[Candle]:
    """Lake rows as closed :class:`Candle` values (unknown volumes and counts become 0)."""
    out = []
    for r in frame.iter_rows(named=True):
        out.append(
            Candle(
                symbol=r["symbol"],
                interval=interval,
                open_ms=int(r["open_time"].timestamp() * 1000),
                open=r["open"],
                high=r["high"],
                low=r["low"],
                close=r["close"],
                volume=r["volume"],
                quote_volume=r["quote_volume"] or 0.0,
                trades=r["trades"] or 0,
                taker_buy_volume=r["taker_buy_base"] or 0.0,
                taker_buy_quote_volume=r["taker_buy_quote"] or 0.0,
            )
        )
    return out


class ParquetLake:
    """Candles on a pyarrow filesystem (local or S3); see the module docstring for the layout."""

    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self.url = root

    def _dir(self, symbol: str, interval: Interval) -> str:
        return f"{self._root}/symbol={symbol}/interval={interval.value}"

    def _file(self, symbol: str, interval: Interval, day: date) -> str:
        return f"{self._dir(symbol, interval)}/date={day.isoformat()}/part.parquet"

    def write(self, frame: pl.DataFrame | pa.Table | Any, interval: Interval | str) -> int:
        """Merge ``frame`` into the lake; returns the number of input rows written.

        Idempotent: writing the same rows twice stores them once; a later write of the same
        (symbol, interval, open_time) replaces the earlier values.
        """
        iv = Interval.parse(interval) if isinstance(interval, str) else interval
        df = conform(frame)
        if df.is_empty():
            return 0
        keyed = df.with_columns(_part=_part_expr(iv))
        for (symbol, day), part in keyed.group_by("symbol", "_part"):
            self._merge(str(symbol), iv, day, part.drop("_part"))
        return df.height

    def _merge(self, symbol: str, interval: Interval, day: date, new: pl.DataFrame) -> None:
        path = self._file(symbol, interval, day)
        parts = [new]
        if self._fs.get_file_info(path).type == pafs.FileType.File:
            old = pl.from_arrow(pq.read_table(path, filesystem=self._fs, schema=SCHEMA))
            assert isinstance(old, pl.DataFrame)
            parts.insert(0, old)
        merged = pl.concat(parts).unique("open_time", keep="last").sort("open_time")
        self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        pq.write_table(merged.to_arrow().cast(SCHEMA), tmp, filesystem=self._fs, compression="zstd")
        self._fs.move(tmp, path)

    def write_candles(self, candles: Sequence[Candle]) -> int:
        """Write domain candles (grouped by interval)."""
        n = 0
        for iv in {c.interval for c in candles}:
            n += self.write(candles_frame([c for c in candles if c.interval == iv]), iv)
        return n

    def read(
        self,
        symbols: Sequence[str] | str,
        interval: Interval | str,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> pl.DataFrame:
        """Candles with ``start <= open_time < end``, sorted by symbol then open_time.

        Returns a polars frame in :data:`SCHEMA` (empty, with the schema, when nothing matches).
        """
        iv = Interval.parse(interval) if isinstance(interval, str) else interval
        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        start_ms, end_ms = to_ms(start), to_ms(end)
        lo = partition_start(iv, start_ms) if start_ms is not None else None
        hi = partition_start(iv, end_ms) if end_ms is not None else None
        frames = []
        for sym in syms:
            for day, path in self._partitions(sym, iv):
                if (lo is not None and day < lo) or (hi is not None and day > hi):
                    continue
                tbl = pq.read_table(path, filesystem=self._fs, schema=SCHEMA)
                frames.append(pl.from_arrow(tbl))
        if not frames:
            return pl.DataFrame(schema=_POLARS)
        df = pl.concat(frames)  # type: ignore[type-var]
        assert isinstance(df, pl.DataFrame)
        ms = pl.col("open_time").dt.epoch("ms")
        if start_ms is not None:
            df = df.filter(ms >= start_ms)
        if end_ms is not None:
            df = df.filter(ms < end_ms)
        return df.sort("symbol", "open_time")

    def open_times(self, symbol: str, interval: Interval, start_ms: int, end_ms: int) -> set[int]:
        """Open times (ms) already stored in ``[start_ms, end_ms)`` (for resumable backfill)."""
        df = self.read([symbol], interval, start_ms, end_ms)
        return set(df["open_time"].dt.epoch("ms").to_list())

    def symbols(self) -> list[str]:
        """Symbols with at least one partition."""
        sel = pafs.FileSelector(self._root, allow_not_found=True)
        return sorted(
            i.base_name.removeprefix("symbol=")
            for i in self._fs.get_file_info(sel)
            if i.type == pafs.FileType.Directory and i.base_name.startswith("symbol=")
        )

    def _partitions(self, symbol: str, interval: Interval) -> list[tuple[date, str]]:
        sel = pafs.FileSelector(self._dir(symbol, interval), allow_not_found=True)
        out = []
        for info in self._fs.get_file_info(sel):
            if info.type == pafs.FileType.Directory and info.base_name.startswith("date="):
                path = f"{info.path}/part.parquet"
                out.append((date.fromisoformat(info.base_name.removeprefix("date=")), path))
        return sorted(out)


def _part_expr(interval: Interval) -> pl.Expr:
    day = pl.col("open_time").dt.date()
    if interval.ms < Interval.H1.ms:
        return day
    if interval.ms < Interval.D1.ms:
        return day.dt.truncate("1mo")
    return day.dt.truncate("1y")


def open_lake(url: str) -> ParquetLake:
    """Open a lake from ``/abs/path``, ``rel/path``, ``file:///abs/path`` or ``s3://bucket/prefix``.

    Raises:
        ConfigError: unknown scheme or a filesystem pyarrow cannot open (naming the URL).
    """
    if "://" not in url:
        from pathlib import Path

        root = Path(url).expanduser().resolve()
        return ParquetLake(pafs.LocalFileSystem(), root.as_posix())
    scheme = url.split("://", 1)[0]
    if scheme not in ("file", "s3"):
        raise ConfigError(
            f"lake URL {url!r}: unknown scheme {scheme!r}; use file:///path, s3://bucket/prefix or a path"
        )
    try:
        fs, root = pafs.FileSystem.from_uri(url)
    except (pa.ArrowException, ValueError) as exc:
        raise ConfigError(f"lake URL {url!r}: {exc}") from exc
    return ParquetLake(fs, root)
