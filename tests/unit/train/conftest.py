"""Small real slices of the recorded hourly klines for model tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def btc_slice(shared_data: Path) -> pd.DataFrame:
    """1,800 hourly BTCUSDT bars from 2022-03-01 (real data, read-only)."""
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "==", "BTCUSDT")])
    df = df[df["open_time"] >= pd.Timestamp("2022-03-01", tz="UTC")].head(1800)
    return df.reset_index(drop=True)


# Small settings so every family trains in about a second on one core.
FAST_PARAMS: dict[str, dict[str, object]] = {
    "lightgbm": {"n_estimators": 40},
    "xgboost": {"n_estimators": 40},
    "random_forest": {"n_estimators": 30},
    "gradient_boosting": {"max_iter": 40},
    "xgboost_classifier": {"n_estimators": 40},
    "catboost": {"iterations": 40},
    "knn": {"n_neighbors": 25},
    **{
        m: {"lookback": 16, "max_epochs": 2, "max_train_samples": 300, "units": 8, "filters": 8}
        for m in ("lstm", "cnn", "cnn_lstm", "lstm_cnn")
    },
}
