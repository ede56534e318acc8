"""Import of recorded market files into lake frames, with row-level validation.

Formats (detected from the header or the number of fields; symbol and interval from the file
name as Binance's public-data site writes it, ``BTCUSDT-1h-2023-01.zip``, or given):

* Binance klines CSV: 12 fields ``open_time, open, high, low, close, volume, close_time,
  quote_volume, count, taker_buy_base, taker_buy_quote, ignore``;
* Binance trades CSV: 7 fields ``id, price, qty, quote_qty, time, is_buyer_maker, is_best_match``;
* Binance aggTrades CSV: 8 fields ``agg_id, price, qty, first_id, last_id, time, is_buyer_maker,
  is_best_match`` (trades of both kinds are aggregated into candles of the chosen interval);
* Yahoo-style daily CSV with header ``Date, Open, High, Low, Close, Adj Close, Volume``;
* Parquet in the lake schema (``symbol, open_time, open, ...``) or trades (``trade_id, price,
  qty, time, is_buyer_maker``).

CSV may be zipped (every ``.csv`` member is read), with or without a header; timestamps may be
milliseconds or microseconds (Binance spot files since 2025): values >= 1e14 are microseconds.

Validation never drops a row silently: a row that does not parse or breaks a rule (time
strictly increasing, high >= max(open, close), low <= min(open, close), prices > 0, volume >= 0)
becomes a :class:`BadRow` with its file, 1-based line and the reason; the rest are imported.
Parsing is vectorised with polars (a 1-minute month or a day of trades is millions of rows).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from coincast.domain import Interval, InvalidRequest, normalize_symbol
from coincast.lake.parquet import conform

US_THRESHOLD = 100_000_000_000_000  # 1e14: ms timestamps stay below this until year 5138
MIN_TIME_MS = 946_684_800_000  # 2000-01-01: no exchange traded crypto earlier
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01
MAX_VALUE = 1e15  # no price, volume or quantity comes near this; 1e308 is a corrupt value
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>[0-9]+[smhdw]|trades|aggTrades)-\d{4}-\d{2}(-\d{2})?$")
_KLINE_FIELDS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume"]
_KLINE_FIELDS += ["trades", "taker_buy_base", "taker_buy_quote", "ignore"]
_TRADE_FIELDS = ["trade_id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"]
_AGG_FIELDS = ["trade_id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker", "is_best_match"]
_YAHOO_FIELDS = ["date", "open", "high", "low", "close", "adj_close", "volume"]


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was not imported: where it is and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """One file (or zip member) read: valid candles in the lake schema, and the bad rows."""

    file: str
    kind: str
    symbol: str
    interval: Interval
    frame: pl.DataFrame
    rows: int
    bad: list[BadRow]


def read_market_file(path: Path, *, symbol: str | None = None, interval: Interval | None = None) -> list[ImportResult]:
    """Read one file (CSV, zipped CSV or Parquet) into lake frames.

    Args:
        symbol: overrides the symbol from the file name (needed for Yahoo files).
        interval: the klines' interval (when the name does not say it) or the candle interval
            trades are aggregated into (default 1m).

    Raises:
        InvalidRequest: unreadable file, unknown layout, or no symbol/interval to be found.
    """
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file")
    try:
        return _read(path, symbol, interval)
    except (pl.exceptions.PolarsError, ValueError, OverflowError, OSError) as exc:
        # the layout checks passed but the content is not what it claims (binary, wrong types, ...)
        why = f"{type(exc).__name__}: {_first_line(exc)}"
        raise InvalidRequest(f"{path}: cannot be read as market data ({why})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"


def _read(path: Path, symbol: str | None, interval: Interval | None) -> list[ImportResult]:
    if path.suffix.lower() == ".parquet":
        return [_parquet(path, symbol, interval)]
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
                if not members:
                    raise InvalidRequest(f"{path}: the zip holds no .csv file")
                return [_csv(zf.read(m), f"{path}!{m}", Path(m).stem, symbol, interval) for m in members]
        except zipfile.BadZipFile as exc:
            raise InvalidRequest(f"{path}: not a zip file ({exc})") from None
    return [_csv(path.read_bytes(), str(path), path.stem, symbol, interval)]


def _names(stem: str, symbol: str | None, interval: Interval | None) -> tuple[str | None, str | None, Interval | None]:
    m = _NAME.match(stem)
    kind = m["kind"] if m else None
    sym = symbol or (m["symbol"] if m else None)
    iv = interval
    if iv is None and kind and kind[0].isdigit():
        iv = Interval.parse(kind)
    return (normalize_symbol(sym) if sym else None), kind, iv


def _lines(data: bytes, where: str) -> pl.DataFrame:
    """One row per physical line (blank lines are null), so row index + 1 is the line number."""
    if not data.strip():
        return pl.DataFrame({"line": pl.Series([], dtype=pl.Utf8), "lineno": pl.Series([], dtype=pl.Int64)})
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidRequest(f"{where}:{line}: not UTF-8 text (byte {exc.start}); is this a CSV file?") from None
    df = pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        separator="\x1f",
        new_columns=["line"],
        quote_char=None,
        infer_schema=False,
    )
    return df.with_columns(
        pl.col("line").str.strip_chars("\r\ufeff \t"), lineno=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )


def _detect(lines: pl.DataFrame, where: str) -> tuple[str, bool]:
    first = next((s for s in lines["line"] if s), None)
    if first is None:
        raise InvalidRequest(f"{where}: empty file")
    fields = [f.strip().strip('"').lower() for f in first.split(",")]
    header = not _is_number(fields[0])
    if header and fields[0] == "date" and "open" in fields:
        return "yahoo", True
    n = len(fields)
    kind = {12: "klines", 11: "klines", 7: "trades", 8: "aggTrades"}.get(n)
    if header and "agg_trade_id" in fields:
        kind = "aggTrades"
    if kind is None:
        raise InvalidRequest(
            f"{where}: unknown layout with {n} fields ({first[:80]!r}); expected Binance klines (12), "
            "trades (7), aggTrades (8) or Yahoo daily (Date,Open,High,Low,Close,Adj Close,Volume)"
        )
    return kind, header


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv(data: bytes, where: str, stem: str, symbol: str | None, interval: Interval | None) -> ImportResult:
    lines = _lines(data, where)
    kind, header = _detect(lines, where)
    sym, _, iv = _names(stem, symbol, interval)
    if sym is None:
        raise InvalidRequest(f"{where}: cannot tell the symbol from the file name; pass --symbol")
    if header:
        first = lines.filter(pl.col("line").is_not_null() & (pl.col("line") != ""))["lineno"][0]
        lines = lines.filter(pl.col("lineno") != first)
    lines = lines.filter(pl.col("line").is_not_null() & (pl.col("line") != ""))
    names = {"klines": _KLINE_FIELDS, "trades": _TRADE_FIELDS, "aggTrades": _AGG_FIELDS, "yahoo": _YAHOO_FIELDS}[kind]
    parts = pl.col("line").str.split(",")
    n_min = 11 if kind == "klines" else len(names)
    fields = lines.with_columns(
        _n=parts.list.len(),
        **{name: parts.list.get(i, null_on_oob=True).str.strip_chars('" ') for i, name in enumerate(names)},
    )
    width_reason = pl.when(pl.col("_n") < n_min).then(
        pl.format(f"expected {len(names)} fields, got {{}}", pl.col("_n"))
    )
    if kind in ("trades", "aggTrades"):
        return _trades(fields, width_reason, where, sym, iv or Interval.M1, kind)
    if kind == "yahoo":
        return _yahoo(fields, width_reason, where, sym)
    if iv is None:
        raise InvalidRequest(f"{where}: cannot tell the interval from the file name; pass --interval")
    return _klines(fields, width_reason, where, sym, iv)


def _num(name: str, dtype: type[pl.DataType] = pl.Float64) -> tuple[pl.Expr, pl.Expr]:
    """The parsed column and the reason when the text does not parse."""
    parsed = pl.col(name).cast(dtype, strict=False)
    what = "an integer" if dtype is pl.Int64 else "a number"
    reason = pl.when(parsed.is_null()).then(pl.format(f"{name}: not {what}: '{{}}'", pl.col(name).fill_null("")))
    return parsed.alias(name), reason


def _ms(name: str) -> pl.Expr:
    t = pl.col(name)
    return pl.when(t >= US_THRESHOLD).then(t // 1000).otherwise(t)


def _checked(
    df: pl.DataFrame, reasons: list[pl.Expr], where: str, time_col: str
) -> tuple[pl.DataFrame, list[BadRow], int]:
    """Apply the first failing reason per row, then the monotonic-time rule on the rest."""
    rows = df.height
    if "_reason" in df.columns:
        reasons = [pl.col("_reason"), *reasons]
    df = df.with_columns(_reason=pl.coalesce(reasons))
    prev = pl.when(pl.col("_reason").is_null()).then(pl.col(time_col)).cum_max().shift(1)
    df = df.with_columns(
        _reason=pl.when(pl.col("_reason").is_null() & (pl.col(time_col) <= prev))
        .then(pl.format("time {} is not after the previous row's {}", pl.col(time_col), prev))
        .otherwise(pl.col("_reason"))
    )
    bad_df = df.filter(pl.col("_reason").is_not_null())
    bad = [BadRow(where, int(n), str(r)) for n, r in zip(bad_df["lineno"], bad_df["_reason"], strict=True)]
    return df.filter(pl.col("_reason").is_null()).drop("_reason"), bad, rows


def _finite(names: tuple[str, ...]) -> list[pl.Expr]:
    """NaN and inf pass every comparison test, so they are refused first; so are absurd sizes."""
    out: list[pl.Expr] = []
    for name in names:
        col = pl.col(name)
        out.append(pl.when(~col.is_finite()).then(pl.format(f"{name}: not a finite number: {{}}", col)))
        out.append(pl.when(col.abs() > MAX_VALUE).then(pl.format(f"{name} {{}} is implausibly large", col)))
    return out


def _time_range(name: str) -> pl.Expr:
    t = pl.col(name)
    return pl.when((t < MIN_TIME_MS) | (t >= MAX_TIME_MS)).then(
        pl.format(f"{name} {{}} is outside 2000-01-01 .. 2100-01-01 (epoch ms or µs expected)", t)
    )


def _ohlc_reasons() -> list[pl.Expr]:
    o, h, lo, c, v = (pl.col(x) for x in ("open", "high", "low", "close", "volume"))
    return [
        *_finite(("open", "high", "low", "close", "volume")),
        pl.when(pl.min_horizontal(o, h, lo, c) <= 0).then(pl.lit("prices must be > 0")),
        pl.when(h < pl.max_horizontal(o, c, lo)).then(pl.format("high {} < max(open, close, low)", h)),
        pl.when(lo > pl.min_horizontal(o, c)).then(pl.format("low {} > min(open, close)", lo)),
        pl.when(v < 0).then(pl.format("negative volume {}", v)),
    ]


def _boundary(name: str, iv: Interval) -> pl.Expr:
    return pl.when(pl.col(name) % iv.ms != 0).then(
        pl.format(f"{name} {{}} is not on a {iv.value} boundary", pl.col(name))
    )


def _klines(fields: pl.DataFrame, width: pl.Expr, where: str, sym: str, iv: Interval) -> ImportResult:
    cols, reasons = [], [width]
    for name, dtype in [("open_time", pl.Int64), ("open", pl.Float64), ("high", pl.Float64), ("low", pl.Float64),
                        ("close", pl.Float64), ("volume", pl.Float64)]:  # fmt: skip
        col, why = _num(name, dtype)
        cols.append(col)
        reasons.append(why)
    optional = [
        pl.col(n).cast(t, strict=False).alias(n)
        for n, t in [("quote_volume", pl.Float64), ("trades", pl.Int64), ("taker_buy_base", pl.Float64),
                     ("taker_buy_quote", pl.Float64)]
    ]  # fmt: skip
    fields = fields.with_columns(_reason=pl.coalesce(reasons))
    df = fields.select("lineno", "_reason", *cols, *optional).with_columns(_ms("open_time"))
    reasons = [_time_range("open_time"), *_ohlc_reasons(), _boundary("open_time", iv)]
    good, bad, rows = _checked(df, reasons, where, "open_time")
    frame = conform(good.drop("lineno").with_columns(symbol=pl.lit(sym)))
    return ImportResult(where, "klines", sym, iv, frame, rows, bad)


def _yahoo(fields: pl.DataFrame, width: pl.Expr, where: str, sym: str) -> ImportResult:
    cols, reasons = [], [width]
    for name in ("open", "high", "low", "close", "volume"):
        col, why = _num(name)
        cols.append(col)
        reasons.append(why)
    day = pl.col("date").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)  # also "2023-01-01 00:00:00+00:00"
    reasons.insert(1, pl.when(day.is_null()).then(pl.format("date: not YYYY-MM-DD: '{}'", pl.col("date"))))
    fields = fields.with_columns(_reason=pl.coalesce(reasons))
    df = fields.select("lineno", "_reason", "date", *cols).with_columns(
        open_time=day.cast(pl.Datetime("ms")).dt.epoch("ms")
    )
    good, bad, rows = _checked(df, _ohlc_reasons(), where, "open_time")
    frame = conform(good.drop("lineno", "date").with_columns(symbol=pl.lit(sym)))
    return ImportResult(where, "yahoo", sym, Interval.D1, frame, rows, bad)


def _trades(fields: pl.DataFrame, width: pl.Expr, where: str, sym: str, iv: Interval, kind: str) -> ImportResult:
    cols, reasons = [], [width]
    for name, dtype in [("trade_id", pl.Int64), ("price", pl.Float64), ("qty", pl.Float64), ("time", pl.Int64)]:
        col, why = _num(name, dtype)
        cols.append(col)
        reasons.append(why)
    maker = pl.col("is_buyer_maker").str.to_lowercase()
    reasons.append(
        pl.when(~maker.is_in(["true", "false"])).then(
            pl.format("is_buyer_maker: not true/false: '{}'", pl.col("is_buyer_maker").fill_null(""))
        )
    )
    count = (
        (pl.col("last_id").cast(pl.Int64, strict=False) - pl.col("first_id").cast(pl.Int64, strict=False) + 1)
        if kind == "aggTrades"
        else pl.lit(1, pl.Int64)
    )
    fields = fields.with_columns(_reason=pl.coalesce(reasons))
    df = fields.select(
        "lineno", "_reason", *cols, (maker == "true").alias("is_buyer_maker"), count.fill_null(1).alias("n")
    ).with_columns(_ms("time"))
    reasons = _trade_reasons()
    # Trades may share a millisecond: order by id, then require time never to go backwards.
    good, bad, rows = _checked(df, reasons, where, "trade_id")
    back = good.filter(pl.col("time") < pl.col("time").cum_max().shift(1))
    bad += [
        BadRow(where, int(n), f"time {t} goes backwards") for n, t in zip(back["lineno"], back["time"], strict=True)
    ]
    good = good.filter(~pl.col("lineno").is_in(back["lineno"].implode()))
    bad.sort(key=lambda b: b.line)
    return ImportResult(where, kind, sym, iv, trades_to_candles(good, sym, iv), rows, bad)


def _trade_reasons() -> list[pl.Expr]:
    return [
        _time_range("time"),
        *_finite(("price", "qty")),
        pl.when(pl.col("price") <= 0).then(pl.format("price {} must be > 0", pl.col("price"))),
        pl.when(pl.col("qty") < 0).then(pl.format("negative qty {}", pl.col("qty"))),
    ]


def trades_to_candles(trades: pl.DataFrame, symbol: str, interval: Interval) -> pl.DataFrame:
    """Aggregate trades (``trade_id, time`` ms, ``price, qty, is_buyer_maker`` [, ``n``]) into lake rows."""
    n = pl.col("n").sum() if "n" in trades.columns else pl.len()
    quote = pl.col("price") * pl.col("qty")
    taker = ~pl.col("is_buyer_maker")
    out = (
        trades.sort("trade_id")
        .with_columns(open_time=pl.col("time") // interval.ms * interval.ms)
        .group_by("open_time", maintain_order=True)
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("qty").sum().alias("volume"),
            quote.sum().alias("quote_volume"),
            n.cast(pl.Int64).alias("trades"),
            pl.col("qty").filter(taker).sum().alias("taker_buy_base"),
            quote.filter(taker).sum().alias("taker_buy_quote"),
        )
        .sort("open_time")
        .with_columns(symbol=pl.lit(symbol))
    )
    return conform(out)


def _require(df: pl.DataFrame, where: str, columns: tuple[str, ...], kind: str) -> None:
    if missing := [c for c in columns if c not in df.columns]:
        raise InvalidRequest(f"{where}: {kind} Parquet lacks columns {missing}; has {df.columns[:20]}")


def _parquet(path: Path, symbol: str | None, interval: Interval | None) -> ImportResult:
    try:
        df = pl.read_parquet(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise InvalidRequest(f"{path}: not a readable Parquet file ({exc})") from None
    df = df.with_columns(lineno=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    where = str(path)
    if "trade_id" in df.columns:
        name = symbol or (str(df["symbol"][0]) if "symbol" in df.columns and df.height else None)
        if name is None:
            raise InvalidRequest(f"{where}: trades without a symbol column; pass --symbol")
        sym = normalize_symbol(name)
        iv = interval or Interval.M1
        _require(df, where, ("trade_id", "price", "qty", "time", "is_buyer_maker"), "trades")
        t = df.with_columns(
            pl.col("time").dt.epoch("ms") if isinstance(df["time"].dtype, pl.Datetime) else _ms("time"),
            pl.col("price", "qty").cast(pl.Float64),
        )
        good, bad, rows = _checked(t, _trade_reasons(), where, "trade_id")
        return ImportResult(where, "trades", sym, iv, trades_to_candles(good, sym, iv), rows, bad)
    if interval is None:
        raise InvalidRequest(f"{where}: pass --interval for a Parquet klines file")
    _require(df, where, ("open_time", "open", "high", "low", "close", "volume"), "klines")
    if "symbol" not in df.columns:
        if not symbol:
            raise InvalidRequest(f"{where}: klines without a symbol column; pass --symbol")
        df = df.with_columns(symbol=pl.lit(symbol))
    if df["open_time"].dtype.is_integer():  # epoch ms, or µs as Binance writes since 2025
        df = df.with_columns(_ms("open_time"))
    frame = conform(df.drop("lineno")).with_columns(lineno=df["lineno"], open_ms=pl.col("open_time").dt.epoch("ms"))
    if symbol:
        frame = frame.with_columns(symbol=pl.lit(normalize_symbol(symbol)))
    parts, bad, rows = [], [], 0
    for _, part in frame.group_by("symbol", maintain_order=True):
        good, b, r = _checked(part, [_time_range("open_ms"), *_ohlc_reasons(), _boundary("open_ms", interval)],
                              where, "open_ms")
        parts.append(good.drop("lineno", "open_ms"))
        bad += b
        rows += r
    syms = ",".join(sorted({str(s) for s in frame["symbol"].unique()}))
    out = conform(pl.concat(parts)) if parts else conform(frame.head(0).drop("lineno", "open_ms"))
    return ImportResult(where, "klines", syms, interval, out, rows, sorted(bad, key=lambda b: b.line))
