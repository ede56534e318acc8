"""Market analytics endpoints: the dashboard's Analytics page and CSV downloads.

``analytics_router(services)`` returns an :class:`APIRouter` the app includes::

    GET /api/v1/analytics?period=all|30d|12w|6m|1y&interval=1h|1d&symbols=BTCUSDT,ETHUSDT
    GET /api/v1/analytics.csv?table=kpis|weekly|monthly|correlation|portfolios|weights|drawdown&...

Routes have no ``try``: a bad period, interval or symbol raises an
:class:`~coincast.domain.InvalidRequest` subclass the app maps to a status and
``{"error": code, "detail": message}``; no data is 404 ``no_data``, too little is 409
``not_enough_data``, both saying how to load history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from coincast.analytics.service import (
    TABLES,
    AnalyticsQuery,
    AnalyticsService,
    MissingData,
    parse_interval,
    parse_period,
)
from coincast.domain import Clock, InvalidRequest, UnknownSymbol, normalize_symbol

if TYPE_CHECKING:
    from coincast.api.app import Services

PeriodQ = Query("all", description="all, or a trailing window ending at the last candle: 30d, 12w, 6m, 1y")
IntervalQ = Query("1h", description="candles to analyse: 1h or 1d")
SymbolsQ = Query(None, description="comma-separated symbols (default: the configured symbols)")


class UnknownTable(InvalidRequest):
    code = "unknown_table"


def analytics_router(services: Services, *, ttl_s: float = 300.0, clock: Clock | None = None) -> APIRouter:
    """The analytics routes over the services' store and lake (see the module docstring).

    Args:
        services: settings (symbols, lake URL, data directory) and the serving store.
        ttl_s: a report is computed again once it is this old (memory and ``<data_dir>/analytics``).
        clock: wall time for that expiry (tests pass a ``ManualClock``).
    """
    s = services.settings
    service = AnalyticsService(services.store, s.lake_url, s.data_dir, ttl_s=ttl_s, clock=clock)
    router = APIRouter(tags=["analytics"])

    async def query_of(period: str, interval: str, symbols: str | None) -> AnalyticsQuery:
        known = set(s.symbols)
        wanted = _symbols(symbols) if symbols else list(s.symbols)
        if any(sym not in known for sym in wanted):
            known |= set(service.lake_symbols())  # backfilled coins the stream does not follow
        bad = [sym for sym in wanted if sym not in known]
        if bad:
            raise UnknownSymbol(
                f"unknown symbol {', '.join(bad)}; configured or in the lake: {', '.join(sorted(known))}"
            )
        return AnalyticsQuery(parse_period(period), parse_interval(interval), tuple(dict.fromkeys(wanted)))

    @router.get("/api/v1/analytics")
    async def analytics(
        period: str = PeriodQ,
        interval: str = IntervalQ,
        symbols: str | None = SymbolsQ,
        missing_ok: bool = Query(
            False,
            description="with too little data answer 200 and {available: false, error, detail} instead of 404/409 "
            "(the dashboard's empty state is not a failed request)",
        ),
    ) -> Response:
        """Per-coin KPIs and risk, weekly/monthly returns, correlations, portfolios, drawdown curves."""
        query = await query_of(period, interval, symbols)
        if not missing_ok:
            report = await service.report(query)
            return Response(report.payload_json, media_type="application/json")
        got = await service.report_or_missing(query)
        if isinstance(got, MissingData):
            return JSONResponse({"available": False, "error": got.code, "detail": str(got)})
        return Response(got.payload_json, media_type="application/json")

    @router.get("/api/v1/analytics.csv", response_class=CsvResponse)
    async def analytics_csv(
        table: str = Query("kpis", description=f"one of {', '.join(TABLES)}"),
        period: str = PeriodQ,
        interval: str = IntervalQ,
        symbols: str | None = SymbolsQ,
    ) -> Response:
        """One analytics table as a CSV download."""
        name = table.strip().lower()
        if name not in TABLES:
            raise UnknownTable(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
        query = await query_of(period, interval, symbols)
        report = await service.report(query)
        filename = f"coincast_{name}_{query.interval.value}_{query.period}.csv"
        return Response(
            report.csv[name],
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router


class CsvResponse(Response):
    """A CSV download; the OpenAPI spec documents ``text/csv`` (not JSON) for it."""

    media_type = "text/csv"


def _symbols(text: str) -> list[str]:
    try:
        out = [normalize_symbol(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise UnknownSymbol(str(exc)) from None
    if not out:
        raise UnknownSymbol(f"no symbol in symbols={text!r}")
    return out
