"""Model registry: save, list, show, promote, load gives identical predictions; the CLI over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.unit.registry.models_synth import make_klines
from typer.testing import CliRunner

from coincast.domain import Interval, ManualClock
from coincast.jobs.train import TrainRequest, build_frame, train_model
from coincast.registry.base import UnknownModel
from coincast.registry.files import FileModelRegistry

T0 = 1_795_000_000_000


def _train(registry: FileModelRegistry, model: str, clock: ManualClock | None = None, **kw: object) -> str:
    req = TrainRequest("BTCUSDT", Interval.H1, model, folds=2, **kw)  # type: ignore[arg-type]
    return train_model(req, make_klines(400, seed=1), registry, lambda e, f: None, clock=clock).version.id


def test_round_trip_save_list_show_promote_load(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    reg = FileModelRegistry(tmp_path / "models", clock)
    klines = make_klines(400, seed=1)
    req = TrainRequest("BTCUSDT", Interval.H1, "lightgbm", params={"n_estimators": 20}, folds=2, expiry_ms=3_600_000)
    result = train_model(req, klines, reg, lambda e, f: None, clock=clock)
    v = result.version
    assert v.symbol == "BTCUSDT" and v.horizon == "1h" and v.interval == "1h" and v.model == "lightgbm"
    assert v.params == {"n_estimators": 20} and v.features and v.code_version
    assert v.created_ms == T0 and v.expires_ms == T0 + 3_600_000
    assert v.train_start_ms == int(klines["open_time"].iloc[0].value // 1_000_000)
    assert v.metrics["n"] > 0 and 0.0 <= v.metrics["interval_coverage"] <= 1.0

    clock.advance(1000)
    other = _train(reg, "drift", clock)
    assert [x.id for x in reg.list()] == [v.id, other]
    assert [x.id for x in reg.list(horizon="1d")] == []
    assert reg.get(v.id) == v
    assert reg.live() == {}
    token = reg.signal()
    reg.promote(v.id)
    assert reg.live() == {"BTCUSDT/1h": v.id} and reg.signal() != token
    token = reg.signal()
    reg.promote(other)
    assert reg.live() == {"BTCUSDT/1h": other} and reg.signal() != token and reg.generation() == 2

    frame = build_frame(klines, "BTCUSDT", Interval.H1, "core").drop(columns="target")
    start = int(frame["open_ms"].iloc[-50])
    want = reg.load(v.id).predict(frame, start_ms=start)
    fresh = FileModelRegistry(tmp_path / "models")  # another process would see the same
    got = fresh.load(v.id).predict(frame, start_ms=start)
    for name in ("origin_ms", "predicted_price", "lower", "upper", "prob_up", "volatility"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert len(got) == 50 and np.all(got.lower < got.upper)


def test_unknown_and_unsafe_ids_are_clear_errors(tmp_path: Path) -> None:
    reg = FileModelRegistry(tmp_path / "models")
    for bad in ("nope", "../models", ".hidden"):
        with pytest.raises(UnknownModel, match="unknown model version"):
            reg.get(bad)
    with pytest.raises(UnknownModel):
        reg.promote("nope")


def test_expiry_is_relative_to_creation(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    reg = FileModelRegistry(tmp_path / "models", clock)
    v = reg.get(_train(reg, "persistence", clock, expiry_ms=10_000))
    assert not v.expired(T0 + 9_999) and v.expired(T0 + 10_000)
    assert v.age_ms(T0 + 5_000) == 5_000
    assert reg.get(_train(reg, "persistence")).expires_ms is None


def test_cli_list_show_promote(tmp_path: Path) -> None:
    from coincast.cli.main import _register, app

    _register()
    reg = FileModelRegistry(tmp_path / "models")
    first, second = _train(reg, "persistence"), _train(reg, "drift")
    runner = CliRunner()
    out = runner.invoke(app, ["models", "list", "--data-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert first in out.output and second in out.output and "*" not in out.output
    out = runner.invoke(app, ["models", "promote", second, "--data-dir", str(tmp_path)])
    assert out.exit_code == 0 and f"{second} is live for BTCUSDT 1h" in out.output
    assert reg.live() == {"BTCUSDT/1h": second}
    listed = runner.invoke(app, ["models", "list", "--data-dir", str(tmp_path)]).output
    assert f"* {second}" in listed and f"  {first}" in listed
    shown = runner.invoke(app, ["models", "show", second, "--data-dir", str(tmp_path)])
    assert '"live": true' in shown.output and '"model": "drift"' in shown.output


def test_cli_train_registers_the_walk_forward_model(tmp_path: Path) -> None:
    from coincast.cli.main import _register, app

    _register()
    data = tmp_path / "k.parquet"
    make_klines(400, seed=2).to_parquet(data)
    out = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--model",
            "drift",
            "--folds",
            "2",
            "--promote",
            "if_better",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "registered BTCUSDT-1h-drift-" in out.output and "live now" in out.output
    reg = FileModelRegistry(tmp_path / "models")
    [v] = reg.list()
    assert reg.live() == {"BTCUSDT/1h": v.id} and v.metrics["windows"] == 2
