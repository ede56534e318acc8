"""Direction classifiers: each forecasts P(close[t + horizon] > close[t]).

Their predicted price is ``close * exp((2p - 1) * sigma * sqrt(2/pi))`` (see
:mod:`coincast.train.forecasters.core`), so price errors stay comparable with the regressors'.
"""

from __future__ import annotations

from typing import Any, ClassVar

from coincast.train.forecasters.tabular import TabularForecaster, with_scaling


class _Classifier(TabularForecaster):
    is_classifier: ClassVar[bool] = True
    cap_threads: ClassVar[bool] = True


class RandomForestClassifierModel(_Classifier):
    name: ClassVar[str] = "random_forest"

    def _make(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        kw: dict[str, Any] = {"n_estimators": 100, "max_depth": 6, "min_samples_leaf": 50, "max_samples": 0.5}
        kw.update(self.params)
        return with_scaling(RandomForestClassifier(**kw, random_state=self.seed, n_jobs=self.n_jobs))


class GradientBoostingClassifierModel(_Classifier):
    """scikit-learn's histogram gradient boosting (the fast implementation of GB trees)."""

    name: ClassVar[str] = "gradient_boosting"

    def _make(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        kw: dict[str, Any] = {
            "max_iter": 150,
            "learning_rate": 0.05,
            "max_depth": 4,
            "min_samples_leaf": 50,
            "max_bins": 63,
        }
        kw.update(self.params)
        return HistGradientBoostingClassifier(**kw, early_stopping=False, random_state=self.seed)


class XGBoostClassifierModel(_Classifier):
    cap_threads: ClassVar[bool] = False
    name: ClassVar[str] = "xgboost_classifier"

    def _make(self) -> Any:
        from xgboost import XGBClassifier

        from coincast.train.forecasters.gbm import XGB_DEFAULTS

        kw: dict[str, Any] = {**XGB_DEFAULTS, **self.params}
        return XGBClassifier(**kw, tree_method="hist", random_state=self.seed, n_jobs=self.n_jobs)


class CatBoostClassifierModel(_Classifier):
    cap_threads: ClassVar[bool] = False
    name: ClassVar[str] = "catboost"

    def _make(self) -> Any:
        from catboost import CatBoostClassifier

        kw: dict[str, Any] = {"iterations": 200, "learning_rate": 0.05, "depth": 4}
        kw.update(self.params)
        return CatBoostClassifier(
            **kw,
            random_seed=self.seed,
            thread_count=self.n_jobs,
            verbose=0,
            allow_writing_files=False,
        )


class LogisticRegressionModel(_Classifier):
    name: ClassVar[str] = "logistic_regression"

    def _make(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        kw: dict[str, Any] = {"C": 0.05, "max_iter": 2000}
        kw.update(self.params)
        return with_scaling(LogisticRegression(**kw))


class LDAModel(_Classifier):
    name: ClassVar[str] = "lda"

    def _make(self) -> Any:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        kw: dict[str, Any] = {"solver": "lsqr", "shrinkage": "auto"}
        kw.update(self.params)
        return with_scaling(LinearDiscriminantAnalysis(**kw))


class KNNModel(_Classifier):
    name: ClassVar[str] = "knn"
    max_train_rows: ClassVar[int | None] = 4000

    def _make(self) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        kw: dict[str, Any] = {"n_neighbors": 100}
        kw.update(self.params)
        return with_scaling(KNeighborsClassifier(**kw, n_jobs=self.n_jobs))


class GaussianNBModel(_Classifier):
    name: ClassVar[str] = "gaussian_nb"

    def _make(self) -> Any:
        from sklearn.naive_bayes import GaussianNB

        return with_scaling(GaussianNB(**self.params))
