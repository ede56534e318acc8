"""``coincast evaluate`` as a user runs it, on a small slice of the recorded hourly data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coincast.backtest import run_backtest
from coincast.cli.main import main
from coincast.evaluate.metrics import METRIC_NAMES, diebold_mariano
from coincast.evaluate.trading import default_strategy

TRAIN_END = "2022-06-30T23:00:00Z"


@pytest.fixture(scope="module")
def slice_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two symbols, 2022-04-01 .. 2022-07-06 (hourly), written to a temporary parquet."""
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "in", ["BTCUSDT", "ETHUSDT"])])
    keep = (df["open_time"] >= pd.Timestamp("2022-04-01", tz="UTC")) & (
        df["open_time"] < pd.Timestamp("2022-07-06", tz="UTC")
    )
    path = tmp_path_factory.mktemp("data") / "klines.parquet"
    df[keep].to_parquet(path, index=False)
    return path


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["coincast", *argv])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _evaluate(slice_file: Path, out: Path, models: str, jobs: int, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "evaluate",
        "--data",
        str(slice_file),
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--horizon",
        "1h",
        "--models",
        models,
        "--train-end",
        TRAIN_END,
        "--retrain-every",
        "2d",
        "--seed",
        "3",
        "--jobs",
        str(jobs),
        "--json",
        str(out / "report.json"),
        "--predictions",
        str(out / "preds.parquet"),
        *extra,
    ]


