"""``coincast tune``: Optuna study in SQLite under the data directory, resumable."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from coincast.cli.main import main
from coincast.domain import InvalidRequest
from coincast.train.tune import run_tuning


@pytest.fixture(scope="module")
def klines_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "==", "ETHUSDT")])
    df = df[
        (df["open_time"] >= pd.Timestamp("2022-01-01", tz="UTC"))
        & (df["open_time"] < pd.Timestamp("2022-05-01", tz="UTC"))
    ]
    path = tmp_path_factory.mktemp("tune") / "k.parquet"
    df.to_parquet(path, index=False)
    return path


def test_tune_stores_a_resumable_study(klines_file: Path, tmp_path: Path) -> None:
    first = run_tuning(klines_file, "ETHUSDT", "1h", "moving_average", trials=3, data_dir=tmp_path, fold_days=5)
    assert (tmp_path / "optuna.db").is_file() and first.n_trials == 3
    assert 2 <= first.best_params["window"] <= 168 and first.best_value > 0
    second = run_tuning(klines_file, "ETHUSDT", "1h", "moving_average", trials=2, data_dir=tmp_path, fold_days=5)
    assert second.n_trials == 5
    study = optuna.load_study(study_name="moving_average-ETHUSDT-1h", storage=second.storage)
    assert len(study.trials) == 5 and (tmp_path / "tuned" / "moving_average-ETHUSDT-1h.json").is_file()


def test_tune_cli_and_untunable_model(
    klines_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidRequest, match="no hyper-parameters"):
        run_tuning(klines_file, "ETHUSDT", "1h", "persistence", trials=1, data_dir=tmp_path)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "coincast",
            "tune",
            "--data",
            str(klines_file),
            "--symbol",
            "ETHUSDT",
            "--model",
            "gaussian_nb",
            "--trials",
            "2",
            "--data-dir",
            str(tmp_path),
        ],
    )
    main()
    out = capsys.readouterr().out
    assert "gaussian_nb-ETHUSDT-1h" in out and "var_smoothing" in out
