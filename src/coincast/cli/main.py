"""The ``coincast`` command: one Typer module per command group, registered here.

Each command module exposes ``register(app: typer.Typer) -> None``. Heavy libraries (torch,
pyspark, xgboost) are imported inside the command functions so ``coincast --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError  # Typer's vendored click

from coincast.domain import CoincastError, ConfigError

app = typer.Typer(
    name="coincast",
    help="Real-time crypto market analysis and honest price forecasting.\n\n"
    "Example: coincast up --source sim --port 8000",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring paragraphs rewrap; single newlines do not break lines
)

# One line per command module (add yours here; keep the order the data flow's).
COMMAND_MODULES: tuple[str, ...] = (
    "coincast.cli.up",
    "coincast.cli.roles",
    "coincast.cli.ingest",
    "coincast.cli.features",
    "coincast.cli.evaluate",
    "coincast.cli.models",
    "coincast.cli.backtest",
    "coincast.cli.ask",
)

_debug = False

# Optional libraries and the extra that installs them (`pip install 'coincast[EXTRA]'`).
EXTRA_OF_MODULE: dict[str, str] = {
    "statsmodels": "ml", "sklearn": "ml", "lightgbm": "ml", "xgboost": "ml", "catboost": "ml", "torch": "ml",
    "optuna": "ml", "arch": "ml", "threadpoolctl": "ml", "talib": "batch", "pyspark": "batch",
    "psycopg": "postgres", "psycopg_pool": "postgres", "confluent_kafka": "kafka", "redis": "redis",
    "feedparser": "assistant", "vaderSentiment": "assistant", "trafilatura": "assistant",
}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for coincast errors.")) -> None:
    global _debug
    _debug = debug


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """What to install for a missing optional library, or None when it is not one of coincast's extras."""
    extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
    if extra is None:
        return None
    return (f"this needs the '{extra}' extra (missing module {exc.name!r}): pip install 'coincast[{extra}]', "
            "or make up / make test, which install every extra")


def main() -> None:
    """Entry point: a CoincastError is one line and a non-zero exit (2 for configuration)."""
    _register()
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n here, not as SystemExit
    except CoincastError as exc:
        if _debug or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None or _debug or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except OSError as exc:  # a file or folder the user named cannot be used: say which, in one line
        if _debug or "--debug" in sys.argv or exc.strerror is None:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror}{where}", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except ClickException as exc:  # usage errors: unknown command or option, bad or missing value
        if isinstance(exc, NoArgsIsHelpError):
            typer.echo(exc.format_message())
        else:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)
