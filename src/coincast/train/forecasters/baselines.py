"""Baselines every model must beat: persistence, drift, moving average, GARCH(1,1) volatility."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from coincast.train.base import F64
from coincast.train.forecasters.core import ReturnForecaster


class Persistence(ReturnForecaster):
    """Random walk: the next close equals the last close; interval from EWMA volatility."""

    name: ClassVar[str] = "persistence"

    def _fit_point(self, frame: pd.DataFrame) -> None:
        return None

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        return np.zeros(rows.shape[0]), None


class Drift(ReturnForecaster):
    """Random walk with drift: the mean training log return per horizon."""

    name: ClassVar[str] = "drift"

    def __init__(self, **kw: float | int) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.drift = 0.0

    def _fit_point(self, frame: pd.DataFrame) -> None:
        y = frame["target"].to_numpy(float)
        self.drift = float(np.nanmean(y)) if np.isfinite(y).any() else 0.0

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        return np.full(rows.shape[0], self.drift), None


class MovingAverage(ReturnForecaster):
    """The next close equals the mean of the last ``window`` closes (a smoothing baseline)."""

    name: ClassVar[str] = "moving_average"

    def __init__(self, *, window: int = 24, **kw: float | int) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.window = int(window)

    def _fit_point(self, frame: pd.DataFrame) -> None:
        return None

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        close = frame["close"]
        ma = close.rolling(self.window, min_periods=1).mean().to_numpy(float)
        return np.log(ma[rows] / close.to_numpy(float)[rows]), None


class Garch(ReturnForecaster):
    """Persistence for the price, GARCH(1,1) (fitted with ``arch``) for the interval width.

    The fitted parameters are applied with the causal recursion
    ``s2[t+1] = omega + alpha * r[t]^2 + beta * s2[t]`` so the volatility at origin ``t`` uses
    returns up to ``t`` only.
    """

    name: ClassVar[str] = "garch"
    refit: ClassVar[bool] = False

    def __init__(self, **kw: float | int) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.params = (0.0, 0.05, 0.9)
        self.fitted = False
        self.mean_r = 0.0
        self.scale = 1.0

    def _fit_point(self, frame: pd.DataFrame) -> None:
        from arch import arch_model

        y = frame["target"].to_numpy(float)
        r = y[np.isfinite(y)]
        # arch is better conditioned on percent-scale returns.
        self.scale = 100.0
        res = arch_model(r * self.scale, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(
            disp="off", show_warning=False
        )
        p = res.params
        self.mean_r = float(p["mu"]) / self.scale
        self.params = (float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]))
        self.fitted = True

    def _sigma(self, frame: pd.DataFrame) -> F64:
        if not self.fitted:
            return super()._sigma(frame)
        omega, alpha, beta = self.params
        r = frame["h_ret_1"].to_numpy(float) * self.scale - self.mean_r * self.scale
        out = np.empty(r.shape)
        var = omega / max(1e-9, 1.0 - alpha - beta)
        for i in range(r.shape[0]):
            if np.isfinite(r[i]):
                var = omega + alpha * r[i] ** 2 + beta * var
            out[i] = var
        return np.sqrt(out) / self.scale

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        return np.zeros(rows.shape[0]), None
