"""Forecasts of realised volatility over the next hour or day, from hourly bars.

**What is forecast.** The realised variance of the horizon: the sum, over the hourly bars inside
it, of each bar's Garman-Klass range variance ``0.5 * log(H/L)^2 - (2 log 2 - 1) * log(C/O)^2``
(a far less noisy proxy than a squared return, and positive). Volatility is its square root;
forecasts and scores are on the variance.

**Vol frames.** One row per origin (every hourly bar for 1 h; the last bar of each UTC day for
1 d): ``open_ms`` of the last bar whose close is known, ``rv_last`` (realised variance of the
horizon that just ended: the naive forecast), HAR components ``har_s``/``har_m``/``har_l`` (mean
hourly variance over the short/medium/long window times the horizon's hours), features ``f_*``
for the gradient-boosting model, and ``target``: the realised variance of the next horizon. All
features use bars up to the origin only.

**Models** (``VOL_MODELS``): ``naive`` (last realised variance), ``har`` (log-HAR-RV by OLS,
statsmodels), ``garch``/``gjr_garch`` (``arch``, fitted on hourly percent returns of
the training window, then filtered causally with fixed parameters; the horizon's forecast is the
sum of its hourly variance forecasts), ``lightgbm_vol`` (LightGBM on the log target with
realised-volatility features, Duan's smearing back to variance).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from coincast.domain import Interval, InvalidRequest
from coincast.train.base import F64

HOUR_MS = 3_600_000
_GK = 2.0 * math.log(2.0) - 1.0
# HAR windows in hours per horizon: (short, medium, long) = hour/day/week or day/week/month.
HAR_WINDOWS = {Interval.H1: (1, 24, 168), Interval.D1: (24, 168, 720)}
GBM_WINDOWS = (1, 6, 24, 168, 720)
FLOOR = 1e-12  # variance floor: a flat bar has zero range


def garman_klass(bars: pd.DataFrame) -> F64:
    """Garman-Klass variance of each bar (log-price units squared), floored at :data:`FLOOR`."""
    o, h, lo, c = (bars[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    v = 0.5 * np.log(h / lo) ** 2 - _GK * np.log(c / o) ** 2
    return np.asarray(np.maximum(np.nan_to_num(v, nan=FLOOR), FLOOR), dtype=np.float64)


def vol_frame(bars: pd.DataFrame, horizon: Interval) -> pd.DataFrame:
    """The vol frame of one symbol's hourly bars (columns ``open_ms``, open/high/low/close).

    Raises:
        InvalidRequest: a horizon other than 1h or 1d.
    """
    if horizon not in HAR_WINDOWS:
        raise InvalidRequest(f"volatility horizon {horizon.value!r}: expected 1h or 1d")
    b = bars.sort_values("open_ms").reset_index(drop=True)
    k = horizon.ms // HOUR_MS
    rv = pd.Series(garman_klass(b))
    close = b["close"].to_numpy(float)
    out = pd.DataFrame({"symbol": b["symbol"].to_numpy(), "open_ms": b["open_ms"].to_numpy(np.int64),
                        "close": close, "ret": np.log(close / np.roll(close, 1))})
    out.loc[0, "ret"] = np.nan
    out["rv_last"] = rv.rolling(k, min_periods=k).sum()
    short, medium, long = HAR_WINDOWS[horizon]
    for name, w in (("har_s", short), ("har_m", medium), ("har_l", long)):
        out[name] = rv.rolling(w, min_periods=w).mean() * k
    for w in GBM_WINDOWS:
        out[f"f_logrv_{w}"] = np.log(rv.rolling(w, min_periods=w).mean())
    out["f_absret_1"] = np.log(np.abs(out["ret"]) + 1e-6)
    out["f_absret_24"] = np.log(out["ret"].abs().rolling(24, min_periods=24).mean() + 1e-6)
    out["f_hour"] = (out["open_ms"] // HOUR_MS) % 24
    out["f_weekday"] = (out["open_ms"] // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    # target: the next k bars' variance; NaN unless all k bars follow contiguously
    nxt = rv[::-1].rolling(k, min_periods=k).sum()[::-1].shift(-1)
    span = out["open_ms"].shift(-k) - out["open_ms"]
    out["target"] = nxt.where(span == k * HOUR_MS)
    out["target_ms"] = out["open_ms"] + horizon.ms
    if horizon == Interval.D1:  # origins at day closes: the bar opening at 23:00 UTC
        out = out[(out["open_ms"] % 86_400_000) == 86_400_000 - HOUR_MS]
    return out.reset_index(drop=True)


def _last(rows: pd.DataFrame) -> F64:
    """The naive forecast (last realised variance), also the fallback where a model has no answer."""
    return np.asarray(np.maximum(rows["rv_last"].to_numpy(float), FLOOR), dtype=np.float64)


VOL_INPUTS = ("rv_last", "har_s", "har_m", "har_l", *(f"f_logrv_{w}" for w in GBM_WINDOWS), "f_absret_1",
              "f_absret_24", "f_hour", "f_weekday")


def vol_columns(bars: pd.DataFrame, horizon: Interval) -> pd.DataFrame:
    """For horizon frames: ``open_ms``, the vol inputs prefixed ``vol_`` and ``target_rv``."""
    vf = vol_frame(bars, horizon)
    out = vf.loc[:, ["open_ms", *VOL_INPUTS]].rename(columns={c: f"vol_{c}" for c in VOL_INPUTS})
    out["target_rv"] = vf["target"].to_numpy(float)
    return out


def from_horizon_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A horizon frame's vol columns as a vol frame; ``target`` only where the return target is known.

    Gating on ``target`` keeps every walk-forward's hiding rule: the realised variance of a
    horizon is visible exactly when that horizon's return is.
    """
    out = frame.loc[:, [f"vol_{c}" for c in VOL_INPUTS]].rename(columns=lambda c: c.removeprefix("vol_"))
    out["open_ms"] = frame["open_ms"].to_numpy()
    known = np.isfinite(frame["target"].to_numpy(float)) if "target" in frame else np.zeros(len(frame), bool)
    out["target"] = np.where(known, frame["target_rv"].to_numpy(float), np.nan)
    return out


