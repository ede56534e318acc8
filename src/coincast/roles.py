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
import dataclasses
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from coincast.api.app import Services
from coincast.api.ws import Hub
from coincast.bus.base import TOPIC_CANDLES, TOPIC_TRADES, Bus
from coincast.domain import (
    Candle,
    Clock,
    CoincastError,
    ConfigError,
    FoldState,
    SystemClock,
    TradeBatch,
    TransientError,
)
from coincast.settings import Settings
from coincast.sources.base import SourceHealth
from coincast.store.base import CandleStore
from coincast.stream.board import IndicatorBoard
from coincast.stream.candles import CandleAggregator, CandleUpdate
from coincast.stream.live import LiveState
from coincast.stream.processor import StreamProcessor
from coincast.stream.pump import SourcePump
from coincast.stream.writer import DeadLetterWriter, StoreWriter
from coincast.wiring import open_bus, open_source, open_store, redact

log = logging.getLogger(__name__)


class RoleStatus:
    """What ``/health`` of an ``ingest`` or ``process`` role says: uptime, the bus position and
    lag, the last commit, rebalances, producer resets, source reconnects, store write failures.

    Served with ``/metrics`` on the role's metrics port by :func:`serve_role_http`.
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self.started_ms = SystemClock().now_ms()
        self.parts: dict[str, Callable[[], dict[str, object]]] = {}

    def add(self, name: str, part: Callable[[], dict[str, object]]) -> None:
        self.parts[name] = part

    def as_dict(self) -> dict[str, object]:
        now = SystemClock().now_ms()
        uptime_s = round((now - self.started_ms) / 1000, 1)
        out: dict[str, object] = {"role": self.role, "status": "ok", "uptime_s": uptime_s}
        for name, part in self.parts.items():
            out[name] = part()
        return out


async def serve_role_http(status: RoleStatus, port: int, host: str = "127.0.0.1") -> None:
    """``GET /health`` (JSON) and ``GET /metrics`` (Prometheus) for a role without an API (0 = none)."""
    if not port:
        await asyncio.Event().wait()
    import uvicorn
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(status.as_dict())

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the role owns SIGINT/SIGTERM
            yield

    app = Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])
    server = Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off"))
    try:
        await server.serve()
    except asyncio.CancelledError:
        server.should_exit = True
        raise


async def run_ingest(settings: Settings, stop: asyncio.Event, clock: Clock | None = None,
                     metrics_port: int = 0) -> None:
    """Source -> bus, until ``stop`` is set or the source ends."""
    clock = clock or SystemClock()
    store = open_store(settings.store_url)
    dead = DeadLetterWriter(store)
    bus = open_bus(settings)
    source = await open_source(settings, dead, clock, store)
    await _resume(source, bus, store)
    if hasattr(source, "rewind") and hasattr(bus, "on_reset"):
        bus.on_reset = lambda: _rewind(source, bus, store)
    pump = SourcePump(source, bus, settings.symbols, clock, settings.stream.tick_ms)

    async def flush_dead_letters() -> None:
        while True:
            await asyncio.sleep(1.0)
            await dead.flush()

    status = RoleStatus("ingest")
    status.add("source", lambda: dataclasses.asdict(source.health))
    status.add("bus", lambda: {"unacknowledged": getattr(bus, "unacknowledged", 0),
                               "producer_resets": getattr(bus, "producer_resets", 0)})
    log.info("ingest started", extra={"source": source.name, "bus": redact(settings.bus.url)})
    await _run_until(stop, pump.run(), flush_dead_letters(), serve_role_http(status, metrics_port, settings.api.host))
    await source.close()
    await bus.close()
    await dead.flush()
    await store.close()
    log.info("ingest stopped")


async def _kept(bus: Bus, store: CandleStore) -> tuple[dict[str, int], int]:
    """Per symbol, the last trade id that is safe downstream: on the broker, or already folded
    into the store by ``process`` (a broker killed before its data reached disk keeps less than
    it acknowledged); and the watermark to resume from."""
    last_ids, watermark = await bus.last_published(TOPIC_TRADES)  # type: ignore[attr-defined]
    fold = await store.load_fold()
    if fold is not None:
        for sym, folded in fold.max_trade_ids.items():
            last_ids[sym] = max(last_ids.get(sym, -1), folded)
        if not watermark and fold.watermarks_ms:
            watermark = min(fold.watermarks_ms.values())
    return last_ids, watermark


async def _resume(source: object, bus: Bus, store: CandleStore) -> None:
    """Continue every symbol after the last trade id already downstream (a restart after a
    crash), so the source refills the gap from REST instead of starting over or repeating."""
    seed = getattr(source, "seed", None)
    if not hasattr(bus, "last_published") or seed is None:
        return
    last_ids, watermark = await _kept(bus, store)
    seed(last_ids, watermark)
    if last_ids:
        log.info("ingest resumes after the last published trades", extra={"last_ids": last_ids})


async def _rewind(source: object, bus: Bus, store: CandleStore) -> bool:
    """After a broker restart: read back what the broker kept and make the source send the rest
    again. Retried with backoff while the broker is still coming up; False after a minute (the
    bus then resends what it has not seen acknowledged)."""
    delay = 0.5
    for _ in range(12):
        try:
            last_ids, watermark = await _kept(bus, store)
        except CoincastError as exc:
            log.warning("broker not readable yet, retrying: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        source.rewind(last_ids, watermark)  # type: ignore[attr-defined]
        return True
    return False


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
        self.failures = 0

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
        try:
            await self._fanout.publish([*closed, *live.values()])
        except TransientError as exc:  # Redis or the broker restarting: closed candles go out later
            self._closed[:0] = closed[-10_000:]
            self.failures += 1
            log.warning("live candle fan-out failed, will retry: %s", exc)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()


async def run_process(settings: Settings, stop: asyncio.Event, metrics_port: int = 0) -> None:
    """Bus "trades" -> candles -> store and bus "candles", until ``stop`` is set.

    Several instances share the trade partitions (one consumer group). Each restores a symbol's
    fold state from the store when the symbol's first batch reaches it, and before a rebalance
    takes a partition away it stores and commits, then forgets the partition's symbols.
    """
    store = open_store(settings.store_url)
    bus = open_bus(settings)
    aggregator = CandleAggregator(settings.stream.intervals, settings.stream.grace_ms)
    instance = settings.bus.instance_id or _instance_slot(settings.data_dir, "process")
    sub = _durable_subscription(bus, instance)
    dead = DeadLetterWriter(store)
    writer = StoreWriter(store, settings.store.flush_ms, dead, fold_state=aggregator.fold_state,
                         position=getattr(sub, "position", None), commit=getattr(sub, "commit", None))
    restorer = FoldRestorer(aggregator, store, writer)
    if hasattr(sub, "on_revoke"):
        sub.on_revoke = restorer.revoked
    fanout = open_fanout(settings, bus)
    publisher = CandlePublisher(fanout)
    processor = StreamProcessor(aggregator, restorer.wrap(sub), None, [writer, publisher],
                                tick_ms=settings.stream.tick_ms)
    writer.start()
    status = RoleStatus("process")
    status.add("instance", lambda: {"id": instance, "starts": _STARTS.get("process")})
    status.add("bus", lambda: {"lag": getattr(sub, "lag", None), "committed_ms": getattr(sub, "committed_ms", None),
                               "rebalances": getattr(sub, "rebalances", None),
                               "position": {f"{t}[{p}]": o for (t, p), o in getattr(sub, "position", dict)().items()}})
    status.add("fold", lambda: {"symbols": sorted(aggregator.symbols), "trades": aggregator.stats.trades,
                                "late_trades": aggregator.stats.late_trades,
                                "duplicate_trades": aggregator.stats.duplicate_trades,
                                "candles_written": writer.written, "store_write_failures": writer.failures})
    log.info("process started", extra={"bus": redact(settings.bus.url), "store": redact(settings.store_url)})
    try:
        await _run_until(stop, processor.run(), publisher.run(),
                         serve_role_http(status, metrics_port, settings.api.host))
    except BaseException as exc:
        log.error("process stopping on an error: %s: %s", type(exc).__name__, exc,
                  extra={"traceback": traceback.format_exc()[-3000:]})  # the CLI prints one line
        raise
    finally:  # always: flush what is folded, and close the clients (their tasks must not linger)
        with contextlib.suppress(Exception):
            await publisher.flush()
        with contextlib.suppress(Exception):
            await writer.stop()
        await fanout.close()
        await bus.close()
        await store.close()
    log.info("process stopped", extra={"candles_written": writer.written})


def _durable_subscription(bus: Bus, instance: str) -> AsyncIterator[list[object]]:
    """The trades subscription; on a broker, one that commits only what the store covers."""
    try:
        return bus.subscribe(TOPIC_TRADES, "coincast-process", durable=True, instance_id=instance)  # type: ignore[call-arg]
    except TypeError:  # a bus without offsets (in-process): nothing to commit
        return bus.subscribe(TOPIC_TRADES, "coincast-process")


_SLOTS: list[object] = []  # open lock files: a slot is held for the life of the process
_STARTS: dict[str, int] = {}  # role -> starts of the slot this process holds


def _instance_slot(data_dir: Path, role: str) -> str:
    """``<host>-<role>-<n>``, ``n`` the first slot no running instance holds (an exclusive file
    lock under ``<data_dir>/.instances``, released by the kernel when the process dies, even on
    ``kill -9``). A restarted instance takes the slot of the one that died, so it rejoins the
    consumer group under the same static member id and gets its partitions back at once."""
    import fcntl
    import socket

    folder = data_dir / ".instances"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1024):
            fh = (folder / f"{role}-{n}.lock").open("a")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            _SLOTS.append(fh)
            starts = folder / f"{role}-{n}.starts"  # how often this slot was (re)started: /health
            count = int(starts.read_text() or 0) + 1 if starts.exists() else 1
            starts.write_text(str(count))
            _STARTS[role] = count
            return f"{socket.gethostname()}-{role}-{n}"
    except OSError as exc:
        log.warning("no instance slot under %s (%s): joining the group as a dynamic member", folder, exc)
    return ""


class FoldRestorer:
    """Restores each symbol's fold state from the store on its first batch, and hands a revoked
    partition's symbols back (stored and committed first)."""

    def __init__(self, aggregator: CandleAggregator, store: CandleStore, writer: StoreWriter) -> None:
        self._aggregator = aggregator
        self._store = store
        self._writer = writer
        self.restored: set[str] = set()

    async def wrap(self, batches: AsyncIterator[list[object]]) -> AsyncIterator[list[object]]:
        async for items in batches:
            new = {b.symbol for b in items if isinstance(b, TradeBatch)} - self.restored
            if new:
                await self.restore(new)
            yield items

    async def restore(self, symbols: set[str]) -> None:
        """Load the symbols' stored fold state; a store that is down or slow is retried with
        backoff (nothing is folded or committed meanwhile)."""
        delay = 0.5
        while True:
            try:
                async with asyncio.timeout(20):
                    state = await self._store.load_fold(symbols)
                    last = [c for sym in sorted(symbols) for iv in self._aggregator.intervals
                            if (c := await self._store.latest(sym, iv)) is not None]
                break
            except (TransientError, TimeoutError) as exc:
                log.warning("fold state not readable, retrying: %s", exc or "timed out")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
        self._aggregator.drop(symbols)
        if state is not None or last:
            self._aggregator.restore(state or FoldState((), {}, {}), last)
        self.restored |= symbols
        log.info("fold restored", extra={"symbols": sorted(symbols)})

    async def revoked(self, symbols: set[str]) -> object:
        """Store everything, forget ``symbols``; returns the bus position the store now covers
        (the subscription commits it before the partitions go)."""
        await self._writer.flush(commit=False)
        self._aggregator.drop(symbols)
        self.restored -= symbols
        log.info("fold handed over", extra={"symbols": sorted(symbols)})
        return self._writer.stored_position


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
        self.hub = Hub(s.symbols, s.stream.intervals, lambda: [t.as_dict() for t in self.live.tickers(s.symbols)],
                       api=s.api)
        self.fanout = open_fanout(s, self.bus)
        via = redact(s.cache.url) if s.cache.url.startswith("redis") else redact(s.bus.url)
        self.health = SourceHealth(name="bus", connected=True, detail={"live_candles_from": via})
        self._apply(await self.fanout.latest())
        self._task = asyncio.create_task(self._follow(), name="serve-follow")
        self.hub.start()
        return Services(s, self.store, self.live, self.hub, self.health, board=self.board)

    async def _follow(self) -> None:
        """Apply live candles; a fan-out that fails (Redis or the broker restarting) is followed
        again after a backoff, warmed up from its latest values."""
        clock = SystemClock()
        delay = 0.5
        while True:
            try:
                async for candles in self.fanout.subscribe():
                    self._apply(candles)
                    self.health.messages += len(candles)
                    self.health.last_message_ms = clock.now_ms()
                    self.health.connected, delay = True, 0.5
                return
            except TransientError as exc:
                self.health.connected = False
                self.health.reconnects += 1
                self.health.last_error = str(exc)
                log.warning("live candles lost, following again: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)
            with contextlib.suppress(TransientError):
                self._apply(await self.fanout.latest())

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
