"""The FastAPI application: REST, WebSocket, metrics and the dashboard, from ready services.

``create_app`` takes a :class:`Services` value and builds no collaborators itself, so tests can
hand it an in-memory pipeline. Routes have no ``try``: one handler maps ``InvalidRequest`` to its
status and ``{"error": code, "detail": message}``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly
from fastapi import FastAPI, Query, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import coincast
from coincast.api.docs import install_docs
from coincast.api.errors import install_error_handlers
from coincast.api.limits import RateLimits, RequestLimits
from coincast.api.ws import Hub
from coincast.domain import Interval, InvalidInterval, InvalidTimeRange, require_symbol
from coincast.settings import Settings
from coincast.sources.base import SourceHealth
from coincast.store.base import CandleStore
from coincast.stream.board import IndicatorBoard
from coincast.stream.live import LiveState
from coincast.stream.processor import StreamProcessor

if TYPE_CHECKING:
    from coincast.jobs.history import BackfillProgress
    from coincast.jobs.service import ModelService

UI_DIR = Path(str(resources.files("coincast.api") / "ui"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MAX_LIMIT = 5_000


@dataclass
class Services:
    """What the API reads: all built and started by ``wiring.Runtime``."""

    settings: Settings
    store: CandleStore
    live: LiveState
    hub: Hub
    source: SourceHealth
    processor: StreamProcessor | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    dead_letters: Any = None  # a counter object with .count, set by wiring
    models: ModelService | None = None  # registry, live predictor, training jobs (coincast.jobs.service)
    board: IndicatorBoard | None = None  # live indicators per (symbol, interval)
    history: BackfillProgress | None = None  # the background Binance history download (coincast.jobs.history)
    limits: RateLimits | None = None  # default: from settings (memory, or Redis when cache.url is redis://)


def create_app(services: Services) -> FastAPI:
    s = services.settings
    app = FastAPI(
        title="coincast",
        version=coincast.__version__,
        description="Real-time crypto market data, candles and honest forecasts.",
        docs_url=None, redoc_url=None,  # served offline by install_docs
    )
    install_docs(app)
    app.state.services = services
    from coincast.api.routes.analytics import analytics_router
    from coincast.api.routes.backtest import backtest_router
    from coincast.api.routes.models import models_router  # the routes import this module's parse_time
    app.add_middleware(RequestLimits, limits=services.limits or RateLimits.from_settings(s),
                       max_body_bytes=s.api.max_body_bytes)
    if s.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(s.api.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])

    install_error_handlers(app)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, object]:
        proc = services.processor
        src = services.source
        stats = proc.aggregator.stats if proc else None
        status = "ok"
        if src.stale_since_ms or (not src.connected and not src.simulated):
            status = "degraded"
        return {
            "status": status,
            "version": coincast.__version__,
            "uptime_s": round(time.monotonic() - services.started_monotonic, 3),
            "source": {
                "name": src.name, "simulated": src.simulated, "connected": src.connected,
                "last_message_ms": src.last_message_ms, "stale_since_ms": src.stale_since_ms,
                "reconnects": src.reconnects, "gaps": src.gaps, "gaps_repaired": src.gaps_repaired,
                "last_error": src.last_error, "messages": src.messages, **src.detail,
            },
            "rates": {
                "trades_per_s": round(proc.rates.trades_per_s, 2) if proc else 0.0,
                "candles_per_s": round(proc.rates.candles_per_s, 2) if proc else 0.0,
            },
            "counts": {
                "trades": stats.trades if stats else 0,
                "late_trades": stats.late_trades if stats else 0,
                "duplicate_trades": stats.duplicate_trades if stats else 0,
                "candles_closed": stats.candles_closed if stats else 0,
                "dead_letters": getattr(services.dead_letters, "count", 0),
            },
            "symbols": list(s.symbols),
            "models": services.models.health() if services.models else None,
            "history": services.history.as_dict() if services.history else None,
        }

    @app.get("/api/v1/symbols", tags=["market"])
    async def symbols() -> dict[str, object]:
        return {"symbols": list(s.symbols), "intervals": [i.value for i in s.stream.intervals]}

    @app.get("/api/v1/candles/{symbol}", tags=["market"])
    async def candles(
        symbol: str,
        interval: str = Query("1m", description="one of the streamed intervals, e.g. 1m, 5m, 1h, 1d"),
        start: str | None = Query(None, description="ISO-8601 time or epoch ms (inclusive)"),
        end: str | None = Query(None, description="ISO-8601 time or epoch ms (inclusive)"),
        limit: int = Query(500, ge=1, le=MAX_LIMIT),
    ) -> dict[str, object]:
        sym = require_symbol(symbol, s.symbols)
        iv = Interval.parse(interval)
        start_ms = parse_time(start, "start") if start else 0
        end_ms = parse_time(end, "end") if end else 2**62
        if start_ms > end_ms:
            raise InvalidTimeRange(f"start {start!r} is after end {end!r}")
        rows = await services.store.history(sym, iv, start_ms=start_ms, end_ms=end_ms, limit=limit)
        recent = [c for c in services.live.recent(sym, iv) if start_ms <= c.open_ms <= end_ms]
        if recent:  # the stream's newest candles win over stored copies and fill what is not flushed yet
            merged = {c.open_ms: c for c in rows}
            merged.update((c.open_ms, c) for c in recent)
            rows = [merged[k] for k in sorted(merged)][-limit:]
        return {"symbol": sym, "interval": iv.value, "candles": [c.as_dict() for c in rows]}

    @app.get("/api/v1/indicators/{symbol}", tags=["market"])
    async def indicators(
        symbol: str, interval: str = Query("1m", description="one of the streamed intervals")
    ) -> dict[str, object]:
        """Live indicators (EMA 20/50, SMA 20, Bollinger 20/2, RSI 14, MACD 12/26/9, ATR 14), updated
        incrementally per closed candle; ``provisional`` includes the candle in progress."""
        sym = require_symbol(symbol, s.symbols)
        iv = Interval.parse(interval)
        if iv not in s.stream.intervals:
            known = ", ".join(i.value for i in s.stream.intervals)
            raise InvalidInterval(f"interval {iv.value!r} is not streamed; streamed: {known}")
        values = services.board.values(sym, iv) if services.board is not None else {}
        return {"symbol": sym, "interval": iv.value, **values}

    @app.get("/api/v1/tickers", tags=["market"])
    async def tickers() -> dict[str, object]:
        return {"tickers": [t.as_dict() for t in services.live.tickers(s.symbols)]}

    # aliases kept from the reference systems
    @app.get("/api/crypto/{symbol}", tags=["aliases"])
    async def crypto_latest(symbol: str) -> dict[str, object]:
        sym = require_symbol(symbol, s.symbols)
        t = services.live.ticker(sym)
        return {"symbol": sym, "ticker": t.as_dict() if t else None}

    @app.get("/api/crypto/history/{symbol}", tags=["aliases"])
    async def crypto_history(symbol: str, interval: str = "1h", limit: int = Query(500, ge=1, le=MAX_LIMIT)
                             ) -> dict[str, object]:
        return await candles(symbol, interval=interval, start=None, end=None, limit=limit)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await services.hub.serve(websocket)

    if services.models is not None:
        app.include_router(models_router(services.models))
    app.include_router(analytics_router(services))
    app.include_router(backtest_router(services))
    from coincast.api.routes.assistant import assistant_router

    app.include_router(assistant_router(services))

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    async def metrics() -> Response:
        """Prometheus metrics (answered here, not redirected to /metrics/)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics/", metrics, methods=["GET"], include_in_schema=False)  # scrapers set up before

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    if UI_DIR.is_dir():
        app.mount("/static", _RevalidatedStatic(directory=UI_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(UI_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app


class _RevalidatedStatic(StaticFiles):
    """The dashboard's own files: browsers revalidate them (ETag) so an upgrade is seen at once."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


_EPOCH_MS = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() also reads '²' and Arabic digits
MAX_TIME_TEXT = 64


def parse_time(text: str, name: str) -> int:
    """Epoch ms from an integer string (ms) or an ISO-8601 time (naive means UTC).

    Raises:
        InvalidTimeRange: naming the parameter and value (epoch ms must be in [0, 2**62)).
    """
    t = text.strip()
    shown = text if len(text) <= MAX_TIME_TEXT else f"{text[:MAX_TIME_TEXT]}... ({len(text)} characters)"
    if _EPOCH_MS.fullmatch(t):
        value = int(t)
    else:
        try:
            if len(t) > MAX_TIME_TEXT:
                raise ValueError(t)
            dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            value = int(dt.timestamp() * 1000)
        except (ValueError, OverflowError):
            raise InvalidTimeRange(
                f"{name}={shown!r} is not a time; use ISO-8601 (2024-01-31T12:00:00Z) or epoch milliseconds"
            ) from None
    if not 0 <= value < 2**62:
        raise InvalidTimeRange(f"{name}={shown!r} is out of range (1970-01-01 or later)")
    return value