class VolModel(ABC):
    """A forecaster of the next horizon's realised variance.

    ``fit(train, hourly)`` sees the training rows of a vol frame (``target`` hidden where its
    target time is after the cut) and the hourly rows known at the cut; ``predict(rows, hourly)``
    answers for ``rows`` using, for each, the hourly rows up to its origin only.
    """

    name: ClassVar[str] = "base"
    needs_hourly: ClassVar[bool] = False  # predict() reads the hourly returns, not only the rows

    def __init__(self, horizon: Interval, seed: int = 0) -> None:
        self.horizon = horizon
        self.seed = seed

    @abstractmethod
    def fit(self, train: pd.DataFrame, hourly: pd.DataFrame) -> Self:
        """Learn from the rows whose target is known."""

    @abstractmethod
    def predict(self, rows: pd.DataFrame, hourly: pd.DataFrame) -> F64:
        """Forecast variance for each row (log-price units squared over the horizon)."""


class NaiveVol(VolModel):
    """The last realised variance of one horizon: the reference every model is scored against."""

    name: ClassVar[str] = "naive"

    def fit(self, train: pd.DataFrame, hourly: pd.DataFrame) -> Self:
        return self

    def predict(self, rows: pd.DataFrame, hourly: pd.DataFrame) -> F64:
        return _last(rows)


class HarVol(VolModel):
    """log-HAR-RV (Corsi 2009) by OLS: ``log y = b0 + b1 log s + b2 log m + b3 log l``.

    Back-transformed with Duan's smearing factor (mean of exp(residual) on the training rows).
    """

    name: ClassVar[str] = "har"
    cols: ClassVar[tuple[str, ...]] = ("har_s", "har_m", "har_l")

    def fit(self, train: pd.DataFrame, hourly: pd.DataFrame) -> Self:
        import statsmodels.api as sm

        t = train.dropna(subset=["target", *self.cols])
        x = sm.add_constant(np.log(t[list(self.cols)].to_numpy(float)), has_constant="add")
        self.params: F64 | None = None
        if len(t) <= x.shape[1] or np.linalg.matrix_rank(x) < x.shape[1]:
            return self  # e.g. a flat synthetic series: the naive forecast stands in
        res = sm.OLS(np.log(t["target"].to_numpy(float)), x).fit()
        self.params = np.asarray(res.params, dtype=float)
        self.smear = float(np.mean(np.exp(res.resid)))
        return self

    def predict(self, rows: pd.DataFrame, hourly: pd.DataFrame) -> F64:
        if self.params is None:
            return _last(rows)
        x = np.log(rows[list(self.cols)].to_numpy(float))
        out: F64 = np.exp(self.params[0] + x @ self.params[1:]) * self.smear
        return np.where(np.isfinite(out), out, _last(rows))


