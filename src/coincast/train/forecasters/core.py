"""Shared machinery of every forecaster: calibration split, conformal intervals, save/load.

A concrete model implements two methods on horizon frames (see :mod:`coincast.train.base`):

* ``_fit_point(frame)``: learn from the rows whose ``target`` is known;
* ``_point(frame, rows)``: for the row positions ``rows`` return the forecast mean log return and,
  for direction classifiers, P(up); each answer may use rows ``<= row`` only.

:meth:`ReturnForecaster.fit` holds the last ``cal_fraction`` of the training origins out of the
first fit to collect calibration residuals, then (``refit=True``) refits on everything.
Classifiers turn P(up) into a mean log return as ``(2p - 1) * sigma * sqrt(2 / pi)``: the mean of
a move whose size is half-normal with the origin's volatility ``sigma`` and whose sign is up with
probability ``p``. Their predicted price is therefore ``close * exp(that)``: close to the last
price, leaning the way the classifier leans, never a level forecast of its own.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np
import pandas as pd

from coincast.domain import InvalidRequest
from coincast.train.base import BAND_LEVELS, DEFAULT_LEVEL, F64, Forecast
from coincast.train.conformal import rolling_conformal
from coincast.train.volatility import HAR_WINDOWS, VolModel, create_vol_model, from_horizon_frame

# The volatility model behind every forecaster's sigma (interval width, classifiers' move size,
# vol-targeted sizing): log-HAR-RV. LightGBM on RV features scored a little better (QLIKE 0.495
# against 0.526 of naive's at 1 h, benchmarks/README-forecast.md) but costs a boosted fit per model
# and window instead of one OLS; choose it per model with ``vol_model="lightgbm_vol"``.
DEFAULT_VOL_MODEL = "har"

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_HORIZON_NAMES = {60_000: "1m", 300_000: "5m", 900_000: "15m", 3_600_000: "1h", 14_400_000: "4h", 86_400_000: "1d"}


def horizon_name(horizon_ms: int) -> str:
    """``3600000 -> '1h'``; other lengths as minutes (``'90m'``)."""
    return _HORIZON_NAMES.get(horizon_ms, f"{horizon_ms // 60_000}m")


class ReturnForecaster(ABC):
    """Base class: a model of the forward log return with calibrated intervals."""

    name: ClassVar[str] = "base"
    refit: ClassVar[bool] = True
    is_classifier: ClassVar[bool] = False

    def __init__(
        self,
        *,
        level: float = DEFAULT_LEVEL,
        seed: int = 0,
        cal_fraction: float = 0.2,
        min_cal: int = 30,
        max_cal: int = 2000,
        vol_model: str | None = DEFAULT_VOL_MODEL,
    ) -> None:
        if not 0.0 < level < 1.0:
            raise InvalidRequest(f"interval level must be in (0, 1), got {level}")
        self.level = level
        self.seed = seed
        self.cal_fraction = cal_fraction
        self.min_cal = min_cal
        self.max_cal = max_cal
        self.vol_model = vol_model
        self.vol: VolModel | None = None
        self.horizon_ms = 0
        self.cal_end_ms = 0
        self.cal_resid: F64 = np.empty(0)
        self.sigma_fallback = float("nan")
        self.symbol = ""

    # --- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _fit_point(self, frame: pd.DataFrame) -> None:
        """Implemented by each subclass."""

    @abstractmethod
    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        """Implemented by each subclass."""

    # --- shared -------------------------------------------------------------------------------
    def _sigma(self, frame: pd.DataFrame) -> F64:
        """Volatility of the next log return known at each row.

        The forecast of the fitted volatility model (:attr:`vol_model`, on realised-volatility
        inputs up to the row) where the frame has them; else, and wherever it has no answer, the
        EWMA volatility ``h_vol``.
        """
        s = frame["h_vol"].to_numpy(float).copy()
        vol: VolModel | None = getattr(self, "vol", None)  # models pickled before it existed have none
        if vol is not None and "vol_rv_last" in frame.columns:
            v = np.sqrt(vol.predict(from_horizon_frame(frame), frame))
            s = np.where(np.isfinite(v) & (v > 0), v, s)
        bad = ~(np.isfinite(s) & (s > 0))
        s[bad] = self.sigma_fallback
        return np.asarray(s, dtype=np.float64)

    def _fit_vol(self, frame: pd.DataFrame) -> None:
        """Fit the volatility model behind :meth:`_sigma` on the rows whose target is known."""
        self.vol = None
        hz = next((i for i in HAR_WINDOWS if i.ms == self.horizon_ms), None)
        if self.vol_model is None or hz is None or "vol_rv_last" not in frame.columns:
            return
        rows = from_horizon_frame(frame)
        usable = rows.dropna(subset=["target", "rv_last", "har_s", "har_m", "har_l"])
        model = create_vol_model(self.vol_model, hz, seed=self.seed)
        if model.needs_hourly:
            raise InvalidRequest(f"vol_model {self.vol_model!r} needs hourly returns; use har or lightgbm_vol")
        if len(usable) >= 2 * self.min_cal:
            self.vol = model.fit(rows, frame)

    def _usable(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows that can serve as training samples (subclasses with windows need history)."""
        return np.ones(len(frame), dtype=bool)

    def _mean(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        mu, p = self._point(frame, rows)
        if p is not None and self.is_classifier:
            mu = (2.0 * p - 1.0) * self._sigma(frame)[rows] * _SQRT_2_OVER_PI
        return mu, p

    def fit(
        self,
        train: pd.DataFrame,
        *,
        residuals: F64 | None = None,
        previous: ReturnForecaster | None = None,
    ) -> Self:
        """Fit on a horizon frame and calibrate the interval on residuals the fit never saw.

        Args:
            train: horizon frame; ``target`` is NaN wherever its target time was not visible.
            residuals: out-of-sample normalised residuals realised before the end of ``train``
                (a walk-forward's earlier windows). With at least ``min_cal`` of them the model is
                fitted once on everything and they seed the interval pool; otherwise the last
                ``cal_fraction`` of the samples is held out of a first fit to produce them.
            previous: the model of the preceding window, which families that can warm-start
                (the torch nets) continue from.

        Raises:
            InvalidRequest: fewer than ``2 * min_cal`` usable training samples.
        """
        frame = train.reset_index(drop=True)
        om = frame["open_ms"].to_numpy()
        steps = np.diff(om)
        steps = steps[steps > 0]  # a frame pooled over coins repeats each origin once per coin
        self.horizon_ms = int(pd.Series(steps).mode().iloc[0]) if steps.size else 0
        self.symbol = str(frame["symbol"].iloc[0]) if len(frame) else ""
        vol = frame["h_vol"].to_numpy(float)
        self.sigma_fallback = float(np.nanmedian(vol)) if np.isfinite(vol).any() else 0.01
        self._fit_vol(frame)
        y = frame["target"].to_numpy(float)
        sigma = self._sigma(frame)
        idx = np.flatnonzero(np.isfinite(y) & np.isfinite(sigma) & (sigma > 0) & self._usable(frame))
        if idx.size < 2 * self.min_cal or self.horizon_ms == 0:
            raise InvalidRequest(
                f"{self.name}: only {idx.size} usable training samples for {self.symbol or 'the symbol'}; "
                f"need at least {2 * self.min_cal} (move --train-end later)"
            )
        self._warm_start(previous)
        if residuals is not None and np.isfinite(residuals).sum() >= self.min_cal:
            self._fit_point(frame)
            r = residuals[np.isfinite(residuals)]
            self.cal_resid = r[-self.max_cal :].astype(float)
            self.cal_end_ms = int(om[idx[-1]])
            return self
        n_cal = int(np.clip(round(self.cal_fraction * idx.size), self.min_cal, self.max_cal))
        cal = idx[-n_cal:]
        head = frame.copy()
        head.loc[cal[0] :, "target"] = np.nan  # the first fit never sees a calibration target
        self._fit_vol(head)
        self._fit_point(head)
        mu, _ = self._mean(frame, cal)
        sigma_cal = self._sigma(frame)[cal]  # a fitted volatility model may differ from the EWMA
        self.cal_resid = ((y[cal] - mu) / sigma_cal).astype(float)
        self.cal_end_ms = int(om[cal[-1]])
        if self.refit:
            self._fit_vol(frame)
            self._fit_point(frame)
        return self

    def _warm_start(self, previous: ReturnForecaster | None) -> None:
        """Hook for families that continue from the previous window's model (default: none)."""
        return None

    def predict(self, history: pd.DataFrame, *, start_ms: int | None = None) -> Forecast:
        """Forecast every origin of ``history`` at or after ``start_ms`` (default: the last row)."""
        frame = history.drop(columns=[c for c in history.columns if c == "target"]).reset_index(drop=True)
        om = frame["open_ms"].to_numpy().astype(np.int64)
        wanted_all = om >= (om[-1] if start_ms is None else start_ms)
        # Rows after the calibration block supply realised residuals for the adaptive pool.
        live = (om > self.cal_end_ms) | wanted_all
        rows = np.flatnonzero(live)
        close = frame["close"].to_numpy(float)
        target_ms = om + self.horizon_ms
        by_time = pd.Series(close, index=om)
        realized = np.log(by_time.reindex(target_ms[rows]).to_numpy() / close[rows])
        sigma = self._sigma(frame)[rows]
        mu, p = self._mean(frame, rows) if rows.size else (np.empty(0), None)
        wanted = wanted_all[rows]
        q, p_pool, q_bands = rolling_conformal(
            origin_ms=om[rows],
            target_ms=target_ms[rows],
            mu=mu,
            sigma=sigma,
            realized=realized,
            wanted=wanted,
            initial=self.cal_resid,
            level=self.level,
            band_levels=BAND_LEVELS,
        )
        mu_w, sig_w, c_w = mu[wanted], sigma[wanted], close[rows][wanted]
        prob = p[wanted] if p is not None else p_pool
        return Forecast(
            symbol=str(frame["symbol"].iloc[-1]) if len(frame) else self.symbol,  # a pooled model serves many
            model=self.name,
            horizon=horizon_name(self.horizon_ms),
            level=self.level,
            origin_ms=om[rows][wanted],
            target_ms=target_ms[rows][wanted],
            origin_price=c_w,
            predicted_price=c_w * np.exp(mu_w),
            lower=c_w * np.exp(mu_w - q * sig_w),
            upper=c_w * np.exp(mu_w + q * sig_w),
            prob_up=np.asarray(prob, dtype=float),
            volatility=sig_w,
            bands=tuple(
                (b, c_w * np.exp(mu_w - q_bands[:, j] * sig_w), c_w * np.exp(mu_w + q_bands[:, j] * sig_w))
                for j, b in enumerate(BAND_LEVELS)
            ),
        )

    def save(self, directory: Path) -> None:
        """Pickle the fitted model with joblib into ``directory/model.joblib`` (trusted files only)."""
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / "model.joblib")

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Load a model saved by :meth:`save`; raises InvalidRequest on a different model type."""
        obj: Any = joblib.load(directory / "model.joblib")
        if not isinstance(obj, cls):
            raise InvalidRequest(f"{directory} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj
