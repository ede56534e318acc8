"""``coincast features``, ``coincast analytics`` and ``coincast indicators``: the batch layer's CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from coincast.domain import ConfigError, Interval, InvalidRequest

if TYPE_CHECKING:
    import pandas as pd

ENGINES = ("local", "spark")
_MARKET = "BTCUSDT"


def register(app: typer.Typer) -> None:
    """Add the ``features``, ``analytics`` and ``indicators`` commands to the coincast CLI."""
    app.command("features")(features)
    app.command("analytics")(analytics)
    app.command("indicators")(indicators)


DataOpt = Annotated[Path | None, typer.Option("--data", help="Klines Parquet file (the schema of klines_1h.parquet).")]
LakeOpt = Annotated[
    str | None, typer.Option("--lake", help="History lake URL or path (file:///..., s3://..., a directory).")
]
IntervalOpt = Annotated[str, typer.Option("--interval", help="Candle interval to read from the lake.")]
SymbolsOpt = Annotated[
    str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all in the data).")
]


def _symbols(text: str | None) -> list[str] | None:
    if not text:
        return None
    from coincast.features.klines import symbol_list

    return symbol_list([s for s in text.split(",") if s.strip()])


def _check_source(data: Path | None, lake: str | None) -> None:
    if (data is None) == (lake is None):
        raise ConfigError("give exactly one of --data PATH.parquet or --lake URL")


def load_klines(
    data: Path | None, lake: str | None, interval: str, symbols: list[str] | None, keep: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Klines from a Parquet file or the lake, checked (plus ``keep`` symbols when present).

    Raises:
        ConfigError: neither or both sources, a missing file, a bad lake URL.
        InvalidRequest: bad schema, unknown symbols, nothing in the lake.
    """
    from coincast.features.klines import normalise_klines, read_klines, select_symbols

    _check_source(data, lake)
    if data is not None:
        return read_klines(data, symbols, keep=keep)
    assert lake is not None
    from coincast.lake.parquet import open_lake

    iv = Interval.parse(interval)
    store = open_lake(lake)
    available = store.symbols()
    wanted = [*symbols, *(k for k in keep if k in available and k not in symbols)] if symbols else available
    frame = store.read(wanted, iv).to_pandas()
    if frame.empty:
        raise InvalidRequest(f"the lake {lake!r} has no {iv.value} candles for {', '.join(wanted) or 'any symbol'}")
    frame = normalise_klines(frame)
    return select_symbols(frame, symbols, keep=keep) if symbols else frame


