"""The scaled-out roles: ``ingest``, ``process`` and ``serve`` as separate processes around a broker.

    ingest  source -> bus "trades" (each batch stamped with the source's watermark; a heartbeat
            per quiet symbol every tick so its candles still close)
    process bus "trades" -> candle fold -> store (PostgreSQL or DuckDB) and bus "candles"
    serve   store + bus "candles" -> live state and WebSocket fan-out -> API and dashboard

Run several ``serve`` processes behind a load balancer: each reads "candles" with its own group.
Embedded mode (``coincast up``) runs the same pieces in one process without the broker hops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from prometheus_client import start_http_server

from coincast.api.app import Services
from coincast.api.ws import Hub
from coincast.bus.base import TOPIC_CANDLES, TOPIC_TRADES, Bus
from coincast.domain import Candle, Clock, ConfigError, SystemClock
from coincast.settings import Settings
from coincast.sources.base import SourceHealth
from coincast.stream.board import IndicatorBoard
from coincast.stream.candles import CandleAggregator, CandleUpdate
from coincast.stream.live import LiveState
from coincast.stream.processor import StreamProcessor
from coincast.stream.pump import SourcePump
from coincast.stream.writer import DeadLetterWriter, StoreWriter
from coincast.wiring import open_bus, open_source, open_store, redact, restore_fold

log = logging.getLogger(__name__)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` for a role without an API server (0 = none) on ``host`` (``api.host``)."""
    if port:
        start_http_server(port, addr=host)


async def run_ingest(settings: Settings, stop: asyncio.Event, clock: Clock | None = None) -> None:
    """Source -> bus, until ``stop`` is set or the source ends."""
    clock = clock or SystemClock()
    store = open_store(settings.store_url)
    dead = DeadLetterWriter(store)
    bus = open_bus(settings)
    source = await open_source(settings, dead, clock, store)
    pump = SourcePump(source, bus, settings.symbols, clock, settings.stream.tick_ms)

    async def flush_dead_letters() -> None:
        while True:
            await asyncio.sleep(1.0)
            await dead.flush()

    log.info("ingest started", extra={"source": source.name, "bus": redact(settings.bus.url)})
    await _run_until(stop, pump.run(), flush_dead_letters())
    await source.close()
    await bus.close()
    await dead.flush()
    await store.close()
    log.info("ingest stopped")


class BusFanout:
    """Live candle updates through the bus's "candles" topic (each serve worker its own group)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, candles: Sequence[Candle]) -> None:
        by_symbol: dict[str, list[Candle]] = {}
        for c in candles:
            by_symbol.setdefault(c.symbol, []).append(c)
        for sym, items in by_symbol.items():
            await self._bus.publish(TOPIC_CANDLES, sym, items)

    async def latest(self) -> list[Candle]:
        return []  # a broker topic is read from the group's offset; nothing to warm up from

    async def subscribe(self) -> AsyncIterator[list[Candle]]:
        async for items in self._bus.subscribe(TOPIC_CANDLES, f"coincast-serve-{uuid.uuid4().hex[:8]}"):
            yield [c for item in items if isinstance(item, list) for c in item]

    async def close(self) -> None:
        return None


class CandleFanout(Protocol):
    """How live candles reach the serve workers: the bus, or Redis pub/sub (``cache.url``)."""

    async def publish(self, candles: Sequence[Candle]) -> None: ...

    async def latest(self) -> list[Candle]: ...

    def subscribe(self) -> AsyncIterator[list[Candle]]: ...

    async def close(self) -> None: ...


def open_fanout(settings: Settings, bus: Bus) -> CandleFanout:
    """Redis when ``cache.url`` is ``redis://…``, else the bus."""
    if settings.cache.url.startswith("redis"):
        try:
            from coincast.store.redis import RedisFanout
        except ImportError as exc:
            raise ConfigError("cache URL redis:// needs the redis extra: pip install 'coincast[redis]'") from exc
        return RedisFanout.from_url(settings.cache.url)
    return BusFanout(bus)


