"""The ``auto`` source's probe: is Binance's REST API reachable right now?

``coincast up`` (``--source auto``, the default) streams from Binance when this answers within a
few seconds and otherwise runs the simulator, saying so in ``/health`` and on the dashboard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from coincast.domain import Clock, ConfigError
from coincast.sources.base import DeadLetterSink, Source

if TYPE_CHECKING:
    from coincast.settings import Settings
    from coincast.store.base import CandleStore


@dataclass(frozen=True, slots=True)
class Probe:
    """The answer and, when negative, why (shown to the user)."""

    reachable: bool
    detail: str


async def probe_binance(rest_url: str, timeout_s: float = 3.0) -> Probe:
    """GET ``<rest_url>/api/v3/ping`` with an overall deadline of ``timeout_s``; never raises."""
    url = rest_url.rstrip("/") + "/api/v3/ping"
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.get(url)
    except TimeoutError:
        return Probe(False, f"{url}: no answer within {timeout_s:g} s")
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return Probe(False, f"{url}: {type(exc).__name__}: {exc}")
    if resp.status_code != 200:
        return Probe(False, f"{url}: HTTP {resp.status_code}")
    return Probe(True, f"{url}: ok")


async def binance_reachable(rest_url: str, timeout_s: float = 3.0) -> bool:
    """True when Binance's REST ping answers 200 within ``timeout_s`` seconds."""
    return (await probe_binance(rest_url, timeout_s)).reachable


# -- factories with wiring's SourceFactory signature: (settings, dead_letters, clock, store) ------


async def open_binance(
    settings: Settings, dead_letters: DeadLetterSink, clock: Clock, store: CandleStore | None = None
) -> Source:
    """The live Binance source for ``settings.symbols`` at ``settings.binance`` URLs."""
    try:
        from coincast.sources.binance import BinanceSource
    except ImportError as exc:  # tenacity comes with the extra
        raise ConfigError(f"source 'binance' needs the ingest extra: pip install 'coincast[ingest]' ({exc})") from exc

    from coincast.sources.binance import BinanceOptions
    from coincast.sources.binance.repair import RepairOptions

    b = settings.binance
    options = BinanceOptions(stale_after_s=b.stale_after_s, repair=RepairOptions(give_up_s=b.repair_give_up_s))
    return BinanceSource.from_urls(b.ws_url, b.rest_url, settings.symbols, dead_letters=dead_letters, clock=clock,
                                   options=options)


async def open_replay(
    settings: Settings, dead_letters: DeadLetterSink, clock: Clock, store: CandleStore | None = None
) -> Source:
    """Replay ``settings.source.replay_file`` at ``settings.source.replay_speed``.

    Raises:
        ConfigError: no file given.
        InvalidRequest: unreadable file or unknown layout.
    """
    from coincast.sources.replay import ReplaySource

    path = settings.source.replay_file
    if path is None:
        raise ConfigError("source 'replay' needs a file: --file PATH (or source.replay_file)")
    return ReplaySource(path, settings.source.replay_speed, dead_letters=dead_letters, clock=clock)


SourceFactory = Callable[["Settings", DeadLetterSink, Clock, "CandleStore | None"], Awaitable[Source]]


def auto_factory(fallback: SourceFactory) -> SourceFactory:
    """``auto``: Binance when its REST ping answers within ``binance.probe_timeout_s``, else
    ``fallback`` (the simulator) marked ``health.simulated`` with the reason in
    ``health.detail['auto']``, so ``/health`` and the dashboard say which market is shown."""

    async def open_auto(
        settings: Settings, dead_letters: DeadLetterSink, clock: Clock, store: CandleStore | None = None
    ) -> Source:
        probe = await probe_binance(settings.binance.rest_url, settings.binance.probe_timeout_s)
        why = f"Binance unreachable ({probe.detail})"
        if probe.reachable:
            try:
                source = await open_binance(settings, dead_letters, clock, store)
            except ConfigError as exc:
                why = str(exc)
            else:
                source.health.detail["auto"] = f"live Binance market ({probe.detail})"
                return source
        source = await fallback(settings, dead_letters, clock, store)
        source.health.simulated = True
        source.health.detail["auto"] = f"simulated market: {why}"
        return source

    return open_auto
