"""The ``coincast`` command: one Typer module per command group, registered here.

Each command module exposes ``register(app: typer.Typer) -> None``. Heavy libraries (torch,
pyspark, xgboost) are imported inside the command functions so ``coincast --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

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
)

_debug = False


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for coincast errors.")) -> None:
    global _debug
    _debug = debug


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


def main() -> None:
    """Entry point: a CoincastError is one line and a non-zero exit (2 for configuration)."""
    _register()
    try:
        app(standalone_mode=False)
    except CoincastError as exc:
        if _debug or "--debug" in sys.argv:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors come as ClickException
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
