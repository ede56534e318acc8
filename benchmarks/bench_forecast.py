"""Walk-forward benchmark of every model family on the 10 coins' hourly data, at 1 h and 1 d.

Run: ``.venv/bin/python benchmarks/bench_forecast.py [--data ../shared/data/klines_1h.parquet]
[--jobs 2] [--symbols ...] [--models ...] [--out benchmarks/README-forecast.md] [--store DIR]
[--fee-bps 10 --slippage-bps 5]``; with ``--store`` the walk-forward predictions (and fit times)
are kept, and a later run with the same directory only rescores them (e.g. at other costs).

Periods (defaults; the data ends 2023-09-30 23:00 UTC):

* 1 h: train on everything up to 2023-08-31 23:00, forecast every hour of 2023-09-01 .. 09-28
  (4 weeks, 672 origins per coin), retraining every 14 days;
* 1 d: train up to 2023-03-31 23:00, forecast each day close of 2023-04-01 .. 09-30 (183 origins
  per coin), retraining every 30 days.

Writes a markdown report: the leaderboard per horizon (means over the coins, persistence's MAPE,
directional accuracy and coverage on every row) and the time per family: the summed fit seconds
of all windows and coins, the first-window fit, and the whole run's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from coincast.backtest.engine import BacktestConfig
from coincast.domain import DEFAULT_SYMBOLS
from coincast.evaluate.metrics import leaderboard, report_records
from coincast.evaluate.pooled import compare_scopes
from coincast.evaluate.run import run_evaluation
from coincast.evaluate.trading import default_strategy
from coincast.train.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "1h": {"train_end": "2023-08-31T23:00:00Z", "test_end": "2023-09-28T23:00:00Z", "retrain_every": "14d"},
    "1d": {"train_end": "2023-03-31T23:00:00Z", "test_end": "2023-09-30T23:00:00Z", "retrain_every": "30d"},
}


NOTES = [
    "## How to read this",
    "",
    "- Every forecast is made walk-forward: a model only ever saw origins whose target time is at or before",
    "  its window's cut; features are causal and every scaler/imputer is fitted inside the training window",
    "  (tests/unit/train/test_models.py proves predictions at t do not change when all data after t is",
    "  replaced by noise).",
    "- MASE here is MAE divided by the persistence MAE on the same origins (not Hyndman's in-sample scale).",
    "- R² is on log returns, never on price levels (on levels the random walk itself scores about 0.99).",
    "- Direction: `prob_up > 0.5` against `actual > origin`. Classifiers' predicted price is",
    "  `close * exp((2p - 1) * sigma * sqrt(2/pi))`, sigma the volatility forecast at the origin (log-HAR-RV",
    "  fitted in the model's training window; the EWMA volatility where it has no answer).",
    "- Intervals: split-conformal on volatility-normalised residuals (normalised by that sigma) of a held-out",
    "  calibration block, then an adaptive pool that adds each out-of-sample residual once its target time",
    "  has passed; the 50/80/90/95 % bands come from the same pool.",
    "- `*_global`: one model pooled over the 10 coins (coin one-hot, scale-free features), same windows.",
    "- Fit seconds are wall seconds of the fit calls, summed over all coins and retraining windows;",
    "  later windows reuse the earlier ones (conformal residuals, warm-started torch weights), so a window",
    "  after the first costs one fit, not two.",
    "",
]


def walk(
    data: Path, symbols: list[str], models: list[str], jobs: int, horizon: str, store: Path | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The walk-forward predictions of one horizon and their timing (reused from ``store`` if there)."""
    preds_path = store / f"preds_{horizon}.parquet" if store else None
    meta_path = store / "meta.json" if store else None
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path and meta_path.is_file() else {}
    if preds_path is not None and preds_path.is_file() and horizon in meta:
        print(f"{horizon}: scoring the stored predictions in {preds_path}", file=sys.stderr)
        return pd.read_parquet(preds_path), meta[horizon]
    bar: list[tqdm[None]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_evaluation(
        data, symbols, horizon, models, n_jobs=jobs, seed=0, **RUNS[horizon],
        on_plan=lambda n: bar.append(tqdm(total=n, desc=f"walk-forward {horizon}", unit="task")),
        progress=lambda s, m: (bar[0].set_postfix_str(f"{s} {m}"), bar[0].update(1)),
    )
    for b in bar:
        b.close()
    info = {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,  # all of the work only when jobs == 1
        "features": res.features,
        "fit_s": {f"{s}|{m}": v for (s, m), v in res.fit_seconds.items()},
    }
    if preds_path is not None and meta_path is not None:
        preds_path.parent.mkdir(parents=True, exist_ok=True)
        res.predictions.to_parquet(preds_path, index=False)
        meta[horizon] = info
        meta_path.write_text(json.dumps(meta, indent=1))
    print(f"{horizon}: {info['wall_s']:.0f} s wall, features {res.features}", file=sys.stderr)
    return res.predictions, info


def bench(
    data: Path, symbols: list[str], models: list[str], jobs: int, store: Path | None, costs: BacktestConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    boards, times, walls = [], [], {}
    for horizon in RUNS:
        preds, info = walk(data, symbols, models, jobs, horizon, store)
        t0 = time.perf_counter()
        boards.append(leaderboard(report_records(preds, costs)))
        walls[horizon], walls[f"{horizon}_cpu"] = info["wall_s"], info["cpu_s"]
        walls[f"{horizon}_score"] = time.perf_counter() - t0
        for key, fits in info["fit_s"].items():
            symbol, model = key.split("|")
            times.append({"horizon": horizon, "model": model, "symbol": symbol, "fit_s": sum(fits),
                          "first_fit_s": fits[0], "windows": len(fits)})
    return pd.concat(boards, ignore_index=True), pd.DataFrame(times), walls


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %" if x == x else "n/a"


def _num(x: float) -> str:
    return f"{x:.2f}" if x == x else "n/a"


def to_markdown(
    board: pd.DataFrame, times: pd.DataFrame, walls: dict[str, float], symbols: list[str], jobs: int,
    costs: BacktestConfig,
) -> str:
    lines = [
        "# Forecasting benchmark (walk-forward, real Binance data)",
        "",
        f"Generated by `benchmarks/bench_forecast.py` on {os.cpu_count()} CPUs shared with other jobs, "
        f"{jobs} worker process{'es' if jobs > 1 else ''}, one thread per model, seed 0. Coins: {', '.join(symbols)}.",
        "",
    ]
    for horizon, run in RUNS.items():
        b = board[board["horizon"] == horizon]
        t = (
            times[times["horizon"] == horizon]
            .groupby("model")
            .agg(fit_s=("fit_s", "sum"), first=("first_fit_s", "mean"))
        )
        lines += [
            f"## Horizon {horizon}",
            "",
            f"Train until {run['train_end']}, forecast every origin until {run['test_end']}, retrain every "
            f"{run['retrain_every']} on the expanding past. Means over coins; MASE < 1 beats persistence. "
            "`better MAE`/`better MSE` count coins where a one-sided Diebold-Mariano test on that loss "
            "(absolute or squared price error; HAC variance, HLN correction) gives p < 0.05, `worse` the same "
            f"test the other way (p > 0.95). Walk-forward wall time {walls[horizon]:.0f} s for all coins and models"
            + (f" ({walls[horizon + '_cpu']:.0f} s of CPU, features included)" if jobs == 1 else "")
            + f"; scoring {walls[horizon + '_score']:.1f} s.",
            "",
            "| model | MASE | MAPE % | MAPE % persistence | R² returns | dir. acc. | dir. acc. persistence "
            "| better MAE | better MSE | worse MAE | worse MSE | fit s (all windows, coins) | first fit s (mean) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        n = int(b["symbols"].max())
        for _, r in b.iterrows():
            tt = t.loc[r["model"]] if r["model"] in t.index else None
            fit = f"{tt['fit_s']:.1f} | {tt['first']:.2f}" if tt is not None else "n/a | n/a"
            lines.append(
                f"| {r['model']} | {r['mase']:.4f} | {r['mape']:.3f} | {r['mape_persistence']:.3f} "
                f"| {r['r2_returns']:.4f} | {r['directional_accuracy']:.3f} "
                f"| {r['directional_accuracy_persistence']:.3f} "
                f"| {int(r['beats_persistence_mae'])}/{n} | {int(r['beats_persistence_mse'])}/{n} "
                f"| {int(r['trails_persistence_mae'])}/{n} | {int(r['trails_persistence_mse'])}/{n} | {fit} |"
            )
        lines += [
            "",
            f"**After costs** ({costs.fee_bps:g} bp fee + {costs.slippage_bps:g} bp slippage per trade): each model "
            "trades long/short on the sign of its forecast (weight 1, held between signals); means over coins of the "
            "total return, annualised Sharpe, max drawdown and turnover, next to buy-and-hold over the same span. "
            "Break-even: the cost per trade at which the return would be zero (0: loses before costs).",
            "",
            "| model | return after costs | buy & hold | Sharpe | Sharpe B&H | max DD | max DD B&H | turnover "
            "| break-even bp | profitable | beats B&H |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for _, r in b.iterrows():
            be = r["break_even_bps"]
            lines.append(
                f"| {r['model']} | {_pct(r['strategy_return'])} | {_pct(r['buy_and_hold_return'])} "
                f"| {_num(r['strategy_sharpe'])} | {_num(r['buy_and_hold_sharpe'])} "
                f"| {_pct(r['strategy_max_drawdown'])} "
                f"| {_pct(r['buy_and_hold_max_drawdown'])} | {r['strategy_turnover']:.0f} "
                f"| {'never trades' if be != be else f'{be:.1f}'} | {int(r['profitable_after_costs'])}/{n} "
                f"| {int(r['beats_buy_and_hold'])}/{n} |"
            )
        scopes = compare_scopes(b)
        if not scopes.empty:
            lines += [
                "",
                "**Global against per-coin**: each gbm/classifier model pooled over all coins (one model, coin as a "
                "feature) next to the same model fitted per coin; the winner by MASE, with both models' significant "
                "wins over persistence (absolute error) and after-cost return.",
                "",
                "| model | MASE per coin | MASE global | better MAE per coin | better MAE global "
                "| after costs per coin | after costs global | winner |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            for _, r in scopes.iterrows():
                lines.append(
                    f"| {r['model']} | {r['mase_per_coin']:.4f} | {r['mase_global']:.4f} "
                    f"| {int(r['beats_persistence_mae_per_coin'])}/{n} | {int(r['beats_persistence_mae_global'])}/{n} "
                    f"| {_pct(r['strategy_return_per_coin'])} | {_pct(r['strategy_return_global'])} | {r['winner']} |"
                )
        lines += [
            "",
            "**Calibration**: observed share of outcomes inside each central band (nominal level in the header; "
            "every band from the model's own conformal residual pool) and the mean pinball loss at the bands' "
            "8 quantiles, in % of the price (lower is better).",
            "",
            "| model | 50 % | 80 % | 90 % | 95 % | pinball % | pinball % persistence |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for _, r in b.iterrows():
            lines.append(
                f"| {r['model']} | {r['coverage_50']:.3f} | {r['coverage_80']:.3f} | {r['coverage_90']:.3f} "
                f"| {r['coverage_95']:.3f} | {r['pinball_pct']:.4f} | {r['pinball_pct_persistence']:.4f} |"
            )
        lines.append("")
    lines += NOTES
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "klines_1h.parquet")
    ap.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "README-forecast.md")
    ap.add_argument("--store", type=Path, default=None,
                    help="Keep the walk-forward predictions here; a later run only rescores them.")
    ap.add_argument("--fee-bps", type=float, default=10.0)
    ap.add_argument("--slippage-bps", type=float, default=5.0)
    args = ap.parse_args()
    symbols = args.symbols.split(",")
    costs = default_strategy(args.fee_bps, args.slippage_bps)
    board, times, walls = bench(args.data, symbols, args.models.split(","), args.jobs, args.store, costs)
    text = to_markdown(board, times, walls, symbols, args.jobs, costs)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
