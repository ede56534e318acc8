"""``coincast evaluate`` as a library call: load, validate, build frames, walk forward, score."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from coincast.domain import ConfigError, Interval, InvalidRequest, InvalidTimeRange, UnknownSymbol
from coincast.evaluate.metrics import leaderboard, report_records
from coincast.evaluate.pooled import GLOBAL_SUFFIX, check_global
from coincast.evaluate.trading import default_strategy
from coincast.evaluate.walk_forward import WalkForwardConfig, default_retrain_ms, walk_forward
from coincast.train.features import pipeline_available, pipeline_features
from coincast.train.frames import horizon_frames, native_interval_ms, to_open_ms
from coincast.train.registry import BASELINES, model_spec

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    predictions: pd.DataFrame
    records: list[dict[str, Any]]
    leaderboard: pd.DataFrame
    fit_seconds: dict[tuple[str, str], list[float]]  # per window
    features: str  # which feature set was used
    last_models: dict[tuple[str, str], str] = field(default_factory=dict)  # cache key of the last window
    cache_dir: Path | None = None
    data_start_ms: int = 0
    interval_ms: int = 0  # bar length of the data
    train_end_ms: int = 0
    retrain_every_ms: int = 0


def parse_time_ms(text: str, flag: str) -> int:
    """ISO-8601 time (naive means UTC) to integer ms; raises InvalidTimeRange naming the flag."""
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise InvalidTimeRange(f"{flag} {text!r} is not a date; use ISO 8601 like 2023-06-30T23:00:00Z") from None
    if ts is pd.NaT:
        raise InvalidTimeRange(f"{flag} {text!r} is not a date")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def parse_duration_ms(text: str) -> int:
    """``'1w'``, ``'7d'``, ``'168h'``, ``'90m'`` to ms; raises InvalidRequest otherwise."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise InvalidRequest(f"--retrain-every {text!r}: expected a positive number with m, h, d or w (e.g. 7d)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_models(text: str | Sequence[str]) -> tuple[str, ...]:
    """Comma-separated registry names, validated, persistence always first."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise InvalidRequest("--models is empty; see coincast evaluate --list-models")
    for n in names:
        if n.endswith(GLOBAL_SUFFIX):
            check_global(n)
        else:
            model_spec(n)
    out = [b for b in BASELINES if b not in names] + names
    return tuple(dict.fromkeys(out))


def load_klines(path: Path, symbols: Sequence[str]) -> pd.DataFrame:
    """Read the klines parquet and keep ``symbols``.

    Raises:
        ConfigError: missing or unreadable file.
        UnknownSymbol: a symbol absent from the file (naming the ones present).
    """
    if not path.is_file():
        raise ConfigError(f"data file {str(path)!r} not found")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ConfigError(f"cannot read {str(path)!r} as parquet: {exc}") from exc
    if "symbol" not in df.columns or "open_time" not in df.columns:
        raise ConfigError(f"{str(path)!r} lacks the symbol/open_time columns of a klines file")
    present = sorted(df["symbol"].astype(str).unique())
    wanted = [s.strip().upper() for s in symbols if s.strip()]
    if not wanted:
        raise UnknownSymbol(f"--symbols is empty; the file has {', '.join(present)}")
    for s in wanted:
        if s not in present:
            raise UnknownSymbol(f"unknown symbol {s!r}: not in {path.name}; it has {', '.join(present)}")
    return df[df["symbol"].astype(str).isin(wanted)].reset_index(drop=True)


def run_evaluation(
    data: Path,
    symbols: Sequence[str],
    horizon: str,
    models: str | Sequence[str],
    *,
    train_end: str,
    test_end: str | None = None,
    retrain_every: str | None = None,
    seed: int = 0,
    level: float = 0.9,
    n_jobs: int = 2,
    use_pipeline: bool = True,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    cache_dir: Path | None = None,
    progress: Callable[[str, str], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Walk-forward evaluation of ``models`` on ``symbols`` (the engine of ``coincast evaluate``).

    ``fee_bps`` and ``slippage_bps`` are the costs per trade of the after-cost scores.
    """
    hz = Interval.parse(horizon)
    costs = default_strategy(fee_bps, slippage_bps)  # validates them before any work
    names = parse_models(models)
    train_end_ms = parse_time_ms(train_end, "--train-end")
    test_end_ms = parse_time_ms(test_end, "--test-end") if test_end else None
    step_ms = parse_duration_ms(retrain_every) if retrain_every else default_retrain_ms(hz)
    klines = load_klines(data, symbols)
    times = to_open_ms(klines["open_time"])
    first, last = int(times.min()), int(times.max())
    span = f"{_iso(first)} .. {_iso(last)}"
    if not first < train_end_ms < last:
        raise InvalidTimeRange(f"--train-end {train_end} is outside the data ({span})")
    if test_end_ms is None:
        test_end_ms = last
    if test_end_ms <= train_end_ms + hz.ms - 1:
        raise InvalidTimeRange(f"--test-end {test_end} must be at least one horizon after --train-end")
    # Nothing after the test period is ever read.
    klines = klines[times.to_numpy() <= test_end_ms].reset_index(drop=True)
    extra = pipeline_features if use_pipeline and pipeline_available() else None
    frames = horizon_frames(klines, hz, extra_features=extra)
    cfg = WalkForwardConfig(
        horizon=hz,
        models=names,
        train_end_ms=train_end_ms,
        test_end_ms=test_end_ms,
        retrain_every_ms=step_ms,
        seed=seed,
        level=level,
        n_jobs=n_jobs,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
    )
    if on_plan is not None:
        on_plan(len(frames) * len(names))
    last_models: dict[tuple[str, str], str] = {}
    preds, fit_s = walk_forward(frames, cfg, progress=progress, last_models=last_models)
    records = report_records(preds, costs)
    return EvaluationResult(preds, records, leaderboard(records), fit_s, "core+pipeline" if extra else "core",
                            last_models, cache_dir, first,
                            native_interval_ms(klines.assign(open_ms=to_open_ms(klines["open_time"]))),
                            train_end_ms, step_ms)


def write_report(result: EvaluationResult, json_path: Path | None, preds_path: Path | None) -> None:
    """REPORT.json: a list of records (one per symbol and model); PREDS.parquet: one row per forecast."""
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.records, indent=2, allow_nan=False) + "\n")
    if preds_path is not None:
        preds_path.parent.mkdir(parents=True, exist_ok=True)
        result.predictions.to_parquet(preds_path, index=False)


def _iso(ms: int) -> str:
    return str(pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))
