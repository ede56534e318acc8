"""One call for serving: fit a registry model on all known history and forecast from the last bar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from coincast.domain import Interval, UnknownSymbol
from coincast.train.base import Forecast
from coincast.train.features import pipeline_available, pipeline_features
from coincast.train.forecasters.core import ReturnForecaster
from coincast.train.frames import horizon_frames
from coincast.train.registry import create_model
from coincast.train.signals import Signals, technical_signals


@dataclass(frozen=True, slots=True)
class LatestForecast:
    """The forecast from the last closed bar, the fitted model and the signals at that bar."""

    forecast: Forecast
    signals: Signals
    model: ReturnForecaster


def latest_forecast(
    klines: pd.DataFrame,
    symbol: str,
    horizon: Interval,
    model: str = "lightgbm",
    *,
    seed: int = 0,
    level: float = 0.9,
    **params: Any,
) -> LatestForecast:
    """Fit ``model`` on every origin of ``symbol`` whose target is known, forecast the last bar.

    Args:
        klines: closed bars (schema of ``klines_1h.parquet``), any number of symbols.
        symbol: the symbol to forecast.
        horizon: ``Interval.H1`` or ``Interval.D1`` (a whole multiple of the bar length).

    Raises:
        UnknownSymbol: ``symbol`` absent from ``klines``.
        InvalidRequest: unknown model or too little history.
    """
    extra = pipeline_features if pipeline_available() else None
    frames = horizon_frames(klines, horizon, extra_features=extra)
    if symbol not in frames:
        raise UnknownSymbol(f"no klines for {symbol!r}; have {', '.join(sorted(frames))}")
    frame = frames[symbol]
    fitted = create_model(model, seed=seed, level=level, **params).fit(frame)
    fc = fitted.predict(frame.drop(columns="target"))
    return LatestForecast(fc, technical_signals(frame.iloc[-1]), fitted)
