"""The Spark engine gives exactly the local engine's output on the same real data.

Small slice on purpose (3 symbols x 1500 hours) so Spark's start-up dominates. Needs Java 17+
(Debian: apt-get install default-jre-headless) and pyspark (the ``batch`` extra).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coincast.domain import InvalidRequest
from coincast.features.klines import read_klines
from coincast.features.pipeline import plan_features, run_local

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pyspark = pytest.importorskip("pyspark", reason="pyspark not installed (pip install 'coincast[batch]')")

from coincast.features.spark import java_available, run_spark, spark_session  # noqa: E402

if not java_available():
    pytest.skip("Java 17+ not found (apt-get install default-jre-headless, or set JAVA_HOME)", allow_module_level=True)


@pytest.fixture(scope="module")
def slice_path(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = pd.read_parquet(
        shared_data / "klines_1h.parquet", filters=[("symbol", "in", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])]
    )
    part = df.sort_values(["symbol", "open_time"]).groupby("symbol").head(1500)
    path = tmp_path_factory.mktemp("spark") / "klines.parquet"
    part.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def spark():  # type: ignore[no-untyped-def]
    with spark_session("local[2]") as session:
        yield session


def test_spark_equals_local_exactly(spark, slice_path: Path) -> None:  # type: ignore[no-untyped-def]
    klines = read_klines(slice_path)
    local = run_local(klines, plan_features(klines))
    remote, plan = run_spark(spark, slice_path)
    assert plan == plan_features(klines)
    assert len(local) == 3 * (1500 - plan.warmup)
    pd.testing.assert_frame_equal(local, remote, check_exact=True)


def test_spark_symbol_subset_keeps_the_market_factor(spark, slice_path: Path) -> None:  # type: ignore[no-untyped-def]
    klines = read_klines(slice_path, ["ethusdt"], keep=["BTCUSDT"])
    local = run_local(klines, plan_features(klines), symbols=["ETHUSDT"])
    remote, _ = run_spark(spark, slice_path, symbols=["ethusdt"])
    assert set(remote["symbol"]) == {"ETHUSDT"} and "corr_btc_168" in remote.columns
    pd.testing.assert_frame_equal(local, remote, check_exact=True)


def test_spark_unknown_symbol_is_a_clear_error(spark, slice_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest, match="not in the data"):
        run_spark(spark, slice_path, symbols=["XRPUSDT"])


def test_spark_reads_the_parquet_lake(spark, slice_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    from coincast.features.spark import lake_paths
    from coincast.lake.parquet import open_lake

    lake = open_lake(str(tmp_path / "lake"))
    lake.write(pl.from_pandas(pd.read_parquet(slice_path)), "1h")
    paths = lake_paths(f"file://{tmp_path / 'lake'}", "1h", lake.symbols())
    remote, _ = run_spark(spark, paths)
    klines = read_klines(slice_path)
    pd.testing.assert_frame_equal(run_local(klines, plan_features(klines)), remote, check_exact=True)
