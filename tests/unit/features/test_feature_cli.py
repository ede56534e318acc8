"""``coincast features / analytics / indicators`` through the real entry point (in-process)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from test_feature_pipeline import make_klines

from coincast.cli import main as cli
from coincast.features.pipeline import build_features
from coincast.features.registry import INDICATORS


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``coincast <args>`` through main() and return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["coincast", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def klines_file(tmp_path: Path) -> Path:
    path = tmp_path / "klines.parquet"
    make_klines(("BTCUSDT", "ETHUSDT", "SOLUSDT"), n=400).to_parquet(path)
    return path


def test_features_command_writes_the_same_table_as_the_library(monkeypatch, capsys, klines_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "f" / "features.parquet"
    code, stdout, _ = run(monkeypatch, capsys, "features", "--data", str(klines_file), "--out", str(out))
    assert code == 0 and "rows" in stdout and "note: indicator vwap_quote_24 skipped" in stdout
    got = pd.read_parquet(out)
    want = build_features(pd.read_parquet(klines_file))
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_features_symbol_subset_still_uses_btc(monkeypatch, capsys, klines_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eth.parquet"
    code, _, _ = run(
        monkeypatch, capsys, "features", "--data", str(klines_file), "--out", str(out), "--symbols", "ethusdt"
    )
    assert code == 0
    got = pd.read_parquet(out)
    full = build_features(pd.read_parquet(klines_file))
    want = full[full["symbol"] == "ETHUSDT"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--data", "/nonexistent/k.parquet"], 2, "does not exist"),
        (["--engine", "dask"], 2, "unknown engine"),
        (["--symbols", "FOOUSDT"], 1, "not in the data"),
        (["--horizons", "1y"], 1, "unknown horizon"),
    ],
)
def test_features_bad_input_is_one_line(monkeypatch, capsys, klines_file, tmp_path, args, code, message) -> None:  # type: ignore[no-untyped-def]
    base = ["features", "--out", str(tmp_path / "x.parquet")]
    if "--data" not in args:
        base += ["--data", str(klines_file)]
    got_code, _, err = run(monkeypatch, capsys, *base, *args)
    assert got_code == code and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_features_wrong_schema(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "trades.parquet"
    pd.DataFrame({"price": [1.0], "qty": [2.0]}).to_parquet(bad)
    code, _, err = run(monkeypatch, capsys, "features", "--data", str(bad), "--out", str(tmp_path / "o.parquet"))
    assert code == 1 and "missing symbol" in err


def test_features_and_analytics_from_the_lake(monkeypatch, capsys, klines_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from coincast.lake.parquet import open_lake

    lake_dir = tmp_path / "lake"
    lake = open_lake(str(lake_dir))
    lake.write(pl.from_pandas(pd.read_parquet(klines_file)), "1h")
    out = tmp_path / "lake_features.parquet"
    args = ["features", "--lake", f"file://{lake_dir}", "--interval", "1h", "--out", str(out)]
    code, _, err = run(monkeypatch, capsys, *args)
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(out), build_features(pd.read_parquet(klines_file)), check_exact=True)
    code, stdout, _ = run(monkeypatch, capsys, "analytics", "--lake", str(lake_dir), "--symbols", "BTCUSDT,ETHUSDT")
    assert code == 0 and "BTCUSDT" in stdout and "SOLUSDT" not in stdout
    code, _, err = run(
        monkeypatch, capsys, "features", "--lake", str(lake_dir), "--data", str(klines_file), "--out", "x"
    )
    assert code == 2 and "exactly one of" in err


def test_analytics_csv(monkeypatch, capsys, klines_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = run(
        monkeypatch, capsys, "analytics", "--data", str(klines_file), "--period", "7d", "--csv", str(tmp_path / "a.csv")
    )
    assert code == 0 and "max_sharpe" in stdout
    summary = pd.read_csv(tmp_path / "a.csv")
    assert list(summary["symbol"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"] and (summary["candles"] == 168).all()
    weights = pd.read_csv(tmp_path / "a_weights.csv")
    assert np.allclose(weights.groupby("strategy")["weight"].sum(), 1.0)
    code, _, err = run(monkeypatch, capsys, "analytics", "--data", str(klines_file), "--period", "soon")
    assert code == 1 and "unknown period" in err


def test_indicators_lists_the_registry(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    code, stdout, _ = run(monkeypatch, capsys, "indicators")
    assert code == 0
    for ind in INDICATORS:
        assert f"\n{ind.name} " in stdout
    assert "supertrend_10" in stdout and "warm-up" in stdout and f"{len(INDICATORS)} indicators" in stdout
