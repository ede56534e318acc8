"""Settings -> concrete objects, and the start/stop order of the embedded runtime.

One table per role maps a URL scheme (or a source kind) to a factory. Optional clients are
imported inside the factory, so a missing extra is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from pydantic import SecretStr

from coincast.api.app import Services
from coincast.api.ws import Hub
from coincast.bus.base import TOPIC_TRADES, Bus
from coincast.domain import Clock, ConfigError, SystemClock
from coincast.jobs.service import ModelService
from coincast.settings import Settings
from coincast.sources.base import DeadLetterSink, Source
from coincast.store.base import CandleStore
from coincast.stream.board import IndicatorBoard
from coincast.stream.candles import CandleAggregator
from coincast.stream.live import DAY_MS, LiveState
from coincast.stream.processor import StreamProcessor
from coincast.stream.pump import SourcePump
from coincast.stream.writer import DeadLetterWriter, StoreWriter

if TYPE_CHECKING:
    from coincast.jobs.history import HistoryBackfill
    from coincast.sources.simulator import SimParams

log = logging.getLogger(__name__)

WARMUP = 300  # stored candles replayed into the live indicators at start-up (longest warm-up is ~100)


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


# -- stores ---------------------------------------------------------------------------------------

def _duckdb(url: SplitResult) -> CandleStore:
    from coincast.store.duckdb import DuckDBStore  # duckdb:///rel.db, duckdb:////abs.db

    return DuckDBStore.open(url.path.removeprefix("/") or ":memory:")


def _postgres(url: SplitResult) -> CandleStore:
    try:
        from coincast.store.postgres import PostgresStore  # optional extra: coincast[postgres]
    except ImportError as exc:
        raise ConfigError(f"store URL {redact(url.geturl())!r} needs the postgres extra: "
                          "pip install 'coincast[postgres]'") from exc
    schema = dict(p.split("=", 1) for p in url.query.split("&") if "=" in p).get("schema", "coincast")
    dsn = url._replace(scheme="postgresql", query="&".join(
        p for p in url.query.split("&") if p and not p.startswith("schema="))).geturl()
    return PostgresStore.from_url(dsn, schema)


STORES: dict[str, Callable[[SplitResult], CandleStore]] = {
    "duckdb": _duckdb, "postgresql": _postgres, "postgres": _postgres,
}


def open_store(dsn: str) -> CandleStore:
    """Open the serving store named by ``dsn``.

    Raises:
        ConfigError: unknown scheme, or the backend's extra is not installed.
    """
    url = urlsplit(dsn)
    if (factory := STORES.get(url.scheme)) is None:
        known = ", ".join(f"{s}://" for s in sorted(STORES))
        raise ConfigError(f"store URL {redact(dsn)!r}: unknown scheme {url.scheme!r}; use one of {known}")
    return factory(url)


# -- buses ----------------------------------------------------------------------------------------

def _memory_bus(url: SplitResult, settings: Settings) -> Bus:
    from coincast.bus.memory import MemoryBus

    return MemoryBus(settings.bus.queue_batches)


def _kafka_bus(url: SplitResult, settings: Settings) -> Bus:
    try:
        from coincast.bus.kafka import KafkaBus  # optional extra: coincast[kafka]
    except ImportError as exc:
        raise ConfigError("bus URL kafka:// needs the kafka extra: pip install 'coincast[kafka]'") from exc
    if not url.netloc:
        raise ConfigError(f"bus URL {settings.bus.url!r} names no broker; use kafka://host:9092[,host2:9092]")
    bus = KafkaBus(url.netloc)
    bus.ensure_topics(TOPIC_TRADES)
    return bus


BUSES: dict[str, Callable[[SplitResult, Settings], Bus]] = {"memory": _memory_bus, "kafka": _kafka_bus}


def open_bus(settings: Settings) -> Bus:
    url = urlsplit(settings.bus.url)
    if (factory := BUSES.get(url.scheme)) is None:
        known = ", ".join(f"{s}://" for s in sorted(BUSES))
        raise ConfigError(f"bus URL {redact(settings.bus.url)!r}: unknown scheme {url.scheme!r}; use one of {known}")
    return factory(url, settings)


# -- sources --------------------------------------------------------------------------------------

async def _sim(settings: Settings, dead_letters: DeadLetterSink, clock: Clock, store: CandleStore | None) -> Source:
    """The simulator, resumed where the store's candles end (same prices, no overlap).

    On a first start it begins ``source.sim_history_s`` in the past (trades folded at start-up),
    and symbols neither the store nor the lake has anything for get ``source.sim_history_days`` of
    candle history before that (:mod:`coincast.sources.sim_history`), so every page works from the
    first minute. A lake with real history for a symbol is never mixed with simulated candles.
    """
    from dataclasses import replace as _replace

    from coincast.sources.simulator import PROFILES, MarketSimulator, SimParams

    now = clock.now_ms()
    start = now - settings.source.sim_history_s * 1000
    start -= start % 60_000  # generated history ends on a minute
    profiles = dict(PROFILES)
    fresh: list[str] = []
    if store is not None:
        base = min(settings.stream.intervals, key=lambda i: i.ms)
        fold = await store.load_fold()
        for sym in settings.symbols:
            last = await store.latest(sym, base)
            live = [c for c in (fold.open_candles if fold else ()) if c.symbol == sym and c.interval == base]
            price = live[-1].close if live else last.close if last is not None else 0.0
            if price > 0:
                profiles[sym] = _replace(SimParams().profile(sym), price=price)
            if fold is not None and sym in fold.watermarks_ms:
                start = max(start, min(now, fold.watermarks_ms[sym]))  # trades before it are folded already
            elif last is not None:
                start = max(start, min(now, last.close_ms + 1))
            else:
                fresh.append(sym)
    params = SimParams(symbols=settings.symbols, seed=settings.source.seed, profiles=profiles)
    if fresh and settings.source.sim_history_days:
        from coincast.lake.parquet import open_lake

        real = set(open_lake(settings.lake_url).symbols())  # never mix simulated candles into a real history
        fresh = [sym for sym in fresh if sym not in real]
    if store is not None and fresh and settings.source.sim_history_days:
        await _seed_sim_history(settings, params, store, fresh, start - start % 60_000)
    return MarketSimulator(params, clock, start_ms=start)


async def _seed_sim_history(
    settings: Settings, params: SimParams, store: CandleStore, symbols: list[str], end_ms: int
) -> None:
    """Generate and store the candle history of ``symbols`` ending at ``end_ms`` (first start)."""
    import time

    from coincast.lake.parquet import open_lake
    from coincast.sources.sim_history import history_windows, seed_history, simulate_history
    t0 = time.perf_counter()
    windows = history_windows(settings.stream.intervals, settings.source.sim_history_days)
    history = await asyncio.to_thread(simulate_history, params, end_ms, windows)
    written = await seed_history(history, symbols, store, open_lake(settings.lake_url))
    log.info("generated simulated history", extra={
        "symbols": len(symbols), "candles": written, "days": settings.source.sim_history_days,
        "seconds": round(time.perf_counter() - t0, 1)})


SourceFactory = Callable[[Settings, DeadLetterSink, Clock, "CandleStore | None"], Awaitable[Source]]
def _sources() -> dict[str, SourceFactory]:
    from coincast.sources.auto import auto_factory, open_binance, open_replay

    return {"sim": _sim, "binance": open_binance, "replay": open_replay, "auto": auto_factory(_sim)}


SOURCES: dict[str, SourceFactory] = _sources()


async def open_source(
    settings: Settings, dead_letters: DeadLetterSink, clock: Clock, store: CandleStore | None = None
) -> Source:
    """The source named by ``settings.source.kind``; ``store`` lets a source resume where it stopped."""
    kind = settings.source.kind
    if (factory := SOURCES.get(kind)) is None:
        known = ", ".join(sorted(SOURCES))
        raise ConfigError(f"source {kind!r} is not available in this build; available: {known}")
    return await factory(settings, dead_letters, clock, store)


async def restore_fold(aggregator: CandleAggregator, store: CandleStore, symbols: tuple[str, ...]) -> None:
    """Continue the candle fold where the last run stopped (candles in progress, ids, watermarks)."""
    state = await store.load_fold()
    if state is None:
        return
    last = [c for sym in symbols for iv in aggregator.intervals if (c := await store.latest(sym, iv)) is not None]
    aggregator.restore(state, last)


def with_local_api_key(settings: Settings) -> Settings:
    """Settings whose API key is the configured one, else one kept in ``<data_dir>/api_key``.

    Training and promotion need a key. In embedded mode a missing one is generated once (like a
    notebook server's token), stored readable by the owner only and reused on every start, so the
    dashboard's Models page works on a fresh install: ``cat data/api_key``.
    """
    if settings.api.api_key is not None and settings.api.api_key.get_secret_value():
        return settings
    path = settings.data_dir / "api_key"
    if path.exists():
        key = path.read_text().strip()
    else:
        key = secrets.token_urlsafe(24)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
        log.info("generated an API key for training and promotion", extra={"file": str(path)})
    api = settings.api.model_copy(update={"api_key": SecretStr(key)})
    return settings.model_copy(update={"api": api})


# -- the embedded runtime -------------------------------------------------------------------------

@dataclass
class Runtime:
    """Everything ``coincast up`` runs in one process, started and stopped in order.

    Start: store -> bus -> processor (subscribed before the source starts) -> source pump.
    Stop: source -> bus drains -> processor -> writer flush -> store close.
    """

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    async def start(self) -> Services:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = s = with_local_api_key(self.settings)
        self.store = open_store(s.store_url)
        self.dead_letters = DeadLetterWriter(self.store)
        self.bus = open_bus(s)
        self.source = await open_source(s, self.dead_letters, self.clock, self.store)
        self.aggregator = CandleAggregator(s.stream.intervals, s.stream.grace_ms)
        await restore_fold(self.aggregator, self.store, s.symbols)
        base = self.aggregator.base
        self.live = LiveState(base)
        self.board = IndicatorBoard()
        await self._warm_live(base)
        self.hub = Hub(s.symbols, self.aggregator.intervals,
                       lambda: [t.as_dict() for t in self.live.tickers(s.symbols)], api=s.api)
        self.models = ModelService.build(s, self.store, self.hub.broadcast, self.clock)
        await self.models.start()  # live models loaded, bars warmed, before the first candle
        self.writer = StoreWriter(self.store, s.store.flush_ms, self.dead_letters, self.aggregator.fold_state)
        self.processor = StreamProcessor(
            self.aggregator, self.bus.subscribe(TOPIC_TRADES, "processor"), None,
            [self.writer, self.live, self.board, self.hub, self.models.predictor],
            tick_ms=s.stream.tick_ms, now_ms=self.clock.now_ms,
        )
        self.writer.start()
        self.hub.start()
        self.history = self._history()
        self._tasks = [
            asyncio.create_task(self.processor.run(), name="processor"),
            asyncio.create_task(SourcePump(self.source, self.bus, s.symbols, self.clock, s.stream.tick_ms).run(),
                                name="source-pump"),
        ]
        log.info("runtime started", extra={"source": self.source.name, "store": redact(s.store_url)})
        return Services(s, self.store, self.live, self.hub, self.source.health, self.processor,
                        dead_letters=self.dead_letters, models=self.models, board=self.board,
                        history=self.history.progress if self.history else None)

    def _history(self) -> HistoryBackfill | None:
        """On live Binance data, download the history the lake lacks in the background."""
        if self.source.name != "binance" or self.source.health.simulated:
            return None
        from coincast.jobs.history import HistoryBackfill
        from coincast.lake.parquet import open_lake
        from coincast.sources.binance.rest import BinanceRest

        s = self.settings
        self._rest = BinanceRest.from_url(s.binance.rest_url, clock=self.clock)
        job = HistoryBackfill(self._rest, open_lake(s.lake_url), self.store, s.symbols, s.stream.intervals,
                              self.clock)
        self._history_task = asyncio.create_task(job.run(), name="history-backfill")
        return job

    async def _warm_live(self, base: object) -> None:
        from coincast.domain import Interval

        assert isinstance(base, Interval)
        now = self.clock.now_ms()
        for sym in self.settings.symbols:
            rows = await self.store.history(sym, base, start_ms=now - DAY_MS, end_ms=now, limit=DAY_MS // base.ms)
            self.live.seed(rows)
            for iv in self.settings.stream.intervals:
                recent = rows[-WARMUP:] if iv == base else await self.store.history(
                    sym, iv, start_ms=0, end_ms=now, limit=WARMUP)
                self.board.seed(recent)

    def failed(self) -> BaseException | None:
        """The error of a pipeline task that stopped on its own (None while all run)."""
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                return t.exception()
        return None

    async def stop(self) -> None:
        if self.history is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._history_task
            await self._rest.close()
        proc, pump = self._tasks
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await self.source.close()
        await self.bus.close()  # the processor drains what is queued, then ends
        try:
            await asyncio.wait_for(proc, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            proc.cancel()
        except Exception:  # already reported by failed(); stopping goes on so the store is flushed
            log.exception("stream processor failed")
        await self.models.stop()
        await self.hub.stop()
        await self.writer.stop()
        await self.store.close()
        log.info("runtime stopped", extra={"candles_written": self.writer.written})
