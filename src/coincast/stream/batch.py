"""Vectorised trades -> candles over a whole table (polars): imports, checks and benchmarks.

It states the same rules as the streaming :class:`~coincast.stream.candles.CandleAggregator`
for trades that arrive in time: open/close are the first/last trade by (time, id), a repeated
trade id counts once, and taker-buy volume is the volume of trades whose buyer was the taker.
It does not emit zero-volume candles for quiet intervals (there is no watermark here).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from coincast.domain import Interval

TRADE_COLUMNS = ("trade_id", "event_ms", "price", "qty", "is_buyer_maker")


def trades_to_candles(
    trades: pl.DataFrame | pl.LazyFrame, intervals: Sequence[Interval]
) -> dict[Interval, pl.DataFrame]:
    """Aggregate trades (columns ``symbol`` + :data:`TRADE_COLUMNS`) into candles per interval.

    Deduplication and sorting happen once for all intervals. Returns, per interval, one row per
    (symbol, open_time) that had trades, sorted, with the columns of
    :meth:`coincast.domain.Candle.as_dict` except ``interval``, ``close_time`` and ``closed``.
    """
    lf = trades.lazy() if isinstance(trades, pl.DataFrame) else trades
    clean = (
        lf.unique(subset=["symbol", "trade_id"], keep="first")
        # time order is enough: a group keeps its rows' order, so first/last are by (time, id) per symbol
        .sort("event_ms", "trade_id")
        .with_columns(
            quote=pl.col("price") * pl.col("qty"),
            taker_qty=pl.when(~pl.col("is_buyer_maker")).then(pl.col("qty")).otherwise(0.0),
        )
        .with_columns(
            taker_quote=pl.when(~pl.col("is_buyer_maker")).then(pl.col("quote")).otherwise(0.0)
        )
        .collect()
    )
    plans = [
        clean.lazy()
        .group_by("symbol", (pl.col("event_ms") - pl.col("event_ms") % iv.ms).alias("open_time"),
                  maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("qty").sum(),
            quote_volume=pl.col("quote").sum(),
            trades=pl.len().cast(pl.Int64),
            taker_buy_volume=pl.col("taker_qty").sum(),
            taker_buy_quote_volume=pl.col("taker_quote").sum(),
        )
        for iv in intervals
    ]
    return {iv: frame.sort("symbol", "open_time") for iv, frame in zip(intervals, pl.collect_all(plans), strict=True)}
