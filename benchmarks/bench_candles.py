"""Trades -> candles: the streaming fold against a vectorised batch aggregation of the same trades.

The real BTCUSDT trades in ../shared/data/trades_btcusdt.parquet (2,001 trades, 46 s) are repeated
with shifted times and ids into a long stream (default 3 million trades, ~19 hours). The streaming
path folds them in bus-sized batches through CandleAggregator (1m, 5m, 1h, 1d) and advances the
watermark after every batch, as the live processor does. The reference aggregates the whole table
at once with polars. Both must give identical candles; the script prints both rates and the ratio.

    python benchmarks/bench_candles.py [--trades 3000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from coincast.domain import Interval, TradeBatch
from coincast.stream.batch import trades_to_candles
from coincast.stream.candles import CandleAggregator

INTERVALS = (Interval.M1, Interval.M5, Interval.H1, Interval.D1)
DATA = Path(os.environ.get("COINCAST_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_stream(n_trades: int) -> pl.DataFrame:
    path = DATA / "trades_btcusdt.parquet"
    if not path.exists():
        sys.exit(f"recorded trades not found at {path} (set COINCAST_SHARED_DATA)")
    base = pl.read_parquet(path).select(
        "trade_id", pl.col("time").dt.epoch("ms").alias("event_ms"), "price", "qty", "is_buyer_maker"
    )
    span = int(base["event_ms"].max() - base["event_ms"].min()) + 137  # keep bursts apart, off-grid
    reps = -(-n_trades // base.height)
    k = np.repeat(np.arange(reps, dtype=np.int64), base.height)
    ids = np.tile(base["trade_id"].to_numpy(), reps) + k * base.height
    t = np.tile(base["event_ms"].to_numpy(), reps) + k * span
    return pl.DataFrame({
        "symbol": "BTCUSDT", "trade_id": ids, "event_ms": t,
        "price": np.tile(base["price"].to_numpy(), reps), "qty": np.tile(base["qty"].to_numpy(), reps),
        "is_buyer_maker": np.tile(base["is_buyer_maker"].to_numpy(), reps),
    }).head(n_trades)


def run_stream(df: pl.DataFrame, batch: int) -> tuple[float, list]:
    ids, t = df["trade_id"].to_numpy(), df["event_ms"].to_numpy()
    px, q, m = df["price"].to_numpy(), df["qty"].to_numpy(), df["is_buyer_maker"].to_numpy()
    batches = [TradeBatch("BTCUSDT", ids[i:i + batch], t[i:i + batch], px[i:i + batch], q[i:i + batch],
                          m[i:i + batch]) for i in range(0, len(ids), batch)]
    agg = CandleAggregator(INTERVALS, grace_ms=0)
    out = []
    t0 = time.perf_counter()
    for b in batches:
        agg.add(b)
        out.extend(agg.advance(int(b.event_ms[-1])))
    out.extend(agg.flush())
    return time.perf_counter() - t0, [u.candle for u in out]


def run_batch(df: pl.DataFrame) -> tuple[float, dict[Interval, pl.DataFrame]]:
    t0 = time.perf_counter()
    res = trades_to_candles(df, INTERVALS)
    return time.perf_counter() - t0, res


def same_candles(stream: list, batch: dict[Interval, pl.DataFrame]) -> bool:
    for iv, ref in batch.items():
        got = pl.DataFrame([c.as_dict() for c in stream if c.interval == iv and c.trades > 0])
        if got.height != ref.height or got["open_time"].to_list() != ref["open_time"].to_list():
            return False
        for col in ("open", "high", "low", "close", "trades"):
            if got[col].to_list() != ref[col].to_list():
                return False
        for col in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
            if not np.allclose(got[col].to_numpy(), ref[col].to_numpy(), rtol=1e-9, atol=1e-9):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=3_000_000)
    ap.add_argument("--batch", type=int, default=1_000, help="trades per bus batch on the streaming path")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args()
    df = load_stream(args.trades)
    stream_s = min(run_stream(df, args.batch)[0] for _ in range(args.repeat))
    batch_s = min(run_batch(df)[0] for _ in range(args.repeat))
    ok = same_candles(run_stream(df, args.batch)[1], run_batch(df)[1])
    n = df.height
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"polars {pl.__version__}")
    print(f"trades: {n:,} ({df['event_ms'].max() - df['event_ms'].min():,} ms of market time), "
          f"intervals: {', '.join(i.value for i in INTERVALS)}, stream batch: {args.batch}")
    print(f"streaming fold : {n / stream_s:>14,.0f} trades/s  ({stream_s:.3f} s)")
    print(f"vectorised     : {n / batch_s:>14,.0f} trades/s  ({batch_s:.3f} s)")
    print(f"ratio stream/vectorised: {batch_s / stream_s:.2f}x (target >= 0.3x)")
    print(f"identical candles: {ok}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
