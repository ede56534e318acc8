"""Benchmark: all features for the 10 coins' hourly history, local engine vs Spark local[2],
against a naive pandas row-loop reference, in one process.

    .venv/bin/python benchmarks/bench_features.py [--data ../shared/data/klines_1h.parquet]
        [--naive-rows 600] [--repeat 2] [--no-spark]

The naive reference is what a straightforward per-row pipeline does: for every candle, slice the
trailing window with pandas and recompute a handful of indicators (SMA 10/20/50/200, EMA 12/26
via ewm, MACD, Bollinger 20, RSI 14, ATR 14, rolling std/skew, 5 lagged returns: 17 values,
about a tenth of the 150 columns the engines produce). It runs on ``--naive-rows`` rows of one
coin and is extrapolated per row to the full history, so its ratio UNDERSTATES the gap.
Figures are wall-clock on a shared machine: compare ratios from the same run, not absolute times.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from coincast.features.klines import read_klines
from coincast.features.pipeline import plan_features, run_local

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "klines_1h.parquet"


def naive_row_loop(df: pd.DataFrame) -> pd.DataFrame:
    """Per-row recomputation over trailing windows (the reference, deliberately naive)."""
    rows = []
    for t in range(len(df)):
        win = df.iloc[max(0, t - 250) : t + 1]
        close, high, low = win["close"], win["high"], win["low"]
        row: dict[str, float] = {}
        for n in (10, 20, 50, 200):
            row[f"sma_{n}"] = close.iloc[-n:].mean() if len(close) >= n else np.nan
        ema12, ema26 = close.ewm(span=12, adjust=False).mean(), close.ewm(span=26, adjust=False).mean()
        macd = ema12 - ema26
        row["ema_12"], row["ema_26"] = ema12.iloc[-1], ema26.iloc[-1]
        row["macd"], row["macd_signal"] = macd.iloc[-1], macd.ewm(span=9, adjust=False).mean().iloc[-1]
        last20 = close.iloc[-20:]
        row["bb_upper"] = last20.mean() + 2 * last20.std(ddof=0)
        row["bb_lower"] = last20.mean() - 2 * last20.std(ddof=0)
        delta = close.diff().iloc[-14:]
        gain, loss = delta.clip(lower=0).mean(), (-delta.clip(upper=0)).mean()
        row["rsi_14"] = 100 * gain / (gain + loss) if gain + loss else np.nan
        tr = pd.concat([high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1).max(axis=1)
        row["atr_14"] = tr.iloc[-14:].mean()
        ret = np.log(close).diff()
        row["ret_std_24"], row["ret_skew_24"] = ret.iloc[-24:].std(), ret.iloc[-24:].skew()
        for lag in (1, 2, 3, 6, 12):
            row[f"logret_{lag}"] = np.log(close.iloc[-1] / close.iloc[-1 - lag]) if len(close) > lag else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--naive-rows", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    t0 = time.perf_counter()
    klines = read_klines(args.data)
    t_read = time.perf_counter() - t0
    rows, n_sym = len(klines), klines["symbol"].nunique()
    plan = plan_features(klines)
    t_local, out = timed(lambda: run_local(klines, plan), args.repeat)
    assert isinstance(out, pd.DataFrame)
    print(f"input: {rows} candles, {n_sym} symbols (read+check {t_read:.2f} s)")
    print(f"local engine: {t_local:.2f} s (best of {args.repeat}) -> {out.shape[0]} rows x {out.shape[1]} columns")

    one = klines[klines["symbol"] == "BTCUSDT"].iloc[: args.naive_rows].reset_index(drop=True)
    t_naive_part, _ = timed(lambda: naive_row_loop(one), 1)
    per_row = t_naive_part / len(one)
    t_naive = per_row * rows
    print(
        f"naive pandas row loop: {t_naive_part:.2f} s for {len(one)} rows = {per_row * 1e3:.2f} ms/row, "
        f"extrapolated to {rows} rows: {t_naive:.0f} s ({t_naive / 60:.1f} min)"
    )

    lines = [
        "| run | time | vs local |",
        "|---|---:|---:|",
        f"| local engine (pandas + TA-Lib), all features, {n_sym} coins | {t_local:.2f} s | 1.0x |",
    ]
    if not args.no_spark:
        from coincast.features.spark import run_spark, spark_session

        start = time.perf_counter()
        with spark_session("local[2]") as spark:
            t_start = time.perf_counter() - start
            t_first, _ = timed(lambda: run_spark(spark, args.data), 1)
            t_warm, res = timed(lambda: run_spark(spark, args.data), max(1, args.repeat - 1))
        assert isinstance(res, tuple)
        same = res[0].equals(out)
        print(
            f"spark local[2]: start {t_start:.1f} s, first run {t_first:.2f} s, warm run {t_warm:.2f} s, "
            f"identical to local: {same}"
        )
        lines += [
            f"| Spark local[2], warm run (session already up) | {t_warm:.2f} s | {t_warm / t_local:.1f}x |",
            f"| Spark local[2], first run | {t_first:.2f} s | {t_first / t_local:.1f}x |",
            f"| Spark local[2], session start-up alone | {t_start:.1f} s | |",
        ]
    lines.append(
        f"| naive pandas row loop, 17 values/row (extrapolated from {len(one)} rows) "
        f"| {t_naive:.0f} s | {t_naive / t_local:.0f}x |"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
