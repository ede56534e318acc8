"""Import of Binance public-data and Yahoo CSV files: every format, broken rows reported by line."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coincast.domain import Interval, InvalidRequest
from coincast.sources.files import read_market_file

T0 = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1000)


def kline_line(i: int, *, unit: int = 1, o: float = 100.0, h: float = 101.0, lo: float = 99.0, c: float = 100.5,
               v: float = 3.0) -> str:  # fmt: skip
    t = (T0 + i * 3_600_000) * unit
    close_t = (T0 + (i + 1) * 3_600_000 - 1) * unit
    return f"{t},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},{close_t},{v * c:.8f},42,{v / 2:.8f},{v * c / 2:.8f},0"


KLINE_HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
KLINE_HEADER += "taker_buy_quote_volume,ignore"


def test_klines_csv_without_header(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-1h-2023-01.csv"
    f.write_text("\n".join(kline_line(i) for i in range(48)) + "\n")
    (res,) = read_market_file(f)
    assert (res.kind, res.symbol, res.interval, res.rows, res.bad) == ("klines", "BTCUSDT", Interval.H1, 48, [])
    row = res.frame.row(0, named=True)
    assert row["open_time"] == datetime(2023, 1, 1, tzinfo=UTC) and row["trades"] == 42
    assert row["taker_buy_base"] == 1.5 and row["quote_volume"] == pytest.approx(301.5)


def test_zipped_klines_with_header_and_microseconds(tmp_path: Path) -> None:
    f = tmp_path / "ETHUSDT-1h-2025-01.zip"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr(
            "ETHUSDT-1h-2025-01.csv", KLINE_HEADER + "\n" + "\n".join(kline_line(i, unit=1000) for i in range(5))
        )
    (res,) = read_market_file(f)
    assert res.symbol == "ETHUSDT" and res.bad == [] and res.frame.height == 5
    assert res.frame["open_time"][1] == datetime(2023, 1, 1, 1, tzinfo=UTC)


def test_broken_kline_rows_are_reported_with_file_and_line(tmp_path: Path) -> None:
    lines = [
        KLINE_HEADER,
        kline_line(0),
        kline_line(1, h=99.5),  # line 3: high below open/close
        "",  # line 4: blank, skipped
        kline_line(2, v=-1),  # line 5: negative volume
        kline_line(3).replace("101.00000000", "abc", 1),  # line 6: not a number
        kline_line(4),
        kline_line(4),  # line 8: repeated time
        "1672531200000,1,2",  # line 9: short row
        kline_line(6, lo=100.6),  # line 10: low above min(open, close)
        kline_line(7).replace(str(T0 + 7 * 3_600_000), str(T0 + 7 * 3_600_000 + 5), 1),  # line 11: off-boundary
        kline_line(8),
    ]
    f = tmp_path / "BTCUSDT-1h-2023-01.csv"
    f.write_text("\n".join(lines))
    (res,) = read_market_file(f)
    by_line = {b.line: b.reason for b in res.bad}
    assert sorted(by_line) == [3, 5, 6, 8, 9, 10, 11]
    assert "high" in by_line[3] and "negative volume" in by_line[5] and "not a number: 'abc'" in by_line[6]
    assert "not after" in by_line[8] and "expected 12 fields, got 3" in by_line[9]
    assert "low" in by_line[10] and "boundary" in by_line[11]
    assert str(res.bad[0]) == f"{f}:3: {by_line[3]}"
    assert res.frame.height == 3 and res.rows == 10


def test_trades_csv_are_aggregated_into_candles(tmp_path: Path) -> None:
    rows = [
        "1,100.0,1.0,100.0,1672531200000,true,true",
        "2,102.0,0.5,51.0,1672531230000,false,true",
        "3,99.0,2.0,198.0,1672531259999,False,True",
        "4,101.0,1.0,101.0,1672531260000,true,true",
        "5,-1,1.0,101.0,1672531260001,true,true",  # line 5: bad price
        "6,101.5,1.0,101.5,1672531200000,true,true",  # line 6: time goes backwards
    ]
    f = tmp_path / "BTCUSDT-trades-2023-01-01.csv"
    f.write_text("\n".join(rows))
    (res,) = read_market_file(f)
    assert res.kind == "trades" and res.interval == Interval.M1
    assert [(b.line, b.reason.split(" ")[0]) for b in res.bad] == [(5, "price"), (6, "time")]
    first = res.frame.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (100.0, 102.0, 99.0, 99.0)
    assert first["volume"] == 3.5 and first["trades"] == 3 and first["taker_buy_base"] == 2.5
    assert res.frame.height == 2


def test_agg_trades_zip_with_header_counts_underlying_trades(tmp_path: Path) -> None:
    head = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"
    body = ["10,100.0,1.0,100,104,1672531200000000,true,true", "11,101.0,1.0,105,105,1672531201000000,false,true"]
    f = tmp_path / "BTCUSDT-aggTrades-2023-01-01.zip"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("BTCUSDT-aggTrades-2023-01-01.csv", "\n".join([head, *body]))
    (res,) = read_market_file(f, interval=Interval.M5)
    assert res.kind == "aggTrades" and res.interval == Interval.M5 and res.bad == []
    assert res.frame["trades"].to_list() == [6] and res.frame["close"].to_list() == [101.0]


def test_yahoo_daily_csv(tmp_path: Path) -> None:
    f = tmp_path / "BTC-USD.csv"
    f.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2023-01-01,16547.91,16630.44,16521.23,16625.08,16625.08,9244361700\n"
        "2023-01-02,null,null,null,null,null,null\n"
        "2023-01-03,16679.30,16760.45,16622.37,16688.47,16688.47,13903079207\n"
        "2023-13-04,1,2,1,1,1,1\n"
    )
    (res,) = read_market_file(f, symbol="BTCUSDT")
    assert res.kind == "yahoo" and res.interval == Interval.D1 and res.symbol == "BTCUSDT"
    assert [b.line for b in res.bad] == [3, 5]
    assert "not a number: 'null'" in res.bad[0].reason and "date" in res.bad[1].reason
    assert res.frame["open_time"].to_list() == [datetime(2023, 1, d, tzinfo=UTC) for d in (1, 3)]


def test_unknown_layout_and_missing_symbol_are_clear(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("1,2,3\n")
    with pytest.raises(InvalidRequest, match="unknown layout with 3 fields"):
        read_market_file(f)
    g = tmp_path / "data.csv"
    g.write_text(kline_line(0))
    with pytest.raises(InvalidRequest, match="--symbol"):
        read_market_file(g)
    with pytest.raises(InvalidRequest, match="--interval"):
        read_market_file(g, symbol="BTCUSDT")


def test_parquet_klines_and_trades(tmp_path: Path, shared_data: Path) -> None:
    (res,) = read_market_file(shared_data / "trades_btcusdt.parquet", symbol="BTCUSDT")
    assert res.bad == [] and res.frame["trades"].sum() == 2001 and res.frame.height == 1
    kl = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol") == "ETHUSDT").head(100)
    kl = kl.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(-1.0).otherwise(pl.col("volume")).alias("volume"))
    path = tmp_path / "k.parquet"
    kl.write_parquet(path)
    (res,) = read_market_file(path, interval=Interval.H1)
    assert [b.line for b in res.bad] == [8] and res.frame.height == 99


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.floats(0.01, 1e6, allow_nan=False),
            st.floats(0, 1e3, allow_nan=False),
            st.floats(0, 1e3, allow_nan=False),
            st.floats(0, 1e4, allow_nan=False),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    micro=st.booleans(),
    header=st.booleans(),
)
def test_valid_klines_round_trip_exactly(tmp_path: Path, rows: list, micro: bool, header: bool) -> None:
    lines = []
    for i, (o, up, down, v, bull) in enumerate(rows):
        c = o + up if bull else max(o - down, 0.005)
        lines.append(kline_line(i, unit=1000 if micro else 1, o=o, h=max(o, c) + up, lo=min(o, c) / 2, c=c, v=v))
    f = tmp_path / "SOLUSDT-1h-2023-01.csv"
    f.write_text("\n".join([KLINE_HEADER] * header + lines))
    (res,) = read_market_file(f)
    assert res.bad == [] and res.frame.height == len(rows)
    assert res.frame["open_time"].dt.epoch("ms").to_list() == [T0 + i * 3_600_000 for i in range(len(rows))]
    assert np.allclose(res.frame["volume"].to_numpy(), [round(r[3], 8) for r in rows])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r\x1f"), max_size=40),
                        min_size=1, max_size=8))  # fmt: skip
def test_garbage_rows_are_reported_never_imported_or_raised(tmp_path: Path, garbage: list[str]) -> None:
    good = [kline_line(i) for i in range(3)]
    f = tmp_path / "BTCUSDT-1h-2023-01.csv"
    body = [*good[:1], *garbage, *good[1:]]
    f.write_text("\n".join(body), encoding="utf-8")
    (res,) = read_market_file(f)
    non_blank = [i + 1 for i, line in enumerate(body) if line.strip("\r\ufeff \t")]
    imported = res.frame.height
    assert imported + len(res.bad) == len(non_blank)
    assert {b.line for b in res.bad} <= set(non_blank)
    assert imported >= 1  # the first valid line is never lost


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"o": float("nan")}, "open: not a finite number"),
        ({"h": float("inf")}, "high: not a finite number"),
        ({"h": 1e308}, "high 1e+308 is implausibly large"),
        ({"v": float("nan")}, "volume: not a finite number"),
        ({"v": float("-inf")}, "volume: not a finite number"),
    ],
)
def test_non_finite_and_absurd_values_are_rejected_per_row(tmp_path: Path, fields: dict[str, float],
                                                            reason: str) -> None:
    """NaN compares false with everything, so without its own rule it would pass high >= max(open, close)."""
    lines = [kline_line(i) for i in range(5)]
    lines[2] = kline_line(2, **fields).replace("nan", "NaN")
    f = tmp_path / "BTCUSDT-1h-2023-01.csv"
    f.write_text("\n".join(lines) + "\n")
    (res,) = read_market_file(f)
    assert [b.line for b in res.bad] == [3] and reason in res.bad[0].reason
    assert str(res.bad[0]).startswith(f"{f}:3: ")
    assert res.frame.height == 4 and res.frame.select(pl.all_horizontal(
        pl.col("open", "high", "low", "close", "volume").is_finite())).to_series().all()


def test_times_outside_any_market_are_rejected(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-1h-2023-01.csv"
    good = kline_line(0)
    f.write_text("\n".join([good, "3600000" + good[good.index(","):], "9" * 18 + good[good.index(","):]]) + "\n")
    (res,) = read_market_file(f)
    assert [b.line for b in res.bad] == [2, 3] and all("outside 2000-01-01 .. 2100-01-01" in b.reason for b in res.bad)


def test_parquet_with_microsecond_times_and_bad_values(tmp_path: Path, shared_data: Path) -> None:
    src = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol") == "ETHUSDT").head(20)
    us = src.with_columns(pl.col("open_time").dt.epoch("us"))
    us = us.with_columns(high=pl.when(pl.int_range(pl.len()) == 4).then(float("nan")).otherwise(pl.col("high")))
    path = tmp_path / "eth_us.parquet"
    us.write_parquet(path)
    (res,) = read_market_file(path, interval=Interval.H1)
    assert [(b.line, b.reason) for b in res.bad] == [(5, "high: not a finite number: NaN")]
    assert res.frame["open_time"].to_list() == src["open_time"].to_list()[:4] + src["open_time"].to_list()[5:]


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("BTCUSDT-1h-2023-01.csv", bytes(range(256)) * 8, "not UTF-8 text"),
    ("x.parquet", b"PAR1" + bytes(200) + b"PAR1", "not a readable Parquet file"),
])
def test_binary_garbage_is_one_clear_error(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(InvalidRequest, match=needle):
        read_market_file(f, interval=Interval.H1)


def test_parquet_without_the_columns_is_one_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "k.parquet"
    pl.DataFrame({"open_time": [T0], "open": [1.0]}).write_parquet(f)
    with pytest.raises(InvalidRequest, match=r"klines Parquet lacks columns \['high', 'low', 'close', 'volume'\]"):
        read_market_file(f, interval=Interval.H1, symbol="BTCUSDT")