def features(
    out: Annotated[Path, typer.Option("--out", help="Output Parquet file for the feature table.")],
    data: DataOpt = None,
    lake: LakeOpt = None,
    interval: IntervalOpt = "1h",
    engine: Annotated[str, typer.Option("--engine", help="local (pandas) or spark (PySpark).")] = "local",
    symbols: SymbolsOpt = None,
    horizons: Annotated[str, typer.Option("--horizons", help="Comma-separated target horizons.")] = "1h,1d",
    master: Annotated[str, typer.Option("--master", help="Spark master for --engine spark.")] = "local[*]",
) -> None:
    """Compute indicators, ML features and targets: one row per (symbol, open_time) after warm-up.

    Cross-asset features use BTCUSDT from the same data (read even when --symbols leaves it out).
    Warm-up rows are dropped; the latest rows keep their features with empty targets.

    Example: coincast features --data klines_1h.parquet --out features.parquet --engine spark
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    _check_source(data, lake)
    wanted = _symbols(symbols)
    hz = [h.strip() for h in horizons.split(",") if h.strip()]
    started = time.perf_counter()
    if engine == "local":
        result, notes = _features_local(data, lake, interval, wanted, hz)
    else:
        result, notes = _features_spark(data, lake, interval, wanted, hz, master)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    for note in notes:
        typer.echo(f"note: {note}")
    n_symbols = result["symbol"].nunique()
    typer.echo(
        f"{len(result)} rows x {result.shape[1]} columns for {n_symbols} symbols "
        f"({engine} engine, {time.perf_counter() - started:.1f} s) -> {out}"
    )


def _features_local(
    data: Path | None, lake: str | None, interval: str, wanted: list[str] | None, horizons: list[str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    from tqdm import tqdm

    from coincast.features.pipeline import plan_features, run_local

    klines = load_klines(data, lake, interval, wanted, keep=(_MARKET,))
    plan = plan_features(klines, horizons)
    todo = wanted or sorted(klines["symbol"].unique())
    with tqdm(total=len(todo), unit="symbol", desc="features", disable=None) as bar:

        def done(symbol: str) -> None:
            bar.set_postfix_str(symbol)
            bar.update()

        result = run_local(klines, plan, symbols=wanted, on_symbol=done)
    return result, plan.notes


def _features_spark(
    data: Path | None,
    lake: str | None,
    interval: str,
    wanted: list[str] | None,
    horizons: list[str],
    master: str,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    from coincast.features.spark import lake_paths, run_spark, spark_session

    source: Path | list[str]
    if data is not None:
        source = data
    else:
        assert lake is not None
        from coincast.lake.parquet import open_lake

        available = open_lake(lake).symbols()
        names = [*wanted, *([_MARKET] if _MARKET in available else [])] if wanted else available
        missing = [s for s in names if s not in available]
        if missing or not names:
            raise InvalidRequest(f"the lake {lake!r} has no candles for {', '.join(missing) or 'any symbol'}")
        source = lake_paths(lake, Interval.parse(interval).value, sorted(set(names)))
    typer.echo(f"starting Spark ({master}) ...", err=True)
    with spark_session(master) as spark:
        result, plan = run_spark(spark, source, horizons, symbols=wanted)
    return result, plan.notes


def analytics(
    data: DataOpt = None,
    lake: LakeOpt = None,
    interval: IntervalOpt = "1h",
    period: Annotated[str, typer.Option("--period", help="all, or a trailing window: 30d, 12w, 6m, 1y.")] = "all",
    symbols: SymbolsOpt = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the tables as CSV: a directory, or FILE.csv (+ FILE_*.csv).")
    ] = None,
    risk_free: Annotated[float, typer.Option("--risk-free", help="Annual risk-free rate for Sharpe/Sortino.")] = 0.0,
) -> None:
    """Per-coin statistics and risk (volatility, drawdown, VaR/CVaR, Sharpe, Sortino), weekly and
    monthly returns, the correlation matrix and portfolio suggestions.

    Example: coincast analytics --data klines_1h.parquet --period 1y --csv analytics/
    """
    import pandas as pd
    from tqdm import tqdm

    from coincast.analytics import build_report

    klines = load_klines(data, lake, interval, _symbols(symbols))
    with tqdm(total=klines["symbol"].nunique(), unit="symbol", desc="analytics", disable=None) as bar:
        report = build_report(klines, period=period, risk_free=risk_free, on_symbol=lambda _s: bar.update())
    cols = [
        "symbol",
        "last_price",
        "period_return",
        "return_30d",
        "trend_30d",
        "ann_volatility",
        "max_drawdown",
        "var_95_hist",
        "cvar_95_hist",
        "sharpe",
        "sortino",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        typer.echo(f"period {report.period}: {report.start} .. {report.end}")
        typer.echo(report.summary[cols].to_string(index=False))
        if not report.portfolios.empty:
            wide = report.weights.pivot(index="symbol", columns="strategy", values="weight")
            typer.echo("\nportfolio suggestions (annualised, historical estimates, not forecasts):")
            typer.echo(report.portfolios.to_string(index=False))
            typer.echo(wide.round(3).to_string())
    for note in report.notes:
        typer.echo(f"note: {note}")
    if csv is not None:
        for path in report.to_csv(csv):
            typer.echo(f"wrote {path}")


def indicators() -> None:
    """List the indicator registry: name, family, parameters, warm-up, output columns, inputs.

    Example: coincast indicators
    """
    from coincast.features.registry import INDICATORS

    rows = [
        (i.name, i.family.value, i.params_text(), str(i.warmup), ", ".join(i.columns), ", ".join(i.requires), i.source)
        for i in INDICATORS
    ]
    head = ("name", "family", "parameters", "warm-up", "columns", "inputs", "source")
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    typer.echo(f"\n{len(INDICATORS)} indicators, {sum(len(i.outputs) for i in INDICATORS)} output columns")
