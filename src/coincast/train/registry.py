"""The model zoo: one table from the names users pass to ``--models`` to factories.

Heavy libraries load only when a factory is called. Add a model with one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coincast.domain import InvalidRequest
from coincast.train.forecasters.core import ReturnForecaster


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A registry entry: where the class lives, its family and a one-line description."""

    name: str
    target: str  # "module:Class"
    family: str  # baseline | gbm | classifier | deep
    description: str

    def factory(self) -> Callable[..., ReturnForecaster]:
        module, cls = self.target.split(":")
        factory: Callable[..., ReturnForecaster] = getattr(importlib.import_module(module), cls)
        return factory


_P = "coincast.train.forecasters."
_SPECS = (
    ModelSpec("persistence", _P + "baselines:Persistence", "baseline", "random walk: next = last close"),
    ModelSpec("drift", _P + "baselines:Drift", "baseline", "random walk plus the mean training return"),
    ModelSpec("moving_average", _P + "baselines:MovingAverage", "baseline", "mean of the last 24 closes"),
    ModelSpec("garch", _P + "baselines:Garch", "baseline", "persistence with GARCH(1,1) interval width"),
    ModelSpec("lightgbm", _P + "gbm:LightGBMForecaster", "gbm", "LightGBM regressor of the forward return"),
    ModelSpec("xgboost", _P + "gbm:XGBoostForecaster", "gbm", "XGBoost regressor of the forward return"),
    ModelSpec("random_forest", _P + "classifiers:RandomForestClassifierModel", "classifier", "random forest P(up)"),
    ModelSpec(
        "gradient_boosting",
        _P + "classifiers:GradientBoostingClassifierModel",
        "classifier",
        "histogram gradient boosting P(up)",
    ),
    ModelSpec(
        "xgboost_classifier", _P + "classifiers:XGBoostClassifierModel", "classifier", "XGBoost classifier P(up)"
    ),
    ModelSpec("catboost", _P + "classifiers:CatBoostClassifierModel", "classifier", "CatBoost classifier P(up)"),
    ModelSpec(
        "logistic_regression", _P + "classifiers:LogisticRegressionModel", "classifier", "logistic regression P(up)"
    ),
    ModelSpec("lda", _P + "classifiers:LDAModel", "classifier", "linear discriminant analysis P(up)"),
    ModelSpec("knn", _P + "classifiers:KNNModel", "classifier", "k nearest neighbours P(up)"),
    ModelSpec("gaussian_nb", _P + "classifiers:GaussianNBModel", "classifier", "Gaussian naive Bayes P(up)"),
    ModelSpec("lstm", _P + "deep:LSTMForecaster", "deep", "LSTM on 60-step windows"),
    ModelSpec("cnn", _P + "deep:CNNForecaster", "deep", "1-D CNN on 60-step windows"),
    ModelSpec("cnn_lstm", _P + "deep:CNNLSTMForecaster", "deep", "CNN then LSTM on 60-step windows"),
    ModelSpec("lstm_cnn", _P + "deep:LSTMCNNForecaster", "deep", "LSTM then CNN on 60-step windows"),
)

MODELS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}
BASELINES: tuple[str, ...] = ("persistence",)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``.

    Raises:
        InvalidRequest: unknown name, listing the known ones.
    """
    spec = MODELS.get(name.strip())
    if spec is None:
        raise InvalidRequest(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return spec


def create_model(name: str, *, seed: int = 0, level: float = 0.9, **params: Any) -> ReturnForecaster:
    """A fresh, unfitted model by registry name (``params`` override the family defaults)."""
    spec = model_spec(name)
    return spec.factory()(seed=seed, level=level, **params)
