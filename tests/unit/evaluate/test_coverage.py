"""Calibrated intervals: empirical coverage near nominal on unseen real hourly data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coincast.domain import Interval
from coincast.evaluate.metrics import report_records
from coincast.evaluate.walk_forward import WalkForwardConfig, walk_forward
from coincast.train.frames import horizon_frames

SYMBOLS = ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]


def _ms(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


@pytest.mark.parametrize("level", [0.9])
def test_interval_coverage_close_to_nominal(shared_data: Path, level: float) -> None:
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "in", SYMBOLS)])
    df = df[
        (df["open_time"] >= pd.Timestamp("2021-10-01", tz="UTC"))
        & (df["open_time"] <= pd.Timestamp("2022-06-30 23:00", tz="UTC"))
    ]
    frames = horizon_frames(df, Interval.H1)
    cfg = WalkForwardConfig(
        horizon=Interval.H1,
        models=("persistence", "garch", "lda"),
        train_end_ms=_ms("2022-03-31T23:00:00Z"),
        test_end_ms=_ms("2022-06-30T23:00:00Z"),
        retrain_every_ms=14 * 86_400_000,
        level=level,
        n_jobs=1,
    )
    preds, _ = walk_forward(frames, cfg)
    records = report_records(preds)
    assert len(records) == 9
    for rec in records:
        assert rec["n"] > 2000
        # ~2,180 hourly forecasts per symbol: sampling error alone is about 0.7 points.
        assert abs(rec["interval_coverage"] - level) < 0.04, rec
    pooled = ((preds["lower"] <= preds["actual_price"]) & (preds["actual_price"] <= preds["upper"])).mean()
    assert abs(pooled - level) < 0.02
