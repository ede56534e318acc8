"""``coincast train`` (a walk-forward validated fit with a progress bar) and ``coincast models list|show|promote``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from coincast.domain import ConfigError, InvalidRequest

models_app = typer.Typer(
    help="The model registry: list, show and promote trained models.\n\n"
    "Example: coincast models list --symbol BTCUSDT; coincast models promote <id>",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where models live (<data-dir>/models) (default: ./data)")
]


def register(app: typer.Typer) -> None:
    """Add ``train`` and the ``models`` group to the coincast CLI."""
    app.command("train")(train)
    app.add_typer(models_app, name="models")


def _registry(data_dir: Path | None) -> Any:
    from coincast.registry.files import FileModelRegistry
    from coincast.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    return settings, FileModelRegistry(settings.data_dir / "models")


def _iso(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def train(
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol, e.g. BTCUSDT.")] = "BTCUSDT",
    horizon: Annotated[str, typer.Option("--horizon", help="Forecast horizon, e.g. 1h or 1d.")] = "1h",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Zoo name (coincast evaluate --list-models). (default: the configured model for the horizon)",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Klines parquet (schema of klines_1h.parquet). (default: COINCAST_MODELS__TRAIN_DATA)"
        ),
    ] = None,
    params: Annotated[
        str, typer.Option("--params", help="Hyper-parameters as JSON, e.g. '{\"num_leaves\": 31}'.")
    ] = "{}",
    train_start: Annotated[str | None, typer.Option("--train-start", help="First bar to use (ISO 8601, UTC).")] = None,
    train_end: Annotated[str | None, typer.Option("--train-end", help="Last bar any fit may see (ISO 8601).")] = None,
    folds: Annotated[int | None, typer.Option("--folds", help="Walk-forward validation windows (default: 4)")] = None,
    promote: Annotated[
        str, typer.Option("--promote", help="never, always, or if_better (beats the live model on the latest window).")
    ] = "never",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    level: Annotated[float, typer.Option("--level", help="Nominal interval coverage.")] = 0.9,
    pipeline: Annotated[
        bool,
        typer.Option("--pipeline-features/--core-features", help="Add the batch-layer indicator features."),
    ] = False,
    lake: Annotated[
        str | None, typer.Option("--lake", help="Read the klines from this history lake instead of --data.")
    ] = None,
    interval: Annotated[str, typer.Option("--interval", help="Candle interval to read from --lake.")] = "1h",
    data_dir: DataDir = None,
) -> None:
    """Train a model, validate it walk-forward and register it (promote with `coincast models promote`).

    The newest windows of the data are each forecast by a model fitted before them; the model
    registered is that walk-forward's next-window model, fitted on everything, with its metrics.

    Example: coincast train --data klines_1h.parquet --symbol BTCUSDT --horizon 1h --model lightgbm
    """
    from tqdm import tqdm

    from coincast.domain import Interval
    from coincast.evaluate.run import parse_time_ms
    from coincast.jobs.data import read_klines
    from coincast.jobs.train import TrainRequest, train_model

    settings, registry = _registry(data_dir)
    path = data or settings.models.train_data
    if path is None and lake is None:
        raise ConfigError("coincast train needs --data PATH.parquet, --lake URL or COINCAST_MODELS__TRAIN_DATA")
    if promote not in ("never", "always", "if_better"):
        raise InvalidRequest(f"--promote {promote!r}: expected never, always or if_better")
    try:
        hyper = json.loads(params)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--params is not JSON: {exc}") from None
    if not isinstance(hyper, dict):
        raise InvalidRequest("--params must be a JSON object")
    hz = Interval.parse(horizon)
    request = TrainRequest(
        symbol.strip().upper(),
        hz,
        model or settings.models.default_models.get(hz.value, "lightgbm"),
        params=hyper,
        folds=folds or settings.models.validation_folds,
        seed=seed,
        level=level,
        promote=promote,  # type: ignore[arg-type]
        train_start_ms=parse_time_ms(train_start, "--train-start") if train_start else None,
        train_end_ms=parse_time_ms(train_end, "--train-end") if train_end else None,
        expiry_ms=settings.models.expiry_ms,
        feature_set="core+pipeline" if pipeline else "core",
    )
    if path is not None:
        klines = read_klines(path, request.symbol)
    else:
        from coincast.lake.parquet import open_lake

        assert lake is not None
        frame = open_lake(lake).read([request.symbol], Interval.parse(interval))
        if frame.height == 0:
            raise InvalidRequest(f"no {request.symbol} {interval} klines in the lake {lake!r}; run coincast backfill")
        klines = frame.to_pandas()
    bar = tqdm(
        total=100.0,
        desc=f"train {request.model} {request.symbol} {hz.value}",
        unit="%",
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}% [{elapsed}<{remaining}{postfix}]",
    )
    done: dict[str, Any] = {}

    def emit(event: str, fields: dict[str, Any]) -> None:
        if event == "epoch":
            bar.set_postfix_str(
                f"{fields['stage']} loss={fields['loss'] or float('nan'):.4f} "
                f"val_loss={fields['val_loss'] if fields['val_loss'] is not None else float('nan'):.4f}"
            )
            bar.update(fields["progress"] - bar.n)
        elif event == "done":
            done.update(fields)

    try:
        result = train_model(request, klines, registry, emit)
    finally:
        bar.close()
    m = result.metrics
    typer.echo(f"registered {result.version.id}")
    typer.echo(
        f"walk-forward ({m['windows']} windows, {m['n']} forecasts): mase={_f(m['mase'])} mae={_f(m['mae'])} "
        f"direction={_f(m['directional_accuracy'])} coverage={_f(m['interval_coverage'])} "
        f"(nominal {m['interval_nominal']})"
    )
    if result.decision is not None:
        typer.echo(f"promotion: {result.decision['reason']}")
    typer.echo(
        "live now" if result.promoted else f"not live; promote with: coincast models promote {result.version.id}"
    )


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


@models_app.command("list")
def list_models(
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    horizon: Annotated[str | None, typer.Option("--horizon", help="Only this horizon.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List registered models, newest last; `*` marks the live one of each symbol and horizon.

    Example: coincast models list --symbol BTCUSDT --horizon 1h
    """
    from coincast.domain import SystemClock

    _, registry = _registry(data_dir)
    live = set(registry.live().values())
    now = SystemClock().now_ms()
    versions = registry.list(symbol.upper() if symbol else None, horizon)
    if not versions:
        typer.echo("no models registered; train one with: coincast train --data PATH.parquet --symbol BTCUSDT")
        return
    typer.echo(f"  {'id':<52} {'model':<16} {'age':>8} {'expires':<21} {'mase':>7} {'coverage':>8}")
    for v in versions:
        age_h = v.age_ms(now) / 3_600_000
        expired = " (expired)" if v.expired(now) else ""
        typer.echo(
            f"{'*' if v.id in live else ' '} {v.id:<52} {v.model:<16} {age_h:>7.1f}h "
            f"{_iso(v.expires_ms) + expired:<21} "
            f"{_f(v.metrics.get('mase')):>7} {_f(v.metrics.get('interval_coverage')):>8}"
        )


@models_app.command("show")
def show(
    model_id: Annotated[str, typer.Argument(help="A model id from `coincast models list`.")], data_dir: DataDir = None
) -> None:
    """Show everything recorded about one model as JSON.

    Example: coincast models show BTCUSDT-1h-lightgbm-20240101T000000Z-1a2b3c
    """
    _, registry = _registry(data_dir)
    v = registry.get(model_id)
    out = v.to_dict()
    out["live"] = registry.live().get(f"{v.symbol}/{v.horizon}") == v.id
    out["promoted_ms"] = registry.promoted_ms(v.id)
    typer.echo(json.dumps(out, indent=2))


@models_app.command("promote")
def promote_cmd(
    model_id: Annotated[str, typer.Argument(help="A model id from `coincast models list`.")], data_dir: DataDir = None
) -> None:
    """Make a model live for its symbol and horizon, without retraining; a running `coincast up` picks it up.

    Example: coincast models promote BTCUSDT-1h-lightgbm-20240101T000000Z-1a2b3c
    """
    _, registry = _registry(data_dir)
    v = registry.promote(model_id)
    typer.echo(f"{v.id} is live for {v.symbol} {v.horizon}")
