"""Gradient-boosted regressors of the forward (volatility-normalised) log return."""

from __future__ import annotations

from typing import Any, ClassVar

from coincast.train.forecasters.tabular import TabularForecaster

#: XGBoost settings shared by the regressor and the direction classifier (``reg_lambda`` 1.0 is
#: XGBoost's own default, stated so both models read the same).
XGB_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.03,
    "max_depth": 4,
    "max_bin": 64,
    "min_child_weight": 20.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


class LightGBMForecaster(TabularForecaster):
    """LightGBM regressor, one model per symbol and horizon."""

    name: ClassVar[str] = "lightgbm"

    def _make(self) -> Any:
        from lightgbm import LGBMRegressor

        kw: dict[str, Any] = {
            "n_estimators": 200,
            "learning_rate": 0.03,
            "num_leaves": 15,
            "max_bin": 63,
            "min_child_samples": 50,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        }
        kw.update(self.params)
        return LGBMRegressor(**kw, random_state=self.seed, n_jobs=self.n_jobs, verbose=-1, deterministic=True)


class XGBoostForecaster(TabularForecaster):
    """XGBoost (hist) regressor, one model per symbol and horizon."""

    name: ClassVar[str] = "xgboost"

    def _make(self) -> Any:
        from xgboost import XGBRegressor

        kw: dict[str, Any] = {**XGB_DEFAULTS, **self.params}
        return XGBRegressor(**kw, tree_method="hist", random_state=self.seed, n_jobs=self.n_jobs)
