"""The Parquet lake: layout, idempotent writes, range reads, schema of the shared klines file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from coincast.domain import Candle, ConfigError, Interval
from coincast.lake.parquet import SCHEMA, open_lake, partition_start

T0 = int(datetime(2023, 1, 30, 22, tzinfo=UTC).timestamp() * 1000)


def frame(symbol: str, n: int, *, start_ms: int = T0, step: Interval = Interval.H1, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + rng.normal(0, 1, n).cumsum()
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "open_time": [start_ms + i * step.ms for i in range(n)],
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )


def test_write_partitions_by_symbol_interval_date(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    assert lake.write(frame("BTCUSDT", 30), Interval.H1) == 30  # crosses into February
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "symbol=BTCUSDT/interval=1h/date=2023-01-01/part.parquet",
        "symbol=BTCUSDT/interval=1h/date=2023-02-01/part.parquet",
    ]
    assert pq.read_schema(tmp_path / files[0]).remove_metadata() == SCHEMA


def test_write_twice_stores_once_and_later_values_win(tmp_path: Path) -> None:
    lake = open_lake(f"file://{tmp_path}")
    df = frame("BTCUSDT", 48)
    lake.write(df, "1h")
    lake.write(df, "1h")
    changed = df.head(3).with_columns(pl.col("close") * 2)
    lake.write(changed, "1h")
    got = lake.read(["BTCUSDT"], "1h")
    assert got.height == 48
    assert got["close"].head(3).to_list() == changed["close"].to_list()
    assert got["close"].tail(45).to_list() == df["close"].tail(45).to_list()


def test_read_filters_range_and_symbols_in_the_shared_schema(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    lake.write(pl.concat([frame("BTCUSDT", 100), frame("ETHUSDT", 100, seed=1)]), Interval.H1)
    start, end = T0 + 10 * Interval.H1.ms, T0 + 20 * Interval.H1.ms
    got = lake.read(["ETHUSDT", "BTCUSDT"], Interval.H1, start, end)
    assert got.height == 20 and got["symbol"].unique().sort().to_list() == ["BTCUSDT", "ETHUSDT"]
    assert got.to_arrow().schema.remove_metadata() == SCHEMA
    ms = got["open_time"].dt.epoch("ms")
    assert ms.min() == start and ms.max() == end - Interval.H1.ms
    assert lake.read("XRPUSDT", "1h").to_arrow().schema == SCHEMA
    assert lake.read("BTCUSDT", "1h", start="2023-01-31", end=datetime(2023, 2, 1, tzinfo=UTC)).height == 24
    assert lake.open_times("BTCUSDT", Interval.H1, start, end) == set(range(start, end, Interval.H1.ms))
    assert lake.symbols() == ["BTCUSDT", "ETHUSDT"]


def test_candles_round_trip(tmp_path: Path) -> None:
    lake = open_lake(str(tmp_path))
    candles = [
        Candle("BTCUSDT", Interval.M1, T0 + i * 60_000, 10.0, 12.0, 9.0, 11.0, 2.0, 21.0, 7, 1.0, 10.5)
        for i in range(3)
    ]
    assert lake.write_candles(candles) == 3
    got = lake.read("BTCUSDT", Interval.M1).row(0, named=True)
    assert got["trades"] == 7 and got["taker_buy_quote"] == 10.5 and got["quote_volume"] == 21.0


def test_shared_klines_file_round_trips(tmp_path: Path, shared_data: Path) -> None:
    src = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol").is_in(["BTCUSDT", "ETHUSDT"]))
    src = src.filter(pl.col("open_time").dt.year() == 2022)
    lake = open_lake(str(tmp_path))
    lake.write(src, Interval.H1)
    got = lake.read(["BTCUSDT", "ETHUSDT"], Interval.H1)
    assert_frame_equal(got, src.sort("symbol", "open_time"))


def test_partition_sizes_follow_the_interval() -> None:
    assert partition_start(Interval.M1, T0).isoformat() == "2023-01-30"
    assert partition_start(Interval.H4, T0).isoformat() == "2023-01-01"
    assert partition_start(Interval.D1, T0).isoformat() == "2023-01-01"


def test_bad_urls_and_frames_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        open_lake("ftp://host/lake")
    with pytest.raises(ValueError, match="lacks columns"):
        open_lake("/tmp/x").write(pl.DataFrame({"symbol": ["A"]}), "1h")


def test_conform_accepts_pandas_and_arrow_and_times() -> None:
    import pandas as pd

    from coincast.lake.parquet import conform, to_ms

    pdf = pd.DataFrame(
        {"symbol": ["BTCUSDT"], "open_time": [pd.Timestamp("2023-01-01", tz="UTC")], "open": [1.0], "high": [2.0],
         "low": [0.5], "close": [1.5], "volume": [3.0]}
    )  # fmt: skip
    out = conform(pdf)
    assert out.to_arrow().schema.remove_metadata() == SCHEMA and out["trades"].null_count() == 1
    assert conform(out.to_arrow()).equals(out)
    assert to_ms("2023-01-01") == to_ms(datetime(2023, 1, 1)) == 1_672_531_200_000
    assert to_ms("2023-01-01T01:00:00Z") == 1_672_534_800_000 and to_ms(None) is None
