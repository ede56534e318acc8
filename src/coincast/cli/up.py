"""``coincast up``: the whole platform in one process (embedded mode)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer
import uvicorn

from coincast.domain import ConfigError
from coincast.settings import Settings, load_settings, prepare_data_dir

if TYPE_CHECKING:
    from coincast.api.app import Services

log = logging.getLogger("coincast.up")


def up(
    source: Annotated[str | None, typer.Option(
        help="Market data: auto (Binance if reachable, else the simulator), sim, binance, replay (default: auto)."
    )] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (0 = any free port) (default: 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: 127.0.0.1).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Store, lake and models (default: ./data).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated (default: 10 majors vs USDT).")] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed (default: 42).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Recorded trades or candles for --source replay.")] = None,
    speed: Annotated[float | None, typer.Option(help="Replay speed (0 = as fast as possible) (default: 60).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error (default: info).")] = None,
) -> None:
    """Run ingestion, stream processing, storage, the API and the dashboard in one process.

    Example: coincast up --source sim --port 8000 --data-dir ./data

    Settings also come from coincast.toml and COINCAST_* variables; flags win.

    Ctrl-C stops cleanly, writing every closed candle to the store.
    """
    settings = load_settings(
        source__kind=source, api__port=port, api__host=host, data_dir=data_dir, symbols=symbols,
        source__seed=seed, source__replay_file=file, source__replay_speed=speed, log_level=log_level,
    )
    prepare_data_dir(settings.data_dir)
    sock = listen(settings.api.host, settings.api.port)  # a port in use fails here, before anything starts
    from coincast.logs import configure_logging

    configure_logging(settings.log_level)
    from coincast.wiring import Runtime

    asyncio.run(serve(settings, Runtime(settings), sock))


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the HTTP server.

    Raises:
        ConfigError: the address is in use, not local, or not allowed.
    """
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}; check --host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {host}:{port}: {why}; choose another --port (0 = any free port)") from None
    sock.set_inheritable(True)
    return sock


class Served(Protocol):
    """What ``serve`` runs next to the HTTP server: the embedded runtime or the serve role."""

    async def start(self) -> Services: ...

    async def stop(self) -> None: ...

    def failed(self) -> BaseException | None: ...


async def serve(settings: Settings, runtime: Served, sock: socket.socket | None = None) -> None:
    """Start ``runtime`` and the HTTP server; stop both in order on SIGINT/SIGTERM.

    ``sock`` is the bound listening socket (see :func:`listen`); by default one is bound here,
    before the runtime starts.
    """
    from coincast.api.app import create_app

    sock = sock or listen(settings.api.host, settings.api.port)
    services = await runtime.start()
    from coincast.api.limits import RateLimits

    services.limits = limits = services.limits or RateLimits.from_settings(settings)
    config = uvicorn.Config(
        create_app(services), host=settings.api.host, port=settings.api.port, log_config=None,
        ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=3,
        ws_max_size=settings.api.ws_max_frame_bytes,
    )
    server = _server_class()(config)
    watchdog = asyncio.create_task(_watch(runtime, server))
    try:
        await server.serve(sockets=[sock])
    finally:
        watchdog.cancel()
        await limits.close()
        await runtime.stop()
    if (exc := runtime.failed()) is not None:
        raise exc


def _server_class() -> type[uvicorn.Server]:
    class Server(uvicorn.Server):
        """uvicorn's server, but a signal only asks it to stop: the runtime flushes afterwards and
        the process exits 0 (uvicorn itself re-raises the signal, killing the process before the
        store is flushed)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop_requested, sig)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

        def _stop_requested(self, sig: int) -> None:
            log.info("stopping", extra={"signal": signal.Signals(sig).name})
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

    return Server


async def _watch(runtime: Served, server: uvicorn.Server) -> None:
    """Stop the server if the pipeline dies, so the process does not serve stale data silently."""
    announced = False
    while True:
        await asyncio.sleep(0.5)
        if (exc := runtime.failed()) is not None:
            log.error("pipeline stopped: %s", exc)
            server.should_exit = True
            return
        if server.started and not announced:
            announced = True
            for s in server.servers:
                for sock in s.sockets:
                    host, port = sock.getsockname()[:2]
                    log.info("dashboard ready", extra={"url": f"http://{host}:{port}/"})


def register(app: typer.Typer) -> None:
    app.command()(up)
