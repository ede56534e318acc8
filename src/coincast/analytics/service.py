"""Analytics for the dashboard: klines from the lake (or the serving store), a cached, stored report.

:class:`AnalyticsService` answers one :class:`AnalyticsQuery` (period, interval, symbols) with a
:class:`StoredReport`: the JSON payload the API serves and the CSV text of every table. Reports
are computed off the event loop, kept in memory for ``ttl_s`` and written under
``<data_dir>/analytics/<interval>_<period>[_<symbols>]/`` (``report.json`` plus one CSV per
table), so a restarted server serves the stored report until it expires.

Data source: the Parquet lake (written by ``coincast backfill`` / ``coincast import``) when it
holds any of the requested symbols, otherwise the serving store (the live stream's candles).
The two are never mixed in one report: live simulator prices must not sit beside recorded ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from coincast.domain import Candle, Clock, Interval, InvalidInterval, InvalidRequest, SystemClock

if TYPE_CHECKING:
    from coincast.analytics.report import AnalyticsReport
    from coincast.store.base import CandleStore

INTERVALS = (Interval.H1, Interval.D1)
# API table name -> AnalyticsReport.tables() name ("drawdown" is built here).
TABLES = {
    "kpis": "summary",
    "weekly": "weekly",
    "monthly": "monthly",
    "correlation": "correlation",
    "portfolios": "portfolios",
    "weights": "weights",
    "drawdown": "drawdown",
}
MIN_DAILY_RETURNS = 2  # below this no coin has a volatility, VaR or Sharpe: the report says so instead
STORE_ROWS = 100_000  # newest candles read per symbol from the serving store
CURVE_POINTS = 1_500  # longer drawdown curves are reduced to the deepest point of each UTC day
MAX_CACHED = 32  # reports kept in memory (symbol subsets make many keys); the oldest go first
_PERIOD = re.compile(r"^(all|([1-9]\d{0,2})([dwmy]))$")
_HINT = (
    "load history with `coincast backfill --interval {interval} --start 2023-01-01` "
    "(from Binance) or `coincast import PATH` (klines CSV/Parquet), or wait for the live stream to close "
    "more {interval} candles"
)


class InvalidPeriod(InvalidRequest):
    code = "invalid_period"


class MissingData(InvalidRequest):
    """Too little history for a report: the user must load some or wait (see the subclasses)."""


class NoData(MissingData):
    """Neither the lake nor the store has candles for the request (404)."""

    status_code = 404
    code = "no_data"


class NotEnoughData(MissingData):
    """Candles exist but span too few days for risk measures (409)."""

    status_code = 409
    code = "not_enough_data"


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """What to analyse: a trailing ``period`` (``all``, ``30d``, ``12w``, ``6m``, ``1y``) of candles."""

    period: str
    interval: Interval
    symbols: tuple[str, ...]

    @property
    def key(self) -> str:
        """A file-name-safe key; a long symbol list is shortened to a digest."""
        syms = "-".join(self.symbols)
        if len(syms) > 40:
            syms = hashlib.sha256(syms.encode()).hexdigest()[:12]
        return f"{self.interval.value}_{self.period}_{syms}"


@dataclass(frozen=True, slots=True)
class StoredReport:
    """A computed report: the JSON payload, its encoding, and each table as CSV text (keys of :data:`TABLES`)."""

    payload: dict[str, Any]
    payload_json: bytes
    csv: dict[str, str]

    @property
    def computed_ms(self) -> int:
        return int(self.payload["computed_at_ms"])


def parse_period(text: str) -> str:
    """``all`` or ``<n>d|w|m|y`` (1 <= n <= 999), lower-cased.

    Raises:
        InvalidPeriod: anything else, naming the value and the accepted forms.
    """
    p = text.strip().lower()
    if not _PERIOD.match(p):
        raise InvalidPeriod(f"unknown period {text!r}; expected all or a trailing window like 30d, 12w, 6m, 1y")
    return p


def parse_interval(text: str) -> Interval:
    """``1h`` or ``1d``: the candles analytics reads.

    Raises:
        InvalidInterval: another or an unknown interval.
    """
    iv = Interval.parse(text)
    if iv not in INTERVALS:
        raise InvalidInterval(f"analytics reads 1h or 1d candles, not {iv.value!r}")
    return iv


class AnalyticsService:
    """Loads klines, computes reports in a worker thread, caches them for ``ttl_s`` and stores them.

    Args:
        store: the serving store (fallback when the lake has none of the symbols).
        lake_url: the history lake (``settings.lake_url``).
        data_dir: reports are written under ``data_dir / "analytics"``.
        ttl_s: how long a report is served before it is computed again (memory and disk).
        clock: wall time for expiry.
    """

    def __init__(
        self,
        store: CandleStore,
        lake_url: str,
        data_dir: Path,
        *,
        ttl_s: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._lake_url = lake_url
        self.root = data_dir / "analytics"
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock or SystemClock()
        self._cache: dict[str, StoredReport] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lake_symbols(self) -> list[str]:
        """Symbols with candles in the lake (empty when it does not exist yet)."""
        from coincast.lake.parquet import open_lake

        return open_lake(self._lake_url).symbols()

    async def report(self, query: AnalyticsQuery) -> StoredReport:
        """The report for ``query``: from memory, from disk, or computed now if both are stale.

        Raises:
            NoData: no candles for the symbols in the lake or the store.
            NotEnoughData: candles for fewer than two daily returns.
        """
        lock = self._locks.setdefault(query.key, asyncio.Lock())
        async with lock:  # concurrent requests for the same report compute it once
            now = self._clock.now_ms()
            got = self._cache.get(query.key)
            if got is None or not self._fresh(got, now):
                got = await asyncio.to_thread(self._load, query)
                if got is None or not self._fresh(got, now):
                    got = await self._compute(query, now)
                self._cache.pop(query.key, None)
                self._cache[query.key] = got  # dicts keep insertion order: the first key is the oldest
                while len(self._cache) > MAX_CACHED:
                    old = next(iter(self._cache))
                    del self._cache[old]
                    if (idle := self._locks.get(old)) is not None and not idle.locked():
                        del self._locks[old]
            return got

    async def report_or_missing(self, query: AnalyticsQuery) -> StoredReport | MissingData:
        """Like :meth:`report`, but no or too little data is returned, not raised (an expected state)."""
        try:
            return await self.report(query)
        except MissingData as exc:
            return exc

    def _fresh(self, report: StoredReport, now_ms: int) -> bool:
        return 0 <= now_ms - report.computed_ms < self._ttl_ms

    async def _compute(self, query: AnalyticsQuery, now_ms: int) -> StoredReport:
        klines, source = await asyncio.to_thread(self._read_lake, query)
        if klines is None:
            klines, source = await self._read_store(query), "store"
        return await asyncio.to_thread(self._build, query, klines, source, now_ms)

    def _read_lake(self, query: AnalyticsQuery) -> tuple[pd.DataFrame | None, str]:
        from coincast.lake.parquet import open_lake

        lake = open_lake(self._lake_url)
        present = [s for s in query.symbols if s in set(lake.symbols())]
        if not present:
            return None, "lake"
        frame = lake.read(present, query.interval).to_pandas()
        return (frame if not frame.empty else None), "lake"

    async def _read_store(self, query: AnalyticsQuery) -> pd.DataFrame:
        rows: list[Candle] = []
        for sym in query.symbols:
            rows += await self._store.history(sym, query.interval, start_ms=0, end_ms=2**62, limit=STORE_ROWS)
        return candles_frame(rows)

    def _build(self, query: AnalyticsQuery, klines: pd.DataFrame, source: str, now_ms: int) -> StoredReport:
        from coincast.analytics.report import build_report

        hint = _HINT.format(interval=query.interval.value)
        if klines.empty:
            raise NoData(f"no {query.interval.value} candles for {', '.join(query.symbols)} yet; {hint}")
        report = build_report(klines, period=query.period)
        days = int(report.summary["daily_returns"].max())
        if days < MIN_DAILY_RETURNS:
            raise NotEnoughData(
                f"the {source} has {len(klines)} {query.interval.value} candles spanning "
                f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC: analytics needs at least "
                f"{MIN_DAILY_RETURNS + 1} UTC days; {hint}"
            )
        window = normalised_window(klines, report)
        curves = drawdown_curves(window, query.interval)
        payload = build_payload(query, report, source, curves, now_ms, self._ttl_ms)
        tables = {api: t for api, name in TABLES.items() if (t := report.tables().get(name)) is not None}
        tables["drawdown"] = curves_table(curves)
        csv = {name: table.to_csv(index=False) for name, table in tables.items()}
        stored = StoredReport(payload, orjson.dumps(payload), csv)
        self._save(query, stored)
        return stored

    def _save(self, query: AnalyticsQuery, report: StoredReport) -> None:
        folder = self.root / query.key
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in report.csv.items():
            _write_atomic(folder / f"{name}.csv", text.encode())
        _write_atomic(folder / "report.json", report.payload_json)  # last: marks a complete set

    def _load(self, query: AnalyticsQuery) -> StoredReport | None:
        folder = self.root / query.key
        try:
            body = (folder / "report.json").read_bytes()
            payload = orjson.loads(body)
            csv = {name: (folder / f"{name}.csv").read_text() for name in TABLES}
        except (OSError, orjson.JSONDecodeError):
            return None  # nothing stored yet, or an older layout: compute afresh
        return StoredReport(payload, body, csv)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def candles_frame(candles: Sequence[Candle]) -> pd.DataFrame:
    """Store candles as a klines frame (``open_time`` in epoch ms)."""
    return pd.DataFrame(
        {
            "symbol": [c.symbol for c in candles],
            "open_time": np.array([c.open_ms for c in candles], dtype=np.int64),
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
        }
    )


def normalised_window(klines: pd.DataFrame, report: AnalyticsReport) -> pd.DataFrame:
    """The candles the report used: its symbols, from its start to its end."""
    from coincast.features.klines import normalise_klines

    frame = normalise_klines(klines)
    inside = frame["open_time"].between(report.start, report.end) & frame["symbol"].isin(report.summary["symbol"])
    return frame[inside].reset_index(drop=True)


def drawdown_curves(window: pd.DataFrame, interval: Interval) -> dict[str, dict[str, list[float]]]:
    """Per symbol, close / running peak close - 1 at each candle (open time in epoch ms).

    Past :data:`CURVE_POINTS` candles a curve keeps the deepest drawdown of each UTC day, so the
    maximum drawdown is still on it.
    """
    out: dict[str, dict[str, list[float]]] = {}
    for sym, group in window.groupby("symbol", sort=True):
        close = group["close"].to_numpy(dtype=float)
        dd = pd.Series(close / np.maximum.accumulate(close) - 1.0, index=group["open_time"])
        if len(dd) > CURVE_POINTS and interval != Interval.D1:
            dd = dd.groupby(dd.index.floor("D")).min()
        ms = pd.DatetimeIndex(dd.index).as_unit("ms").asi8
        # 1e-6 (a ten-thousandth of a percent) is far below what a chart or a CSV reader needs
        out[str(sym)] = {"t": [int(t) for t in ms], "dd": [round(float(v), 6) for v in dd.to_numpy()]}
    return out


def curves_table(curves: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """The drawdown curves as rows: symbol, time (ISO 8601 UTC), drawdown."""
    rows = [
        (sym, datetime.fromtimestamp(t / 1000, UTC).isoformat(), dd)
        for sym, c in curves.items()
        for t, dd in zip(c["t"], c["dd"], strict=True)
    ]
    return pd.DataFrame(rows, columns=["symbol", "time", "drawdown"])


def build_payload(
    query: AnalyticsQuery,
    report: AnalyticsReport,
    source: str,
    curves: dict[str, dict[str, list[float]]],
    now_ms: int,
    ttl_ms: int,
) -> dict[str, Any]:
    """The API's JSON document (NaN and infinities become null)."""
    records = report.to_records()
    coins = [str(s) for s in report.summary["symbol"]]
    corr = report.correlation.reindex(index=coins, columns=coins)
    weights = report.weights
    portfolios = []
    for row in records["portfolios"]:
        mine = weights[weights["strategy"] == row["strategy"]]
        portfolios.append(
            {
                **row,
                "weights": dict(zip(mine["symbol"].astype(str), mine["weight"].astype(float), strict=True)),
                "risk_contributions": dict(
                    zip(mine["symbol"].astype(str), mine["risk_contribution"].astype(float), strict=True)
                ),
            }
        )
    missing = [s for s in query.symbols if s not in coins]
    notes = list(report.notes)
    if missing:
        notes.append(f"no {query.interval.value} candles in the {source} for {', '.join(missing)}")
    rows = {sym: int(n) for sym, n in zip(coins, report.summary["candles"], strict=True)}
    payload = {
        "period": query.period,
        "interval": query.interval.value,
        "symbols": coins,
        "requested": list(query.symbols),
        "missing": missing,
        "source": source,
        "window": {"start": report.start.isoformat(), "end": report.end.isoformat()},
        "rows": rows,
        "rows_total": sum(rows.values()),
        "available": True,
        "computed_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(),
        "computed_at_ms": now_ms,
        "expires_at": datetime.fromtimestamp((now_ms + ttl_ms) / 1000, UTC).isoformat(),
        "kpis": records["summary"],
        "weekly": records["weekly"],
        "monthly": records["monthly"],
        "correlation": {"symbols": coins, "matrix": corr.to_numpy(dtype=float).tolist()},
        "portfolios": portfolios,
        "drawdown": curves,
        "notes": notes,
        "tables": list(TABLES),
    }
    return _finite(payload)  # type: ignore[no-any-return]


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become None (e.g. a Sharpe ratio with zero volatility)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
