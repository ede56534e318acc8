"""`coincast import` as a process: twice into one data directory, with bad rows, and while another
process holds the DuckDB store; the lake and the store never disagree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest
from tests.integration.test_cli_errors import assert_one_error_line, coincast

from coincast.domain import Interval
from coincast.lake.parquet import open_lake
from coincast.store.duckdb import DuckDBStore

pytestmark = pytest.mark.integration


@pytest.fixture
def klines_file(tmp_path: Path, shared_data: Path) -> Path:
    """100 real hourly BTCUSDT klines, open_time in microseconds (as Binance writes since 2025)."""
    df = pl.read_parquet(shared_data / "klines_1h.parquet").filter(pl.col("symbol") == "BTCUSDT").head(100)
    path = tmp_path / "btc_us.parquet"
    df.with_columns(pl.col("open_time").dt.epoch("us")).write_parquet(path)
    return path


def stored(data: Path) -> list[int]:
    async def read() -> list[int]:
        store = DuckDBStore.open(str(data / "coincast.db"))
        try:
            got = await store.history("BTCUSDT", Interval.H1, start_ms=0, end_ms=2**62, limit=10_000)
        finally:
            await store.close()
        return [c.open_ms for c in got]

    return asyncio.run(read())


def in_lake(data: Path) -> list[int]:
    df = open_lake(f"file://{data / 'lake'}").read(["BTCUSDT"], "1h")
    return [int(t.timestamp() * 1000) for t in df["open_time"]]


def test_import_twice_is_idempotent_and_lake_equals_store(tmp_path: Path, klines_file: Path) -> None:
    data = tmp_path / "data"
    for _ in range(2):
        res = coincast("import", str(klines_file), "--interval", "1h", "--data-dir", str(data), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "100 rows, 100 candles imported, 0 bad rows" in res.stdout
    got = stored(data)
    assert len(got) == 100 and got == in_lake(data)
    assert got[0] == 1_617_566_400_000  # 2021-04-04 20:00 UTC: microseconds read as such


def test_bad_rows_exit_1_and_are_listed(tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT-1h-2024-01.csv"
    rows = [f"{1_704_067_200_000 + i * 3_600_000},100,110,90,105,10,0,0,0,0,0,0" for i in range(5)]
    rows[1] = rows[1].replace(",110,", ",nan,")
    rows[3] = rows[3].replace(",110,", ",1e308,")
    f.write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    res = coincast("import", str(f), "--data-dir", str(data), cwd=tmp_path)
    assert res.returncode == 1
    assert f"{f}:2: high: not a finite number: NaN" in res.stderr
    assert f"{f}:4: high 1e+308 is implausibly large" in res.stderr
    assert res.stderr.splitlines()[-1] == "error: 2 bad rows were not imported (listed above with file:line)"
    assert stored(data) == in_lake(data) and len(stored(data)) == 3


def test_import_while_the_store_is_held_writes_nothing(tmp_path: Path, klines_file: Path) -> None:
    """A running `coincast up` holds DuckDB's lock: the import says so before the lake is written."""
    data = tmp_path / "data"
    data.mkdir()
    holder = DuckDBStore.open(str(data / "coincast.db"))  # this test process plays the running server
    try:
        res = coincast("import", str(klines_file), "--interval", "1h", "--data-dir", str(data), cwd=tmp_path)
    finally:
        asyncio.run(holder.close())
    assert_one_error_line(res, "is in use by process", "stop it and run this again (nothing was written)")
    assert res.returncode == 2
    assert not (data / "lake").exists()
    res = coincast("import", str(klines_file), "--interval", "1h", "--data-dir", str(data), cwd=tmp_path)
    assert res.returncode == 0 and len(stored(data)) == 100 == len(in_lake(data))


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("BTCUSDT-1h-2024-01.csv", bytes(range(256)) * 4, "not UTF-8 text"),
    ("x.parquet", b"\x00garbage" * 50, "not a readable Parquet file"),
    ("BTCUSDT-1h-2024-01.zip", b"PK\x03\x04" + bytes(100), "not a zip file"),
])
def test_random_bytes_are_one_line(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    data = tmp_path / "data"
    res = coincast("import", str(f), "--interval", "1h", "--data-dir", str(data), cwd=tmp_path)
    assert_one_error_line(res, needle)
    assert not (data / "lake").exists() and not (data / "coincast.db").exists()
