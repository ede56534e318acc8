"""``coincast backtest`` as a user runs it: on forecasts from ``coincast evaluate`` and on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from coincast.cli.main import main


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["coincast", *argv])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def preds_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``coincast evaluate`` (persistence, drift) on BTCUSDT 2022-05-01 .. 2022-06-15, hourly."""
    df = pd.read_parquet(shared_data / "klines_1h.parquet", filters=[("symbol", "==", "BTCUSDT")])
    keep = (df["open_time"] >= pd.Timestamp("2022-05-01", tz="UTC")) & (
        df["open_time"] < pd.Timestamp("2022-06-15", tz="UTC")
    )
    out = tmp_path_factory.mktemp("bt")
    df[keep].to_parquet(out / "klines.parquet", index=False)
    argv = [
        "coincast",
        "evaluate",
        "--data",
        str(out / "klines.parquet"),
        "--symbols",
        "BTCUSDT",
        "--horizon",
        "1h",
        "--models",
        "drift",
        "--train-end",
        "2022-06-01T00:00:00Z",
        "--retrain-every",
        "7d",
        "--jobs",
        "1",
        "--predictions",
        str(out / "preds.parquet"),
    ]
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", argv)
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        mp.undo()
    return out / "preds.parquet"


def test_backtest_of_evaluate_predictions(
    preds_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _run(
        [
            "backtest",
            "--predictions",
            str(preds_file),
            "--json",
            str(tmp_path / "bt.json"),
            "--equity",
            str(tmp_path / "eq.parquet"),
            "--fee-bps",
            "10",
            "--slippage-bps",
            "5",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 0, text
    assert "buy_and_hold" in text and "drift" in text and "persistence" in text
    report = json.loads((tmp_path / "bt.json").read_text())
    by_model = {r["model"]: r for r in report["results"]}
    assert set(by_model) == {"persistence", "drift"}
    flat = by_model["persistence"]["metrics"]
    assert flat["total_return"] == 0 and flat["trades"] == 0  # persistence never trades: the zero line
    preds = pd.read_parquet(preds_file)
    first = preds.sort_values("origin_time").iloc[0]
    last = preds.sort_values("target_time").iloc[-1]
    bh = by_model["drift"]["buy_and_hold"]["total_return"]
    assert bh == pytest.approx(last["actual_price"] / first["origin_price"] - 1)
    drift = by_model["drift"]["metrics"]
    assert drift["trades"] > 0 and drift["fees_paid"] > 0
    assert drift["fees_paid"] == pytest.approx(2 * drift["slippage_paid"])
    assert len(by_model["drift"]["trades"]) == drift["trades"]
    eq = pd.read_parquet(tmp_path / "eq.parquet")
    drift_eq = eq[eq["model"] == "drift"]["strategy"]
    assert drift_eq.iloc[-1] == pytest.approx(1 + drift["total_return"])


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    t = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    df = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "model": "drift",
            "horizon": "1h",
            "origin_time": t[:-1],
            "target_time": t[1:],
            "origin_price": [1.0, 2, 3, 4],
            "predicted_price": [2.0, 3, 4, 5],
            "actual_price": [2.0, 3, 4, 5],
        }
    )
    df.to_parquet(tmp_path / "p.parquet")
    return tmp_path / "p.parquet"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictions", "nope.parquet"], "not found"),
        (["--strategy", "moon"], "unknown strategy 'moon'"),
        (["--model", "lstm"], "unknown model lstm; the predictions have drift"),
        (["--symbols", "DOGEUSDT"], "unknown symbol DOGEUSDT"),
        (["--fee-bps", "-3"], "fee_bps must be between 0 and 1000"),
        (["--prob-long", "0.2"], "prob_short <= prob_long"),
    ],
)
def test_errors_are_one_line(
    tiny: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tiny.parent)
    code, text = _run(["backtest", "--predictions", str(tiny), *args], monkeypatch, capsys)
    assert code != 0
    assert message in text and text.startswith("error:") and text.count("\n") == 1, text


def test_wrong_schema_and_not_parquet(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pd.read_parquet(tiny).drop(columns="actual_price").to_parquet(tiny)
    code, text = _run(["backtest", "--predictions", str(tiny)], monkeypatch, capsys)
    assert code == 1 and "lack column(s) actual_price" in text
    tiny.write_text("not parquet")
    code, text = _run(["backtest", "--predictions", str(tiny)], monkeypatch, capsys)
    assert code == 2 and "cannot read" in text