class CandlePublisher:
    """A candle sink that forwards updates to the fan-out: closed ones all, in-progress coalesced."""

    def __init__(self, fanout: CandleFanout, flush_ms: int = 250) -> None:
        self._fanout = fanout
        self._flush_s = flush_ms / 1000
        self._closed: list[Candle] = []
        self._live: dict[tuple[str, str], Candle] = {}

    def on_candles(self, updates: Sequence[CandleUpdate]) -> None:
        for u in updates:
            c = u.candle
            if c.closed:
                self._closed.append(c)
            else:
                self._live[(c.symbol, c.interval.value)] = c

    async def flush(self) -> None:
        closed, self._closed = self._closed, []
        live, self._live = self._live, {}
        await self._fanout.publish([*closed, *live.values()])

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()


async def run_process(settings: Settings, stop: asyncio.Event) -> None:
    """Bus "trades" -> candles -> store and bus "candles", until ``stop`` is set."""
    store = open_store(settings.store_url)
    bus = open_bus(settings)
    aggregator = CandleAggregator(settings.stream.intervals, settings.stream.grace_ms)
    await restore_fold(aggregator, store, settings.symbols)
    writer = StoreWriter(store, settings.store.flush_ms, fold_state=aggregator.fold_state)
    fanout = open_fanout(settings, bus)
    publisher = CandlePublisher(fanout)
    processor = StreamProcessor(aggregator, bus.subscribe(TOPIC_TRADES, "coincast-process"), None,
                                [writer, publisher], tick_ms=settings.stream.tick_ms)
    writer.start()
    log.info("process started", extra={"bus": redact(settings.bus.url), "store": redact(settings.store_url)})
    await _run_until(stop, processor.run(), publisher.run())
    await publisher.flush()
    await fanout.close()
    await bus.close()
    await writer.stop()
    await store.close()
    log.info("process stopped", extra={"candles_written": writer.written})


class ServeRole:
    """Store + bus "candles" -> live state and hub, for the API of a ``serve`` process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def start(self) -> Services:
        s = self.settings
        self.store = open_store(s.store_url)
        self.bus = open_bus(s)
        base = min(s.stream.intervals, key=lambda i: i.ms)
        self.live = LiveState(base)
        self.board = IndicatorBoard()
        self.hub = Hub(s.symbols, s.stream.intervals, lambda: [t.as_dict() for t in self.live.tickers(s.symbols)])
        self.fanout = open_fanout(s, self.bus)
        via = redact(s.cache.url) if s.cache.url.startswith("redis") else redact(s.bus.url)
        self.health = SourceHealth(name="bus", connected=True, detail={"live_candles_from": via})
        self._apply(await self.fanout.latest())
        self._task = asyncio.create_task(self._follow(self.fanout.subscribe()), name="serve-follow")
        self.hub.start()
        return Services(s, self.store, self.live, self.hub, self.health, board=self.board)

    async def _follow(self, sub: AsyncIterator[list[Candle]]) -> None:
        clock = SystemClock()
        async for candles in sub:
            self._apply(candles)
            self.health.messages += len(candles)
            self.health.last_message_ms = clock.now_ms()

    def _apply(self, candles: Sequence[Candle]) -> None:
        updates = [CandleUpdate(c) for c in candles]
        self.live.on_candles(updates)
        self.board.on_candles(updates)
        self.hub.on_candles(updates)

    def failed(self) -> BaseException | None:
        t = self._task
        return t.exception() if t.done() and not t.cancelled() else None

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.hub.stop()
        await self.fanout.close()
        await self.bus.close()
        await self.store.close()


async def _run_until(stop: asyncio.Event, *jobs: object) -> None:
    """Run coroutines until ``stop`` is set or one of them ends; re-raise a job's error."""
    tasks = [asyncio.ensure_future(j) for j in jobs]  # type: ignore[call-overload]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for t in [*tasks, stopper]:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    for t in done:
        if t is not stopper and not t.cancelled() and t.exception() is not None:
            raise t.exception()
