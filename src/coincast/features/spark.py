"""The Spark engine: the same per-symbol function through ``groupBy("symbol").applyInPandas``.

Spark reads the klines Parquet itself (a file or a lake directory), profiles it with Spark jobs,
joins the market symbol's close onto every row, then hands each symbol's rows to
:func:`coincast.features.pipeline.symbol_features` in a Python worker. Needs Java 17+ (Spark 4)
and the ``batch`` extra; ``local[*]`` here, any cluster master in production.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from coincast.domain import ConfigError, InvalidRequest
from coincast.features.bars import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from coincast.features.klines import symbol_list
from coincast.features.pipeline import (
    MARKET_COLUMN,
    MARKET_SYMBOL,
    DataProfile,
    FeaturePlan,
    empty_features,
    plan_from_profile,
    symbol_features,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


def java_available() -> bool:
    """True when a ``java`` binary is reachable (JAVA_HOME/bin/java or on PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


@contextmanager
def spark_session(
    master: str = "local[*]", *, app_name: str = "coincast-features", driver_memory: str = "3g"
) -> Iterator[SparkSession]:
    """A Spark session for the feature job, stopped on exit.

    ``driver_memory`` matters in local mode, where the driver JVM also runs the tasks and holds
    the collected feature table (the default 1g runs out of heap on the 10 coins' hourly history).

    Raises:
        ConfigError: pyspark is not installed or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("the spark engine needs pyspark: pip install 'coincast[batch]'") from exc
    if not java_available():
        raise ConfigError("the spark engine needs Java 17+ (apt-get install default-jre-headless) or JAVA_HOME")
    # The Python workers must run this interpreter (it has coincast and TA-Lib installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder: Any = SparkSession.builder.master(master).appName(app_name)
    if master.startswith("local"):  # keep a local run on the loopback interface
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    with quiet_pandas3():
        builder = builder.config("spark.driver.memory", driver_memory)
        spark = _configure(builder, _shuffle_partitions(master)).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


@contextmanager
def quiet_pandas3() -> Iterator[None]:
    """Silence pyspark 4.3's warnings about pandas 3 ("not yet fully supported", ``copy=``).

    It comes on every pandas conversion (and again as a UserWarning from applyInPandas' type-hint
    inference); the engine-parity test proves the conversions used here are exact.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas")
        # pyspark's toPandas still passes pandas' deprecated ``copy=`` keyword (harmless under CoW)
        warnings.filterwarnings("ignore", message=".*copy keyword is deprecated")
        yield


def _shuffle_partitions(master: str) -> int:
    """One partition per local core (each symbol is one group); 64 on a cluster."""
    if master.startswith("local"):
        inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
        return max(1, os.cpu_count() or 1) if inside in ("*", "") else max(1, int(inside.split(",")[0]))
    return 64


def _configure(builder: Any, partitions: int) -> Any:
    return (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # the Python workers: same pandas-3 notice as quiet_pandas3(), printed once per worker
        .config("spark.executorEnv.PYTHONWARNINGS", "ignore::FutureWarning")
    )


def lake_paths(url: str, interval: str, symbols: Sequence[str]) -> list[str]:
    """Spark paths of the lake's ``symbol=<S>/interval=<I>`` directories (the documented layout of
    :mod:`coincast.lake.parquet`): local paths and ``file://`` URLs as paths, ``s3://`` as ``s3a://``.
    """
    if url.startswith("s3://"):
        root = "s3a://" + url.removeprefix("s3://").rstrip("/")
    else:
        root = str(Path(url.removeprefix("file://")).expanduser().resolve())
    return [f"{root}/symbol={s}/interval={interval}" for s in symbols]


def read_klines_spark(
    spark: SparkSession, path: str | Path | Sequence[str], symbols: Sequence[str] | None = None
) -> SparkFrame:
    """Klines from Parquet (a file, a directory, or several lake directories) checked and cast.

    Directories are read recursively without partition discovery: the files already hold every
    column, ``symbol`` included.

    Raises:
        ConfigError: a local path does not exist.
        InvalidRequest: required columns missing, or a requested symbol is absent.
    """
    from pyspark.sql import functions as sf

    paths = [str(path)] if isinstance(path, (str, Path)) else [str(p) for p in path]
    for p in paths:
        if "://" not in p and not Path(p).exists():
            raise ConfigError(f"klines path {p!r} does not exist")
    sdf = spark.read.option("recursiveFileLookup", "true").parquet(*paths)
    missing = [c for c in REQUIRED_COLUMNS if c not in sdf.columns]
    if missing:
        raise InvalidRequest(f"klines need columns {', '.join(REQUIRED_COLUMNS)}; missing {', '.join(missing)}")
    keep = [*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in sdf.columns)]
    cols = [sf.col("symbol").cast("string"), sf.col("open_time").cast("timestamp")]
    cols += [sf.col(c).cast("double").alias(c) for c in keep if c not in ("symbol", "open_time")]
    sdf = sdf.select(*cols)
    if symbols:
        wanted = symbol_list(symbols)
        have = {r[0] for r in sdf.select("symbol").distinct().collect()}
        absent = [s for s in wanted if s not in have]
        if absent:
            raise InvalidRequest(f"symbols {', '.join(absent)} not in the data; it has {', '.join(sorted(have))}")
        # the market symbol stays in for the cross-asset features; features_spark drops its rows
        sdf = sdf.filter(sf.col("symbol").isin([*wanted, MARKET_SYMBOL]))
    return sdf