class GarchVol(VolModel):
    """GARCH-family model of hourly returns (``arch``), aggregated over the horizon's hours."""

    name: ClassVar[str] = "garch"
    needs_hourly: ClassVar[bool] = True
    spec: ClassVar[dict[str, Any]] = {"vol": "GARCH", "p": 1, "o": 0, "q": 1}
    scale: ClassVar[float] = 100.0  # arch is better conditioned on percent returns

    def _model(self, ret: F64) -> Any:
        from arch import arch_model

        return arch_model(ret * self.scale, mean="Constant", dist="normal", rescale=False, **self.spec)

    def fit(self, train: pd.DataFrame, hourly: pd.DataFrame) -> Self:
        r = hourly["ret"].to_numpy(float)
        res = self._model(r[np.isfinite(r)]).fit(disp="off", show_warning=False)
        self.params = res.params
        return self

    def predict(self, rows: pd.DataFrame, hourly: pd.DataFrame) -> F64:
        # The fixed-parameter filter is causal: the forecast made at bar t uses returns <= t.
        ok = np.isfinite(hourly["ret"].to_numpy(float))
        h = hourly[ok].reset_index(drop=True)
        fixed = self._model(h["ret"].to_numpy(float)).fix(self.params)
        steps = self.horizon.ms // HOUR_MS
        pos = pd.Series(np.arange(len(h)), index=h["open_ms"].to_numpy())
        at = pos.reindex(rows["open_ms"].to_numpy()).to_numpy()
        out = np.full(len(rows), np.nan)
        if np.isfinite(at).any():
            start = int(np.nanmin(at))
            fc = fixed.forecast(horizon=steps, start=start, reindex=False)
            var = fc.variance.to_numpy().sum(axis=1) / self.scale**2
            good = np.isfinite(at)
            out[good] = var[at[good].astype(int) - start]
        return np.where(np.isfinite(out), np.maximum(out, FLOOR), _last(rows))


class GjrGarchVol(GarchVol):
    """GJR-GARCH(1,1,1): a leverage term for negative returns."""

    name: ClassVar[str] = "gjr_garch"
    spec: ClassVar[dict[str, Any]] = {"vol": "GARCH", "p": 1, "o": 1, "q": 1}


class LightGBMVol(VolModel):
    """LightGBM on the log target with realised-volatility, return and calendar features."""

    name: ClassVar[str] = "lightgbm_vol"

    def _x(self, rows: pd.DataFrame) -> F64:
        return np.asarray(rows[[c for c in rows.columns if c.startswith("f_")]].to_numpy(float), dtype=np.float64)

    def fit(self, train: pd.DataFrame, hourly: pd.DataFrame) -> Self:
        import lightgbm as lgb

        t = train.dropna(subset=["target"])
        y = np.log(t["target"].to_numpy(float))
        self.model = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.03, num_leaves=15, min_child_samples=50,
                                       subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                                       random_state=self.seed, n_jobs=1, verbose=-1)
        self.model.fit(self._x(t), y)
        self.smear = float(np.mean(np.exp(y - self.model.predict(self._x(t)))))
        return self

    def predict(self, rows: pd.DataFrame, hourly: pd.DataFrame) -> F64:
        out: F64 = np.exp(np.asarray(self.model.predict(self._x(rows)), dtype=float)) * self.smear
        return out


VOL_MODELS: dict[str, type[VolModel]] = {
    m.name: m for m in (NaiveVol, HarVol, GarchVol, GjrGarchVol, LightGBMVol)
}


def create_vol_model(name: str, horizon: Interval, seed: int = 0) -> VolModel:
    """A volatility model by name; raises InvalidRequest naming the known ones."""
    if name not in VOL_MODELS:
        raise InvalidRequest(f"unknown volatility model {name!r}; expected one of {', '.join(VOL_MODELS)}")
    return VOL_MODELS[name](horizon, seed)
