"""The numbers an answer may use, read from the running platform's services.

Every function returns plain JSON-ready dicts (rounded floats) so the same facts go to the
template, to the LLM prompt and to the API response.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from coincast.analytics.risk import annualised_vol, max_drawdown, var_historical
from coincast.domain import Candle, Interval
from coincast.registry.base import live_key
from coincast.registry.track import track_record
from coincast.stream.indicators import LiveIndicators

if TYPE_CHECKING:
    from coincast.api.app import Services

RISK_BARS = 24 * 30  # hourly candles behind the risk figures: 30 days
TREND_BARS = 24  # hourly bars behind the trend's "change over the last day"
TRACK_WINDOW = 500  # newest scored forecasts behind a track record


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


async def candles(services: Services, symbol: str, interval: Interval, limit: int) -> list[Candle]:
    """Stored closed candles, oldest first, with the stream's newest closed ones merged in."""
    rows = await services.store.history(symbol, interval, start_ms=0, end_ms=2**62, limit=limit)
    merged = {c.open_ms: c for c in rows}
    merged.update((c.open_ms, c) for c in services.live.recent(symbol, interval) if c.closed)
    return [merged[k] for k in sorted(merged)][-limit:]


async def price(services: Services, symbol: str) -> dict[str, Any] | None:
    """Last price and 24-hour change from the live ticker, else from the stored hourly candles."""
    t = services.live.ticker(symbol)
    if t is not None:
        return {
            "symbol": symbol,
            "price": t.price,
            "change_24h_pct": _r(t.change_24h_pct, 2),
            "high_24h": t.high_24h,
            "low_24h": t.low_24h,
            "volume_24h": _r(t.volume_24h, 2),
            "time_ms": t.time_ms,
            "source": "live",
        }
    bars = await candles(services, symbol, Interval.H1, 25)
    if not bars:
        return None
    day = bars[-24:]
    last, first = day[-1], day[0]
    return {
        "symbol": symbol,
        "price": last.close,
        "change_24h_pct": _r((last.close / first.open - 1) * 100, 2),
        "high_24h": max(c.high for c in day),
        "low_24h": min(c.low for c in day),
        "volume_24h": _r(sum(c.volume for c in day), 2),
        "time_ms": last.close_ms,
        "source": "store 1h",
    }


async def technical(services: Services, symbol: str, interval: Interval = Interval.H1) -> dict[str, Any] | None:
    """RSI, EMAs, MACD, Bollinger, ATR at ``interval`` with a trend reading; None without data."""
    values: dict[str, float | None] = {}
    board = services.board.values(symbol, interval) if services.board is not None else None
    if board and board.get("ready"):
        values = dict(board["closed"])  # type: ignore[call-overload]
        source = "live board"
    bars = await candles(services, symbol, interval, 200)
    if not values:
        if len(bars) < 2:
            return None
        ind = LiveIndicators(symbol, interval)
        for c in bars:
            ind.update(c)
        values = ind.values
        source = f"{len(bars)} stored {interval.value} candles"
    close = bars[-1].close if bars else None
    ema20, ema50, rsi = values.get("ema_20"), values.get("ema_50"), values.get("rsi_14")
    trend = None
    if close is not None and ema20 is not None and ema50 is not None:
        trend = "up" if close > ema20 > ema50 else "down" if close < ema20 < ema50 else "sideways"
    rsi_zone = None if rsi is None else "overbought" if rsi >= 70 else "oversold" if rsi <= 30 else "neutral"
    return {
        "symbol": symbol,
        "interval": interval.value,
        "close": close,
        "trend": trend,
        "rsi_zone": rsi_zone,
        "source": source,
        **{k: _r(v) for k, v in values.items()},
    }


async def technical_best(services: Services, symbol: str) -> dict[str, Any] | None:
    """:func:`technical` at 1h, else at the longest streamed interval below it with enough candles for RSI.

    A fresh install has few hourly candles; its minute candles can already answer.
    """
    shorter = sorted((i for i in services.settings.stream.intervals if i.ms < Interval.H1.ms), key=lambda i: -i.ms)
    intervals = [Interval.H1, *shorter]
    first: dict[str, Any] | None = None
    for iv in intervals:
        found = await technical(services, symbol, iv)
        first = first or found
        if found is not None and found.get("rsi_14") is not None:
            return found
    return first


async def risk(services: Services, symbol: str) -> dict[str, Any] | None:
    """Annualised volatility, max drawdown, 1-hour 95% VaR and 30-day return over stored hourly candles."""
    bars = await candles(services, symbol, Interval.H1, RISK_BARS)
    if len(bars) < 3:
        return None
    closes = np.array([c.close for c in bars], dtype=float)
    rets = np.diff(np.log(closes))
    dd = max_drawdown(closes)
    return {
        "symbol": symbol,
        "bars": len(bars),
        "days": _r(len(bars) / 24, 1),
        "volatility_annual_pct": _r(annualised_vol(rets, 24 * 365) * 100, 2),
        "max_drawdown_pct": _r(dd.depth * 100, 2),
        "var_95_1h_pct": _r(var_historical(rets, 0.95) * 100, 3),
        "return_pct": _r((closes[-1] / closes[0] - 1) * 100, 2),
    }


async def forecast(services: Services, symbol: str, horizon: Interval) -> dict[str, Any] | None:
    """The newest live forecast at ``horizon`` with the serving model's live track record, or None."""
    models = services.models
    if models is None:
        return None
    rows = await models.predictions.predictions(symbol, horizon.value, limit=1)
    if not rows:
        return None
    p = rows[-1]
    scored = await models.predictions.predictions(
        symbol, horizon.value, limit=TRACK_WINDOW, model_id=p.model_id, scored=True
    )
    rec = track_record(scored)
    move = (p.predicted_price / p.origin_price - 1) * 100 if p.origin_price else None
    return {
        "symbol": symbol,
        "horizon": horizon.value,
        "model": p.model,
        "model_id": p.model_id,
        "origin_price": p.origin_price,
        "predicted_price": _r(p.predicted_price, 6),
        "change_pct": _r(move, 3),
        "lower": _r(p.lower, 6),
        "upper": _r(p.upper, 6),
        "level": p.level,
        "prob_up": _r(p.prob_up, 3),
        "target_ms": p.target_ms + Interval(p.interval).ms,
        "created_ms": p.created_ms,
        "track_record": {k: _r(v) if isinstance(v, float) else v for k, v in rec.items()},
    }


async def model(services: Services, symbol: str, horizon: Interval) -> dict[str, Any] | None:
    """The live registered model for (symbol, horizon): family, features, training window, metrics."""
    models = services.models
    if models is None:
        return None
    model_id = models.registry.live().get(live_key(symbol, horizon.value))
    if model_id is None:
        return None
    v = await asyncio.to_thread(models.registry.get, model_id)
    metrics = {
        k: _r(val) if isinstance(val, float) else val
        for k, val in v.metrics.items()
        if isinstance(val, (int, float, str)) or val is None
    }
    return {
        "symbol": symbol,
        "horizon": horizon.value,
        "model_id": v.id,
        "model": v.model,
        "interval": v.interval,
        "features": len(v.features),
        "feature_set": v.feature_set,
        "train_start_ms": v.train_start_ms,
        "train_end_ms": v.train_end_ms,
        "metrics": metrics,
    }