def profile_spark(sdf: SparkFrame) -> DataProfile:
    """The same profile as :func:`coincast.features.pipeline.profile_frame`, computed by Spark.

    Raises:
        InvalidRequest: no rows, duplicate (symbol, open_time), or null prices.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    optional = [c for c in OPTIONAL_COLUMNS if c in sdf.columns]
    aggs = [sf.count(sf.lit(1)).alias("rows"), sf.countDistinct("symbol", "open_time").alias("keys")]
    prices = ("open", "high", "low", "close", "volume")
    aggs += [sf.sum(sf.col(c).isNull().cast("long")).alias(f"null_{c}") for c in (*optional, *prices)]
    aggs.append(sf.max((sf.col("symbol") == MARKET_SYMBOL).cast("int")).alias("market"))
    row = sdf.agg(*aggs).collect()[0]
    if not row["rows"]:
        raise InvalidRequest("klines have no rows")
    if row["keys"] != row["rows"]:
        raise InvalidRequest(f"duplicate klines rows: {row['rows'] - row['keys']} repeated (symbol, open_time)")
    bad = [c for c in prices if row[f"null_{c}"]]
    if bad:
        raise InvalidRequest(f"klines columns {', '.join(bad)} have null values")
    step = sf.col("open_time").cast("long") - sf.lag(sf.col("open_time").cast("long")).over(
        Window.partitionBy("symbol").orderBy("open_time")
    )
    modes = (
        sdf.select(step.alias("step"))
        .filter(sf.col("step") > 0)
        .groupBy("step")
        .count()
        .orderBy(sf.desc("count"), "step")
        .limit(1)
        .collect()
    )
    if not modes:
        raise InvalidRequest("cannot tell the candle interval: no symbol has two rows")
    nulls = {c: int(row[f"null_{c}"] or 0) for c in optional}
    return DataProfile(nulls, int(row["rows"]), int(modes[0]["step"]) * 1000, bool(row["market"]))


def _spark_schema(plan: FeaturePlan) -> str:
    columns = empty_features(plan).columns
    fields = ["symbol string", "open_time timestamp"]
    fields += [f"`{c}` double" for c in columns if c not in ("symbol", "open_time")]
    return ", ".join(fields)


def features_spark(sdf: SparkFrame, plan: FeaturePlan, symbols: Sequence[str] | None = None) -> SparkFrame:
    """The feature frame as a lazy Spark DataFrame (one row per symbol and open_time after warm-up).

    ``symbols`` limits the output (the market symbol may be in ``sdf`` only for the join).
    """
    from pyspark.sql import functions as sf

    if plan.cross_asset:
        market = sdf.filter(sf.col("symbol") == MARKET_SYMBOL).select("open_time", sf.col("close").alias(MARKET_COLUMN))
        sdf = sdf.join(market, on="open_time", how="left")
    if symbols:
        sdf = sdf.filter(sf.col("symbol").isin(symbol_list(symbols)))

    def per_symbol(group: pd.DataFrame) -> pd.DataFrame:
        return symbol_features(group, plan)

    return sdf.groupBy("symbol").applyInPandas(per_symbol, schema=_spark_schema(plan))


def run_spark(
    spark: SparkSession,
    path: str | Path | Sequence[str],
    horizons: Sequence[str] = ("1h", "1d"),
    *,
    symbols: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, FeaturePlan]:
    """Features of the klines at ``path`` (see :func:`read_klines_spark`) computed on Spark,
    collected to the driver.

    The result equals :func:`coincast.features.pipeline.build_features` on the same data:
    same rows, columns, dtypes (``open_time`` datetime64[ms, UTC]) and order.

    Raises:
        ConfigError: missing path; InvalidRequest: bad schema, symbols or horizons.
    """
    with quiet_pandas3():
        sdf = read_klines_spark(spark, path, symbols).cache()
        try:
            plan = plan_from_profile(profile_spark(sdf), horizons)
            result = features_spark(sdf, plan, symbols).toPandas()
        finally:
            sdf.unpersist()
    return _canonical(result, plan), plan


def _canonical(result: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """Spark's collected frame in the local engine's dtypes and row order."""
    template = empty_features(plan)
    out = result.loc[:, list(template.columns)].copy()
    times = out["open_time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_localize("UTC")
    out["open_time"] = times.dt.tz_convert("UTC").dt.as_unit("ms")
    out["symbol"] = out["symbol"].astype("str")
    out = out.astype({c: "float64" for c in template.columns if c not in ("symbol", "open_time")})
    return out.sort_values(["symbol", "open_time"], kind="stable").reset_index(drop=True)
