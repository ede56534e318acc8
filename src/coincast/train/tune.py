"""Hyper-parameter search with Optuna: TPE sampler, median pruner, SQLite study (resumable).

The objective is measured on a validation period that ends at ``train_end`` (the test period
after it is never read): the last ``folds`` blocks of ``fold_days`` before ``train_end``. For each
block the model is fitted on everything before it (targets ending at the block's start) and scored
on the block; the running mean after each block is reported to the pruner. Scores:

* regressors and baselines: MSE of the forecast log return relative to persistence's
  (``mean((r - mu)^2) / mean(r^2)``; below 1 beats the random walk);
* classifiers: log loss of ``prob_up`` for ``r > 0``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coincast.domain import Interval, InvalidRequest, InvalidTimeRange
from coincast.evaluate.walk_forward import training_frame
from coincast.train.features import pipeline_available, pipeline_features
from coincast.train.frames import horizon_frames, to_open_ms
from coincast.train.registry import create_model, model_spec

Space = Callable[[Any], dict[str, Any]]


def _deep(t: Any) -> dict[str, Any]:
    return {
        "batch_size": t.suggest_int("batch_size", 16, 128, log=True),
        "dropout": t.suggest_float("dropout", 0.1, 0.5),
        "lr": t.suggest_float("lr", 1e-4, 1e-2, log=True),
        "filters": t.suggest_int("filters", 16, 128, log=True),
        "kernel": t.suggest_int("kernel", 2, 5),
        "units": t.suggest_int("units", 16, 128, log=True),
    }


def _xgb(t: Any) -> dict[str, Any]:
    return {
        "n_estimators": t.suggest_int("n_estimators", 100, 600, log=True),
        "learning_rate": t.suggest_float("learning_rate", 0.005, 0.2, log=True),
        "max_depth": t.suggest_int("max_depth", 2, 8),
        "min_child_weight": t.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": t.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": t.suggest_float("colsample_bytree", 0.3, 1.0),
    }


SPACES: dict[str, Space] = {
    "moving_average": lambda t: {"window": t.suggest_int("window", 2, 168, log=True)},
    "lightgbm": lambda t: {
        "n_estimators": t.suggest_int("n_estimators", 100, 600, log=True),
        "learning_rate": t.suggest_float("learning_rate", 0.005, 0.2, log=True),
        "num_leaves": t.suggest_int("num_leaves", 4, 63, log=True),
        "min_child_samples": t.suggest_int("min_child_samples", 10, 300, log=True),
        "subsample": t.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": t.suggest_float("colsample_bytree", 0.3, 1.0),
    },
    "xgboost": _xgb,
    "xgboost_classifier": _xgb,
    "random_forest": lambda t: {
        "n_estimators": t.suggest_int("n_estimators", 50, 300, log=True),
        "max_depth": t.suggest_int("max_depth", 3, 12),
        "min_samples_leaf": t.suggest_int("min_samples_leaf", 5, 300, log=True),
    },
    "gradient_boosting": lambda t: {
        "max_iter": t.suggest_int("max_iter", 50, 400, log=True),
        "learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": t.suggest_int("max_depth", 2, 8),
    },
    "catboost": lambda t: {
        "iterations": t.suggest_int("iterations", 100, 600, log=True),
        "learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "depth": t.suggest_int("depth", 3, 8),
    },
    "logistic_regression": lambda t: {"C": t.suggest_float("C", 1e-4, 10.0, log=True)},
    "lda": lambda t: {"shrinkage": t.suggest_float("shrinkage", 0.0, 1.0)},
    "knn": lambda t: {"n_neighbors": t.suggest_int("n_neighbors", 5, 400, log=True)},
    "gaussian_nb": lambda t: {"var_smoothing": t.suggest_float("var_smoothing", 1e-12, 1e-3, log=True)},
    **{m: _deep for m in ("lstm", "cnn", "cnn_lstm", "lstm_cnn")},
}


@dataclass(frozen=True, slots=True)
class TuningResult:
    study_name: str
    storage: str
    n_trials: int
    best_value: float
    best_params: dict[str, Any]


def validation_loss(
    frame: pd.DataFrame,
    model: str,
    params: dict[str, Any],
    folds: list[tuple[int, int]],
    *,
    seed: int,
    report: Callable[[int, float], None] | None = None,
) -> float:
    """Mean score over the validation blocks (see the module doc); ``report(step, running_mean)``."""
    h = int(pd.Series(np.diff(frame["open_ms"].to_numpy())).mode().iloc[0])
    is_clf = model_spec(model).family == "classifier"
    losses: list[float] = []
    for step, (start, end) in enumerate(folds):
        m = create_model(model, seed=seed, **params).fit(training_frame(frame, start, h))
        hist = frame[frame["open_ms"] <= end - h].drop(columns="target")
        fc = m.predict(hist, start_ms=start)
        r = frame.set_index("open_ms")["target"].reindex(fc.origin_ms).to_numpy()
        ok = np.isfinite(r)
        if is_clf:
            p = np.clip(fc.prob_up[ok], 1e-6, 1 - 1e-6)
            y = r[ok] > 0
            losses.append(float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))))
        else:
            mu = np.log(fc.predicted_price / fc.origin_price)[ok]
            losses.append(float(np.mean((r[ok] - mu) ** 2) / np.mean(r[ok] ** 2)))
        if report is not None:
            report(step, float(np.mean(losses)))
    return float(np.mean(losses))


def run_tuning(
    data: Path,
    symbol: str,
    horizon: str,
    model: str,
    *,
    trials: int,
    train_end: str | None = None,
    data_dir: Path = Path("data"),
    seed: int = 0,
    folds: int = 3,
    fold_days: int | None = None,
) -> TuningResult:
    """Add ``trials`` trials to the study ``{model}-{symbol}-{horizon}`` in ``data_dir/optuna.db``.

    Raises:
        InvalidRequest: unknown model, model without a search space, bad trial count.
        InvalidTimeRange: a validation period that does not fit in the data.
    """
    import optuna

    from coincast.evaluate.run import load_klines, parse_time_ms

    model_spec(model)
    if model not in SPACES:
        raise InvalidRequest(f"model {model!r} has no hyper-parameters to tune; tunable: {', '.join(SPACES)}")
    if trials < 1:
        raise InvalidRequest(f"--trials must be at least 1, got {trials}")
    hz = Interval.parse(horizon)
    klines = load_klines(data, [symbol])
    times = to_open_ms(klines["open_time"])
    first, last = int(times.min()), int(times.max())
    end_ms = parse_time_ms(train_end, "--train-end") if train_end else first + int(0.8 * (last - first))
    end_ms = hz.floor(end_ms + 3_600_000) - 3_600_000 if hz is Interval.D1 else end_ms
    block = (fold_days or (14 if hz.ms < 86_400_000 else 60)) * 86_400_000
    starts = [end_ms - (folds - k) * block for k in range(folds)]
    if starts[0] - first < 2 * block:
        raise InvalidTimeRange("--train-end leaves too little data before the validation period")
    klines = klines[times.to_numpy() <= end_ms]  # the test period is never read
    extra = pipeline_features if pipeline_available() else None
    frame = horizon_frames(klines, hz, extra_features=extra)[symbol.strip().upper()]
    fold_bounds = [(s, s + block) for s in starts]

    data_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(data_dir / 'optuna.db').resolve()}"
    name = f"{model}-{symbol.strip().upper()}-{hz.value}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )

    def objective(trial: optuna.Trial) -> float:
        params = SPACES[model](trial)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        return validation_loss(frame, model, params, fold_bounds, seed=seed, report=report)

    # A resumed study continues with a fresh but reproducible random stream.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    out = data_dir / "tuned" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "model": model,
                "symbol": symbol,
                "horizon": hz.value,
                "validation_loss": best.value,
                "params": best.params,
            },
            indent=2,
        )
        + "\n"
    )
    return TuningResult(name, storage, len(study.trials), float(best.value or 0.0), dict(best.params))
