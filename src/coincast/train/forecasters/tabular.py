"""Models on the feature table: one row of features per origin, no sequence structure.

Regressors learn the volatility-normalised forward return ``r / sigma`` (scale-free across coins
and calm or wild periods) and forecast ``mu = prediction * sigma``. Classifiers learn ``r > 0``.
Feature columns are fixed at fit time; every imputer and scaler lives inside the estimator so it is
fitted on the training window only.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from coincast.train.base import F64
from coincast.train.forecasters.core import DEFAULT_VOL_MODEL, ReturnForecaster
from coincast.train.frames import feature_names


class TabularForecaster(ReturnForecaster):
    """Base for estimator-backed models; subclasses implement :meth:`_make`."""

    name: ClassVar[str] = "tabular"
    # A rolling year of hourly origins: older regimes add cost more than skill.
    max_train_rows: ClassVar[int | None] = 8760
    # scikit-learn estimators get their OpenMP/BLAS pools capped; LightGBM, XGBoost and CatBoost
    # take n_jobs themselves (capping their OpenMP pool under them makes LightGBM crawl).
    cap_threads: ClassVar[bool] = False

    def __init__(
        self,
        *,
        n_jobs: int = 1,
        level: float = 0.9,
        seed: int = 0,
        vol_model: str | None = DEFAULT_VOL_MODEL,
        pooled: int = 1,
        **params: Any,
    ) -> None:
        super().__init__(level=level, seed=seed, vol_model=vol_model)
        self.pooled = max(1, int(pooled))  # coins in the training frame: the row cap scales with them
        self.n_jobs = n_jobs
        self.params = params
        self.features: list[str] = []
        self.estimator: Any = None

    @abstractmethod
    def _make(self) -> Any:
        """Implemented by each subclass."""

    def _matrix(self, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        x = frame.loc[:, self.features].to_numpy(dtype=np.float64)[rows]
        x[~np.isfinite(x)] = np.nan
        return np.asarray(x, dtype=np.float64)

    def _fit_point(self, frame: pd.DataFrame) -> None:
        self.features = feature_names(frame)
        y = frame["target"].to_numpy(float)
        sigma = self._sigma(frame)
        rows = np.flatnonzero(np.isfinite(y) & np.isfinite(sigma) & (sigma > 0))
        if self.max_train_rows is not None:
            rows = rows[-self.max_train_rows * getattr(self, "pooled", 1) :]
        x = self._matrix(frame, rows)
        label = (y[rows] > 0).astype(np.int64) if self.is_classifier else y[rows] / sigma[rows]
        self.estimator = self._make()
        with _threads(self.n_jobs if self.cap_threads else 0):
            self.estimator.fit(x, label)

    def _point(self, frame: pd.DataFrame, rows: np.ndarray) -> tuple[F64, F64 | None]:
        x = self._matrix(frame, rows)
        if self.is_classifier:
            with _threads(self.n_jobs if self.cap_threads else 0):
                proba = np.asarray(self.estimator.predict_proba(x), dtype=float)
            classes = list(self.estimator.classes_)
            p = proba[:, classes.index(1)] if 1 in classes else np.zeros(rows.shape[0])
            return np.zeros(rows.shape[0]), p
        with _threads(self.n_jobs if self.cap_threads else 0):
            pred = np.asarray(self.estimator.predict(x), dtype=float)
        return pred * self._sigma(frame)[rows], None


def _threads(n: int) -> Any:
    """Cap OpenMP/BLAS threads to ``n`` (0: leave them alone); HistGradientBoosting has no n_jobs."""
    from contextlib import nullcontext

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n) if n > 0 else nullcontext()


def with_scaling(estimator: Any) -> Any:
    """Median imputation and standard scaling fitted inside the training window."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), estimator)