def test_report_is_recomputable_from_predictions(
    slice_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _run(_evaluate(slice_file, tmp_path, "drift,lda,gaussian_nb", 2), monkeypatch, capsys)
    assert code == 0, text
    report = json.loads((tmp_path / "report.json").read_text())
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    assert {(r["symbol"], r["model"]) for r in report} == {
        (s, m) for s in ("BTCUSDT", "ETHUSDT") for m in ("persistence", "drift", "lda", "gaussian_nb")
    }
    train_end = pd.Timestamp(TRAIN_END)
    assert (preds["origin_time"] >= train_end).all()
    assert (preds["target_time"] - preds["origin_time"] == pd.Timedelta(hours=1)).all()
    # actual_price is the recorded close at target_time; origin_price the close at origin_time.
    raw = pd.read_parquet(slice_file).set_index(["symbol", "open_time"])["close"]
    keys = list(zip(preds["symbol"], preds["target_time"], strict=True))
    np.testing.assert_array_equal(preds["actual_price"].to_numpy(), raw.reindex(keys).to_numpy())
    for rec in report:
        g = preds[(preds["symbol"] == rec["symbol"]) & (preds["model"] == rec["model"])]
        a, p, o = g["actual_price"], g["predicted_price"], g["origin_price"]
        assert set(METRIC_NAMES) <= set(rec) and rec["horizon"] == "1h"
        assert rec["n"] == len(g) == 5 * 24
        assert rec["mae"] == pytest.approx(np.mean(np.abs(p - a)))
        assert rec["rmse"] == pytest.approx(np.sqrt(np.mean((p - a) ** 2)))
        assert rec["mase"] == pytest.approx(np.mean(np.abs(p - a)) / np.mean(np.abs(o - a)))
        r, rp = np.log(a / o), np.log(p / o)
        assert rec["r2_returns"] == pytest.approx(1 - np.sum((r - rp) ** 2) / np.sum((r - r.mean()) ** 2))
        assert rec["directional_accuracy"] == pytest.approx(np.mean((g["prob_up"] > 0.5) == (a > o)))
        cov = np.mean((g["lower"] <= a) & (a <= g["upper"]))
        assert rec["interval_coverage"] == pytest.approx(cov) and rec["interval_nominal"] == 0.9
        assert rec["interval_mean_width"] == pytest.approx(np.mean(g["upper"] - g["lower"]))
        assert (rec["dm_pvalue_mae"] is None) == (rec["model"] == "persistence")
        assert (rec["dm_pvalue_mse"] is None) == (rec["model"] == "persistence")
        if rec["model"] != "persistence":  # one-sided, on the loss each metric is made of
            assert rec["dm_pvalue_mae"] == pytest.approx(diebold_mariano(np.abs(p - a), np.abs(o - a)))
            assert rec["dm_pvalue_mse"] == pytest.approx(diebold_mariano((p - a) ** 2, (o - a) ** 2))
        (bt,) = run_backtest(g, default_strategy(10, 5))
        assert rec["strategy_return"] == pytest.approx(bt.metrics["total_return"])
        assert rec["buy_and_hold_return"] == pytest.approx(a.iloc[-1] / o.iloc[0] - 1)
        assert rec["coverage_90"] == pytest.approx(cov)
        assert rec["coverage_50"] < rec["coverage_80"] <= rec["coverage_90"] <= rec["coverage_95"]

    # Same seed, one process instead of two, fitting then reusing cached window models: identical.
    cache = ("--cache-dir", str(tmp_path / "cache"))
    for run in ("fit", "cached"):
        code, text = _run(_evaluate(slice_file, tmp_path / run, "drift,lda,gaussian_nb", 1, cache), monkeypatch, capsys)
        assert code == 0, text
        pd.testing.assert_frame_equal(preds, pd.read_parquet(tmp_path / run / "preds.parquet"))
    assert len(list((tmp_path / "cache").glob("lda-*/model.joblib"))) == 2 * 3  # symbols x windows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--models": "persistence,prophet"}, "unknown model 'prophet'"),
        ({"--symbols": "BTCUSDT,FOOUSDT"}, "unknown symbol 'FOOUSDT'"),
        ({"--train-end": "last tuesday"}, "--train-end 'last tuesday' is not a date"),
        ({"--train-end": "2030-01-01T00:00:00Z"}, "outside the data (2022-04-01T00:00:00Z .. 2022-07-05T23:00:00Z)"),
        ({"--horizon": "7m"}, "unknown interval '7m'"),
        ({"--retrain-every": "often"}, "--retrain-every 'often'"),
        ({"--data": "/nonexistent/k.parquet"}, "data file '/nonexistent/k.parquet' not found"),
    ],
)
def test_bad_input_is_one_clear_line(
    change: dict[str, str],
    message: str,
    slice_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _evaluate(slice_file, tmp_path, "persistence", 1)
    for flag, value in change.items():
        argv[argv.index(flag) + 1] = value
    code, text = _run(argv, monkeypatch, capsys)
    assert code in (1, 2)
    assert message in text and "Traceback" not in text
    assert not (tmp_path / "report.json").exists()


def test_list_models(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run(["evaluate", "--list-models"], monkeypatch, capsys)
    assert code == 0
    names = [line.split()[0] for line in text.splitlines() if line.strip()]
    for required in ("persistence", "drift", "moving_average", "lightgbm", "xgboost", "random_forest"):
        assert required in names
    assert {"logistic_regression", "lstm", "cnn_lstm", "lstm_cnn", "cnn", "catboost", "knn"} <= set(names)


def test_register_keeps_the_evaluated_model_promotable_without_retraining(
    slice_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coincast.domain import Interval
    from coincast.registry.base import live_key
    from coincast.registry.files import FileModelRegistry
    from coincast.train.features import pipeline_features
    from coincast.train.frames import horizon_frames

    data_dir = tmp_path / "data"
    code, text = _run(_evaluate(slice_file, tmp_path, "lda", 1, ("--register", "--data-dir", str(data_dir))),
                      monkeypatch, capsys)
    assert code == 0, text
    registry = FileModelRegistry(data_dir / "models")
    versions = {(v.symbol, v.model): v for v in registry.list()}
    assert set(versions) == {("BTCUSDT", "lda"), ("ETHUSDT", "lda"), ("BTCUSDT", "persistence"),
                             ("ETHUSDT", "persistence")}
    v = versions[("BTCUSDT", "lda")]
    assert v.origin == "evaluate" and v.interval == "1h" and v.horizon == "1h"
    report = {(r["symbol"], r["model"]): r for r in json.loads((tmp_path / "report.json").read_text())}
    assert v.metrics["mase"] == report[("BTCUSDT", "lda")]["mase"]
    # the registered model is the last window's: it reproduces that window's forecasts exactly
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    mine = preds[(preds["symbol"] == "BTCUSDT") & (preds["model"] == "lda")]
    last = mine[mine["window"] == mine["window"].max()]
    klines = pd.read_parquet(slice_file)
    extra = None if v.feature_set == "core" else pipeline_features
    frame = horizon_frames(klines[klines["symbol"] == "BTCUSDT"], Interval.H1, extra_features=extra)["BTCUSDT"]
    model = registry.load(v.id)
    origins = last["origin_time"].astype("datetime64[ms, UTC]").astype("int64")
    history = frame.drop(columns="target")[frame["open_ms"] <= int(origins.iloc[-1])]
    fc = model.predict(history, start_ms=int(origins.iloc[0]))
    np.testing.assert_allclose(fc.predicted_price, last["predicted_price"].to_numpy(), rtol=1e-12)
    code, text = _run(["models", "promote", v.id, "--data-dir", str(data_dir)], monkeypatch, capsys)
    assert code == 0, text
    assert registry.live() == {live_key("BTCUSDT", "1h"): v.id}
