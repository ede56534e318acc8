"""``coincast evaluate`` (walk-forward leaderboard), ``coincast evaluate-vol`` (volatility) and ``coincast tune``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coincast.domain import InvalidRequest

# Options shared by evaluate and evaluate-vol.
TestEnd = Annotated[
    str | None, typer.Option("--test-end", help="Last target time to forecast (default: end of data).")
]
RetrainEvery = Annotated[
    str | None, typer.Option("--retrain-every", help="Retrain step (default 7d for 1h, 30d for 1d).")
]


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` and ``tune`` commands to the coincast CLI."""
    app.command("evaluate")(evaluate)
    app.command("evaluate-vol")(evaluate_vol)
    app.command("tune")(tune)


def evaluate(
    data: Annotated[Path | None, typer.Option("--data", help="Klines parquet (schema of klines_1h.parquet).")] = None,
    symbols: Annotated[
        str, typer.Option("--symbols", help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT.")
    ] = "BTCUSDT",
    horizon: Annotated[str, typer.Option("--horizon", help="Forecast horizon: 1h or 1d.")] = "1h",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated model names; NAME_global pools gbm/classifier models.")
    ] = (
        "persistence,drift,moving_average,lightgbm"
    ),
    train_end: Annotated[
        str | None, typer.Option("--train-end", help="Last time any model may see (ISO 8601, UTC).")
    ] = None,
    test_end: TestEnd = None,
    retrain_every: RetrainEvery = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; a fixed seed reproduces the run.")] = 0,
    level: Annotated[float, typer.Option("--level", help="Nominal coverage of the intervals.")] = 0.9,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel processes.")] = 2,
    fee_bps: Annotated[
        float, typer.Option("--fee-bps", help="Fee per trade of the after-cost scores, basis points.")
    ] = 10.0,
    slippage_bps: Annotated[
        float, typer.Option("--slippage-bps", help="Slippage per trade of the after-cost scores, basis points.")
    ] = 5.0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report (one record per symbol and model).")
    ] = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Write every forecast to this parquet file.")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Keep fitted window models here and reuse them.")
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register", help="Register each (symbol, model)'s last-window model, promotable as is."),
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the model registry lives (default: ./data).")
    ] = None,
    list_models: Annotated[bool, typer.Option("--list-models", help="List the model names and exit.")] = False,
) -> None:
    """Walk-forward evaluation against persistence, with calibrated intervals.

    With --register the model each (symbol, model) ended with is added to the registry with the
    report's metrics, so `coincast models promote ID` puts exactly the evaluated model live.

    Example: coincast evaluate --data klines_1h.parquet --symbols BTCUSDT,ETHUSDT --horizon 1h
    --models lightgbm,lstm --train-end 2023-06-30T23:00:00Z --json report.json --predictions preds.parquet
    """
    from coincast.train.registry import MODELS

    if list_models:
        for spec in MODELS.values():
            typer.echo(f"{spec.name:<20} {spec.family:<11} {spec.description}")
        return
    if data is None or train_end is None:
        raise InvalidRequest("evaluate needs --data and --train-end (or --list-models)")
    from tqdm import tqdm

    from coincast.evaluate.run import run_evaluation, write_report

    settings = None
    if register:
        from coincast.settings import load_settings

        settings = load_settings(data_dir=data_dir)
        cache_dir = cache_dir or settings.data_dir / "cache" / "walk_forward"

    bar: list[tqdm[None]] = []

    def plan(total: int) -> None:
        bar.append(tqdm(total=total, desc="walk-forward", unit="task", dynamic_ncols=True))

    def tick(symbol: str, model: str) -> None:
        bar[0].set_postfix_str(f"{symbol} {model}")
        bar[0].update(1)

    try:
        result = run_evaluation(
            data,
            symbols.split(","),
            horizon,
            models,
            train_end=train_end,
            test_end=test_end,
            retrain_every=retrain_every,
            seed=seed,
            level=level,
            n_jobs=jobs,
            fee_bps=fee_bps,
            slippage_bps=slippage_bps,
            cache_dir=cache_dir,
            progress=tick,
            on_plan=plan,
        )
    finally:
        for b in bar:
            b.close()
    write_report(result, json_out, predictions)
    board = result.leaderboard
    cols = ["horizon", "model", "mase", "directional_accuracy", "beats_persistence_mae", "beats_persistence_mse",
            "strategy_return", "buy_and_hold_return", "strategy_sharpe", "strategy_max_drawdown",
            "strategy_turnover", "break_even_bps", "pinball_pct", "coverage_50", "coverage_80", "coverage_90",
            "coverage_95", "n"]
    typer.echo(board[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"after-cost scores: long/short on the forecast's sign at {fee_bps:g} bp fee + {slippage_bps:g} bp "
               "slippage per trade; beats_* count coins with a one-sided DM p < 0.05 on that loss")
    from coincast.evaluate.pooled import compare_scopes

    scopes = compare_scopes(board)
    if not scopes.empty:
        typer.echo("global (pooled over the coins) against per-coin, by MASE:")
        typer.echo(scopes.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"features: {result.features}; {len(result.predictions)} forecasts")
    if settings is not None:
        from coincast.domain import Interval
        from coincast.jobs.evaluated import register_evaluated
        from coincast.registry.files import FileModelRegistry

        versions = register_evaluated(
            result, FileModelRegistry(settings.data_dir / "models"), horizon=Interval.parse(horizon), level=level,
            seed=seed, expiry_ms=settings.models.expiry_ms,
        )
        for v in versions:
            typer.echo(f"registered {v.id}  (mase {v.metrics.get('mase', float('nan')):.4f})")
        typer.echo("promote one with: coincast models promote ID")


def evaluate_vol(
    data: Annotated[Path, typer.Option("--data", help="Hourly klines parquet (schema of klines_1h.parquet).")],
    train_end: Annotated[str, typer.Option("--train-end", help="Last time any model may see (ISO 8601, UTC).")],
    symbols: Annotated[str, typer.Option("--symbols", help="Comma-separated symbols.")] = "BTCUSDT",
    horizon: Annotated[str, typer.Option("--horizon", help="1h or 1d.")] = "1h",
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated: naive, har, garch, gjr_garch, lightgbm_vol.")
    ] = "har,garch,gjr_garch,lightgbm_vol",
    test_end: TestEnd = None,
    retrain_every: RetrainEvery = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write one record per symbol and model.")] = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Write every variance forecast to this parquet file.")
    ] = None,
) -> None:
    """Walk-forward forecasts of realised volatility, scored against the naive forecast (QLIKE, MSE, DM).

    Example: coincast evaluate-vol --data klines_1h.parquet --symbols BTCUSDT,ETHUSDT --horizon 1d
    --train-end 2023-03-31T23:00:00Z --json vol.json
    """
    import json

    from tqdm import tqdm

    from coincast.domain import Interval, InvalidTimeRange
    from coincast.evaluate.run import load_klines, parse_duration_ms, parse_time_ms
    from coincast.evaluate.volatility import evaluate_vol as run_vol
    from coincast.evaluate.volatility import vol_leaderboard, vol_records
    from coincast.evaluate.walk_forward import default_retrain_ms
    from coincast.train.frames import to_open_ms

    hz = Interval.parse(horizon)
    klines = load_klines(data, symbols.split(","))
    times = to_open_ms(klines["open_time"])
    train_end_ms = parse_time_ms(train_end, "--train-end")
    test_end_ms = parse_time_ms(test_end, "--test-end") if test_end else int(times.max())
    if not int(times.min()) < train_end_ms < test_end_ms:
        raise InvalidTimeRange(f"--train-end {train_end} must fall inside the data and before --test-end")
    klines = klines[times.to_numpy() <= test_end_ms]
    names = [m.strip() for m in models.split(",") if m.strip()]
    n_symbols = klines["symbol"].nunique()
    with tqdm(total=n_symbols * len({"naive", *names}), desc="volatility walk-forward", unit="task") as bar:

        def tick(symbol: str, model: str) -> None:
            bar.set_postfix_str(f"{symbol} {model}")
            bar.update(1)

        preds = run_vol(
            klines, names, hz, train_end_ms=train_end_ms, test_end_ms=test_end_ms,
            retrain_every_ms=parse_duration_ms(retrain_every) if retrain_every else default_retrain_ms(hz),
            progress=tick,
        )
    records = vol_records(preds)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(records, indent=2) + "\n")
    if predictions is not None:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        preds.to_parquet(predictions, index=False)
    board = vol_leaderboard(records)
    typer.echo(board.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo("QLIKE and MSE of the realised variance (Garman-Klass, summed over the horizon's hours); ratios "
               "below 1 beat the naive forecast; beats_* count coins with a one-sided DM p < 0.05")


def tune(
    data: Annotated[Path, typer.Option("--data", help="Klines parquet (schema of klines_1h.parquet).")],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol to tune on, e.g. BTCUSDT.")],
    model: Annotated[str, typer.Option("--model", help="Model name (see coincast evaluate --list-models).")],
    horizon: Annotated[str, typer.Option("--horizon", help="Forecast horizon: 1h or 1d.")] = "1h",
    trials: Annotated[int, typer.Option("--trials", help="Number of Optuna trials to add to the study.")] = 20,
    train_end: Annotated[
        str | None,
        typer.Option("--train-end", help="End of the tuning data; later data is never used (default: 80 %)."),
    ] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the SQLite study is stored.")] = Path("data"),
    seed: Annotated[int, typer.Option("--seed", help="Sampler seed.")] = 0,
    fold_days: Annotated[
        int | None,
        typer.Option("--fold-days", help="Length of each of the 3 validation blocks (14 for 1h, 60 for 1d)."),
    ] = None,
) -> None:
    """Tune one model's hyper-parameters with Optuna (TPE, median pruning), resumable.

    Example: coincast tune --data klines_1h.parquet --symbol BTCUSDT --horizon 1h --model lstm --trials 20
    """
    from coincast.train.tune import run_tuning

    result = run_tuning(
        data,
        symbol,
        horizon,
        model,
        trials=trials,
        train_end=train_end,
        data_dir=data_dir,
        seed=seed,
        fold_days=fold_days,
    )
    typer.echo(f"study {result.study_name} in {result.storage}: {result.n_trials} trials")
    typer.echo(f"best validation loss {result.best_value:.6g} with {result.best_params}")
