"""Backtest endpoints: the dashboard's Backtest page.

``backtest_router(services)`` returns an :class:`APIRouter` the app includes::

    GET  /api/v1/backtest/files   predictions parquet files under <data_dir>/backtests and <data_dir>
    POST /api/v1/backtest         run a backtest on one of those files, or on the live stored forecasts

Routes have no ``try``: bad parameters raise :class:`~coincast.domain.InvalidRequest` subclasses
the app maps to a status and ``{"error": code, "detail": message}``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from fastapi import APIRouter
from pydantic import BaseModel, Field

from coincast.backtest.engine import (
    REQUIRED,
    BacktestConfig,
    InvalidPredictions,
    result_payload,
    run_backtest,
)
from coincast.backtest.paper import PaperAccount
from coincast.domain import InvalidRequest, normalize_symbol
from coincast.store.predictions import PredictionStore

if TYPE_CHECKING:
    from coincast.api.app import Services

MAX_FILES = 200
MAX_PATH = 1024
LIVE_LIMIT = 20_000


class PredictionsNotFound(InvalidRequest):
    status_code = 404
    code = "not_found"


class NoLivePredictions(InvalidRequest):
    status_code = 409
    code = "no_live_predictions"


class BacktestRequest(BaseModel):
    """A backtest: ``path`` (relative to the data directory) or live ``symbol`` + ``model`` + ``horizon``."""

    path: str | None = Field(None, max_length=MAX_PATH,
                             description="predictions parquet, relative to the data directory")
    symbol: str | None = Field(None, description="live mode (no path): symbol of the stored forecasts")
    model: str | None = Field(None, description="a model name (file: filter; live: model name or version id)")
    horizon: str = Field("1h", description="live mode: forecast horizon")
    symbols: list[str] | None = Field(None, max_length=100, description="file mode: keep these symbols")
    strategy: str = "long_short"
    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    prob_long: float = 0.55
    prob_short: float = 0.45
    confident_only: bool = False
    sizing: str = "fixed"
    fraction: float = 1.0
    target_vol: float = 0.5
    max_trades: int = Field(200, ge=0, le=5000)
    max_points: int = Field(3000, ge=10, le=20_000)

    def config(self) -> BacktestConfig:
        return BacktestConfig(
            strategy=self.strategy,
            fee_bps=self.fee_bps,
            slippage_bps=self.slippage_bps,
            prob_long=self.prob_long,
            prob_short=self.prob_short,
            confident_only=self.confident_only,
            sizing=self.sizing,
            fraction=self.fraction,
            target_vol=self.target_vol,
        )


def backtest_router(services: Services) -> APIRouter:
    """The backtest routes over the services' data directory and prediction store."""
    data_dir = Path(services.settings.data_dir)
    router = APIRouter(tags=["backtest"])

    @router.get("/api/v1/backtest/files")
    async def files() -> dict[str, object]:
        """Predictions files to backtest (newest first) and whether live forecasts are stored."""
        found = await asyncio.to_thread(list_prediction_files, data_dir)
        return {
            "files": found,  # paths relative to the data directory, never the absolute directory
            "live": isinstance(services.store, PredictionStore),
            "symbols": list(services.settings.symbols),
        }

    @router.post("/api/v1/backtest")
    async def backtest(req: BacktestRequest) -> dict[str, Any]:
        """Metrics, equity curves (strategy and buy-and-hold) and trades per (symbol, model)."""
        cfg = req.config()
        if req.path:
            symbols = [_symbol(s) for s in req.symbols] if req.symbols else None
            path = resolve_under(data_dir, req.path)
            models = [req.model] if req.model else None
            results = await asyncio.to_thread(_run_file, path, cfg, models, symbols)
            source: dict[str, object] = {"kind": "file", "path": req.path}
            position = None
        else:
            if not (req.symbol and req.model):
                raise InvalidRequest("give either path (a predictions file) or symbol and model (live forecasts)")
            symbol = _symbol(req.symbol)
            store = services.store
            if not isinstance(store, PredictionStore):
                raise NoLivePredictions("this store keeps no live forecasts; backtest a predictions file instead")
            got = await store.predictions(symbol, req.horizon, limit=LIVE_LIMIT)
            mine = [p for p in got if req.model in (p.model, p.model_id)]
            if not mine:
                raise NoLivePredictions(
                    f"no live forecasts of {req.model} for {symbol} {req.horizon}; promote a model and let it run"
                )
            account = PaperAccount(symbol, mine[-1].model, req.horizon, cfg)
            account.observe(mine)
            res = await asyncio.to_thread(account.result)
            if res is None:
                raise NoLivePredictions(f"no scored live forecast of {req.model} for {symbol} {req.horizon} yet")
            results = [res]
            pos = account.position()
            position = asdict(pos) if pos else None
            source = {"kind": "live", "symbol": symbol, "model": req.model, "horizon": req.horizon}
        return {
            "config": asdict(cfg),
            "source": source,
            "position": position,
            "results": [result_payload(r, max_trades=req.max_trades, max_points=req.max_points) for r in results],
        }

    return router


def _symbol(text: str) -> str:
    try:
        return normalize_symbol(text)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def resolve_under(data_dir: Path, relative: str) -> Path:
    """``relative`` inside ``data_dir`` (no escaping it); raises PredictionsNotFound when absent.

    Raises:
        InvalidRequest: a path with a NUL byte, too long for the file system, or outside ``data_dir``.
    """
    if "\x00" in relative or len(relative) > MAX_PATH:
        raise InvalidRequest(f"path must be at most {MAX_PATH} characters with no NUL byte")
    base = data_dir.resolve()
    try:
        path = (base / relative).resolve()
        if not path.is_relative_to(base):
            raise InvalidRequest(f"path {relative!r} is outside the data directory")
        found = path.is_file()
    except OSError:  # a name component too long, a loop of symlinks: nothing a caller can open
        found = False
    if not found:
        raise PredictionsNotFound(f"no predictions file {relative!r} under the data directory")
    return path


def _run_file(path: Path, cfg: BacktestConfig, models: list[str] | None, symbols: list[str] | None) -> list[Any]:
    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as exc:
        # the library's text can name the absolute path; the caller gave the file's name
        raise InvalidPredictions(f"cannot read {path.name} as parquet ({type(exc).__name__})") from None
    return run_backtest(frame, cfg, models=models, symbols=symbols)


def list_prediction_files(data_dir: Path) -> list[dict[str, object]]:
    """Parquet files with the predictions columns in ``<data_dir>/backtests`` (recursive) and ``<data_dir>``."""
    base = data_dir.resolve()
    if not base.is_dir():
        return []
    candidates = sorted({*base.glob("*.parquet"), *(base / "backtests").rglob("*.parquet")})
    out: list[tuple[float, dict[str, object]]] = []
    for path in candidates:
        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError):
            continue
        if not set(REQUIRED) <= set(schema.names):
            continue
        st = path.stat()
        out.append(
            (
                st.st_mtime,
                {
                    "path": str(path.relative_to(base)),
                    "bytes": st.st_size,
                    "rows": pq.ParquetFile(path).metadata.num_rows,
                },
            )
        )
    out.sort(key=lambda item: -item[0])
    return [d for _, d in out[:MAX_FILES]]
