"""``coincast ingest | process | serve``: the platform split into processes around a broker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from coincast.settings import Settings, load_settings

Bus = Annotated[str | None, typer.Option(help="Bus URL, e.g. kafka://127.0.0.1:9092 (default: memory://).")]
Store = Annotated[str | None, typer.Option(help="Store URL, e.g. postgresql://user@host/db (default: DuckDB).")]
DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: ./data).")]
Metrics = Annotated[int, typer.Option(help="Port for /health (JSON) and Prometheus /metrics on api.host (0 = off).")]


def _settings(**kw: object) -> Settings:
    settings = load_settings(**kw)
    from coincast.logs import configure_logging

    configure_logging(settings.log_level)
    return settings


def _run(job: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await job(stop)

    asyncio.run(main())


def ingest(
    bus: Bus = None, store: Store = None, data_dir: DataDir = None,
    source: Annotated[str | None, typer.Option(help="sim, binance, replay or auto (default: sim).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols.")] = None,
    metrics_port: Metrics = 0,
) -> None:
    """Read market data from a source and publish trade batches to the bus.

    Example: coincast ingest --source binance --bus kafka://127.0.0.1:9092 --metrics-port 9101
    """
    from coincast.roles import run_ingest

    s = _settings(bus__url=bus, store__url=store, data_dir=data_dir, source__kind=source, symbols=symbols)
    _run(lambda stop: run_ingest(s, stop, metrics_port=metrics_port))


def process(bus: Bus = None, store: Store = None, data_dir: DataDir = None, metrics_port: Metrics = 0) -> None:
    """Fold trades from the bus into candles; write them to the store and publish them to the bus.

    Example: coincast process --bus kafka://127.0.0.1:9092 --store postgresql://postgres@127.0.0.1/coincast
    """
    from coincast.roles import run_process

    s = _settings(bus__url=bus, store__url=store, data_dir=data_dir)
    _run(lambda stop: run_process(s, stop, metrics_port=metrics_port))


def serve(
    bus: Bus = None, store: Store = None, data_dir: DataDir = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: 127.0.0.1).")] = None,
) -> None:
    """Serve the API, WebSocket and dashboard from the store and the bus's live candles.

    Example: coincast serve --bus kafka://127.0.0.1:9092 --store postgresql://postgres@127.0.0.1/coincast
    """
    from coincast.cli.up import serve as serve_http
    from coincast.roles import ServeRole

    s = _settings(bus__url=bus, store__url=store, data_dir=data_dir, api__port=port, api__host=host)
    asyncio.run(serve_http(s, ServeRole(s)))


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(process)
    app.command()(serve)
