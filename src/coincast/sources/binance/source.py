"""The live Binance source: WebSocket trades, REST gap repair, a watermark that waits for both.

Data path: frames -> :func:`wire.parse_message` -> per-symbol column buffers -> de-duplicated by
:class:`IdTracker` -> held back while a lower id is missing -> :class:`TradeBatch` on a bounded
queue -> :meth:`BinanceSource.events`.

**The watermark invariant.** :meth:`BinanceSource.watermark_ms` passes time T only once every
trade with an exchange time before T has been handed out by :meth:`events` (or is in a batch
handed out before the next call), whether it came from the WebSocket or from REST:

* it is exchange time: the largest event time ``E`` of the frames whose trades are already in the
  queue (kline frames carry ``E`` every second or two even when nothing trades, so quiet symbols
  still close). The local clock never moves it; frames still unread in the socket have later
  event times, so a source that falls behind cannot close a candle over them;
* it holds while disconnected, while a new connection has delivered nothing, and while any gap
  or post-reconnect tail is being refilled from REST (see :mod:`.repair`: the tail ends only
  after REST was read to the present *after* the new connection's first frame);
* each batch carries the watermark of the moment it entered the queue, and while batches are
  still queued :meth:`watermark_ms` answers with the stamp of the last one handed out, so the
  watermark never overtakes trades still waiting in the queue.

Frames of different streams are multiplexed on one connection, so their event times may be out of
order by a few milliseconds: the aggregator's grace period (seconds) absorbs that.

Per symbol, trades leave in increasing id order: a live batch that arrives while a lower id is
missing waits until REST has filled (or given up on) the gap. A broker topic keyed by symbol thus
holds each symbol's trades in id order, which is what lets a consumer restored from a snapshot
drop every id at or below the snapshot's highest as a duplicate.

Faults and what happens:

* malformed JSON, unknown events, wrong types, out-of-range values, unknown symbols: dead letter
  with the reason, counted in ``health.detail['dead_letters']`` and a Prometheus counter;
* a closed or silent connection (watchdog: nothing for ``stale_after_s``): reconnect; at once if
  it had delivered data, else with exponential backoff and jitter (tenacity);
* trades missed while away: every symbol's ids resume from REST (``fromId`` = last id + 1) and
  any jump in the live ids is filled the same way; the watermark stays at the last complete
  point until that is done, so repaired trades are on time for the candle aggregator;
* the 24 h connection limit: a new connection is opened and receiving before the old one closes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Self

import numpy as np
from prometheus_client import Counter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from coincast.domain import Candle, Clock, ConfigError, DeadLetter, MalformedMessage, TradeBatch, TransientError
from coincast.sources.base import DeadLetterSink, SourceHealth
from coincast.sources.binance.batcher import KlineCrossCheck, TradeBuffer
from coincast.sources.binance.gaps import IdTracker
from coincast.sources.binance.repair import GapRepairer, RepairOptions
from coincast.sources.binance.rest import BinanceRest, TradePage
from coincast.sources.binance.wire import (
    BookTop,
    ControlReply,
    DepthUpdateMsg,
    KlineEvent,
    ServerShutdown,
    TradeRow,
    parse_message,
)
from coincast.sources.binance.ws import MAX_STREAMS_PER_CONNECTION, Connection, ConnectionLost

log = logging.getLogger(__name__)

DEAD_LETTERS = Counter("coincast_binance_dead_letters", "Binance messages set aside", ["kind"])
RECONNECTS = Counter("coincast_binance_reconnects", "Binance WebSocket reconnects", ["cause"])


@dataclass(frozen=True, slots=True)
class BinanceOptions:
    """Tuning of the live source (defaults suit the real exchange).

    ``stream`` is ``aggTrade`` (default: gaps refilled exactly from /api/v3/aggTrades) or
    ``trade`` (refilled from /api/v3/historicalTrades). ``extra`` streams are per symbol.
    """

    stream: str = "aggTrade"
    extra: tuple[str, ...] = ("kline_1m", "bookTicker")
    stale_after_s: float = 30.0
    rotate_after_s: float = 23.5 * 3600
    tick_s: float = 1.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter_s: float = 0.5
    connect_timeout_s: float = 10.0
    repair: RepairOptions = field(default_factory=RepairOptions)
    queue_size: int = 1024
    batch_max: int = 2000
    batch_delay_s: float = 0.1


class BinanceSource:
    """Live trades of ``symbols`` from Binance (implements :class:`coincast.sources.base.Source`)."""

    name = "binance"

    def __init__(
        self,
        ws_url: str,
        rest: BinanceRest,
        symbols: list[str] | tuple[str, ...],
        *,
        dead_letters: DeadLetterSink,
        clock: Clock,
        options: BinanceOptions | None = None,
    ) -> None:
        self.options = options or BinanceOptions()
        if self.options.stream not in ("aggTrade", "trade"):
            raise ConfigError(f"binance stream {self.options.stream!r}: expected aggTrade or trade")
        n_streams = len(set(symbols)) * (1 + len(self.options.extra))
        if n_streams > MAX_STREAMS_PER_CONNECTION:
            raise ConfigError(
                f"{len(set(symbols))} symbols x {1 + len(self.options.extra)} streams = {n_streams}: Binance "
                f"allows {MAX_STREAMS_PER_CONNECTION} streams per connection; use fewer symbols or extra streams"
            )
        self.health = SourceHealth(name=self.name)
        self.book: dict[str, BookTop] = {}
        self.klines: dict[str, Candle] = {}
        self._ws_url = ws_url
        self._rest = rest
        self._symbols: set[str] = {s.upper() for s in symbols}
        self._dead = dead_letters
        self._clock = clock
        self._queue: asyncio.Queue[TradeBatch | BaseException | None] = asyncio.Queue(self.options.queue_size)
        self._buffer = TradeBuffer()
        self._check = KlineCrossCheck()
        self._seen: dict[str, int] = {}
        self._trackers: dict[str, IdTracker] = {}
        self._conns: list[Connection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._repairer = GapRepairer(
            fetch=self._fetch,
            deliver=self._deliver,
            settled=self._release,
            flowing=self._flowing,
            trackers=self._trackers,
            health=self.health,
            clock=clock,
            spawn=self._spawn,
            fail=self._queue.put,
            options=self.options.repair,
        )
        self._held: dict[str, list[TradeBatch]] = {}  # live trades waiting for a lower missing id
        self._down = 1  # connections not (yet) live; watermark holds while > 0
        self._pending_event_ms = 0  # largest exchange event time of the frames read so far
        self._flushed_event_ms = 0  # ... of the frames whose trades are all in the queue
        self._live_wm = 0  # watermark of what has entered the queue (never decreases)
        self._taken_wm = 0  # stamp of the last batch handed out by events()
        self._last_wm = 0
        self._started = False
        self._closed = False
        self.rotations = 0
        self.backoff_history: collections.deque[float] = collections.deque(maxlen=64)  # seconds slept
        self.kline_mismatches = 0
        self.duplicates = 0
        self.dead_letter_count = 0
        for key in ("dead_letters", "rotations", "kline_mismatches", "gaps_unrepaired", "backoff_s"):
            self.health.detail[key] = "0"

    @classmethod
    def from_urls(
        cls,
        ws_url: str,
        rest_url: str,
        symbols: list[str] | tuple[str, ...],
        *,
        dead_letters: DeadLetterSink,
        clock: Clock,
        options: BinanceOptions | None = None,
    ) -> Self:
        """Build with a :class:`BinanceRest` of its own (closed by :meth:`close`); few retries per
        request, since gap repair holds the watermark while it waits."""
        rest = BinanceRest.from_url(rest_url, clock=clock, max_attempts=3)
        return cls(ws_url, rest, symbols, dead_letters=dead_letters, clock=clock, options=options)

    # --- Source protocol -------------------------------------------------------------------

    def watermark_ms(self) -> int:
        """Exchange time (ms) before which every trade has been handed out; never decreases.

        See the module docstring for the invariant. While batches wait in the queue this is the
        stamp of the last batch handed out; with the queue empty, what has entered it.
        """
        wm = self._queued_watermark() if self._queue.empty() else self._taken_wm
        self._last_wm = max(self._last_wm, wm)
        return self._last_wm

    def _queued_watermark(self) -> int:
        """Exchange time before which every trade is in the queue (or was handed out)."""
        if self._down == 0 and not self.repairing and self._flowing():
            self._live_wm = max(self._live_wm, self._flushed_event_ms)
        return self._live_wm

    def _flowing(self) -> bool:
        """True once a current connection has delivered a data frame."""
        return any(c.had_data for c in self._conns)

    def seed(self, last_ids: dict[str, int], watermark_ms: int = 0) -> None:
        """Resume after a restart: every symbol continues after the last trade id already
        published (read back from the bus), refilled from REST on the first connection, and the
        watermark starts where the published one stood."""
        for symbol, last in last_ids.items():
            if symbol.upper() in self._symbols:
                self._trackers[symbol.upper()] = IdTracker(high=int(last))
        self._live_wm = max(self._live_wm, watermark_ms)
        self._last_wm = max(self._last_wm, watermark_ms)

    def rewind(self, last_ids: dict[str, int], watermark_ms: int) -> int:
        """Send again everything after ``last_ids`` (the broker lost what it had acknowledged).

        Batches still queued are dropped, each symbol behind is refilled from REST after its
        last kept id (live trades wait behind the refill, so ids stay in order), and the
        watermark goes back to ``watermark_ms``: what the consumer may have read of the lost
        stamps it keeps as its own maximum. Returns how many symbols were rewound.
        """
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not isinstance(item, TradeBatch) and item is not None:  # an error or the end: keep it
                self._queue.put_nowait(item)
                break
        self._held.clear()
        n = 0
        for symbol, tracker in self._trackers.items():
            last = last_ids.get(symbol)
            if last is None or tracker.high is None or last >= tracker.high:
                continue
            tracker.high, tracker.missing = int(last), []
            self._repairer.start(symbol, tail=True)
            n += 1
        self._live_wm = self._last_wm = self._taken_wm = min(self._last_wm, watermark_ms)
        self.health.detail["rewinds"] = str(int(self.health.detail.get("rewinds", "0")) + 1)
        log.warning("binance source rewound after a broker restart", extra={"symbols": n, "last_ids": last_ids})
        return n

    @property
    def repairing(self) -> bool:
        """True while a gap is open or being refilled from REST (the watermark holds meanwhile)."""
        return self._repairer.active > 0 or self._has_missing()

    async def events(self) -> AsyncIterator[TradeBatch]:
        """Yield trade batches (one symbol each) until closed.

        Raises:
            IpBanned: REST answered 418 during gap repair (nothing else is retried into a ban).
        """
        self._start()
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self._taken_wm = max(self._taken_wm, item.watermark_ms)
            yield item

    async def close(self) -> None:
        self._closed = True
        self._repairer.closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.close()
        self.health.connected = False
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        await self._rest.close()

    # --- run-time subscription ---------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """The symbols streamed now (changed by :meth:`subscribe` / :meth:`unsubscribe`)."""
        return sorted(self._symbols)

    def streams_of(self, symbol: str) -> list[str]:
        low = symbol.lower()
        return [f"{low}@{self.options.stream}", *(f"{low}@{e}" for e in self.options.extra)]

    async def subscribe(self, symbols: list[str]) -> None:
        """Add symbols at run time: SUBSCRIBE on the live connection (rate-limited), or, while
        disconnected, in the stream list of the next connection.

        Raises:
            ConfigError: more than 1024 streams would be needed on one connection.
            TransientError: Binance rejected the request or did not answer (nothing changed).
        """
        new = [s.upper() for s in symbols if s.upper() not in self._symbols]
        if not new:
            return
        streams = [st for s in new for st in self.streams_of(s)]
        if len(self._symbols) * len(self.streams_of("X")) + len(streams) > MAX_STREAMS_PER_CONNECTION:
            raise ConfigError(f"subscribing {new} would exceed {MAX_STREAMS_PER_CONNECTION} streams on one connection")
        self._symbols.update(new)
        if not self._conns:
            return
        try:
            await self._conns[-1].request("SUBSCRIBE", streams)
        except TransientError:
            self._symbols.difference_update(new)
            raise

    async def unsubscribe(self, symbols: list[str]) -> None:
        """Drop symbols at run time (UNSUBSCRIBE, or from the next connection's streams).

        Raises:
            TransientError: Binance rejected the request or did not answer (nothing changed).
        """
        gone = [s.upper() for s in symbols if s.upper() in self._symbols]
        if not gone:
            return
        if self._conns:
            await self._conns[-1].request("UNSUBSCRIBE", [st for s in gone for st in self.streams_of(s)])
        self._symbols.difference_update(gone)

    async def list_subscriptions(self) -> list[str]:
        result = await self._live_conn().request("LIST_SUBSCRIPTIONS")
        return [str(s) for s in result] if isinstance(result, list) else []

    def _live_conn(self) -> Connection:
        if not self._conns:
            raise TransientError("not connected to Binance")
        return self._conns[-1]

    # --- connection lifecycle ----------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._spawn(self._supervise())

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervise(self) -> None:
        try:
            while not self._closed:
                retrying = AsyncRetrying(
                    retry=retry_if_exception_type(TransientError),
                    wait=wait_exponential_jitter(
                        multiplier=self.options.backoff_initial_s,
                        max=self.options.backoff_max_s,
                        jitter=self.options.backoff_jitter_s,
                    ),
                    before_sleep=self._on_backoff,
                    reraise=True,
                )
                async for attempt in retrying:
                    with attempt:
                        await self._session()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # anything unexpected stops the stream loudly
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            await self._queue.put(exc)

    def _on_backoff(self, state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        self.backoff_history.append(wait)
        log.info("binance reconnect backoff", extra={"sleep_s": round(wait, 3), "error": self.health.last_error})
        self.health.detail["backoff_s"] = f"{wait:.3f}"
        self.health.detail["attempts"] = str(state.attempt_number)

    async def _open(self) -> Connection:
        streams = [st for s in sorted(self._symbols) for st in self.streams_of(s)]
        return await Connection.open(
            self._ws_url,
            streams,
            connect_timeout_s=self.options.connect_timeout_s,
            opened_ms=self._clock.now_ms(),
            on_frame=self._on_frame,
            flush=self._flush,
            has_pending=lambda: bool(self._buffer),
            stale_after_s=self.options.stale_after_s,
        )

    async def _session(self) -> None:
        """One connection's life, including its make-before-break successors.

        Returns after a healthy connection ended (reconnect at once); raises ConnectionLost when
        it ended before any data (the retry loop backs off).
        """
        try:
            conn = await self._open()
        except TransientError as exc:
            self.health.last_error = str(exc)
            raise
        self._conns.append(conn)
        self._went_up(conn)
        reader = asyncio.get_running_loop().create_task(conn.run())
        try:
            while True:
                done, _ = await asyncio.wait({reader}, timeout=self.options.tick_s)
                if done:
                    reader.result()  # always raises ConnectionLost
                self._report_stale_streams()
                if self._clock.now_ms() - conn.opened_ms >= self.options.rotate_after_s * 1000:
                    conn, reader = await self._rotate(conn, reader)
        except ConnectionLost as exc:
            await self._flush()  # what was read before the drop goes out now, not with the next frame
            self._went_down(conn, exc)
            if exc.had_data:
                return
            raise
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            if conn in self._conns:
                self._conns.remove(conn)
            with contextlib.suppress(Exception):
                await conn.close()

    async def _rotate(self, old: Connection, old_reader: asyncio.Task[None]) -> tuple[Connection, asyncio.Task[None]]:
        """Open the successor, wait for its first data, then close ``old`` (make-before-break)."""
        try:
            new = await self._open()
        except TransientError as exc:
            self.health.last_error = f"rotation: {exc}"
            return old, old_reader
        self._conns.append(new)
        reader = asyncio.get_running_loop().create_task(new.run())
        first = asyncio.get_running_loop().create_task(new.first_data.wait())
        await asyncio.wait({first, reader}, timeout=self.options.stale_after_s)
        first.cancel()
        if not new.had_data:
            reader.cancel()
            self._conns.remove(new)
            with contextlib.suppress(Exception):
                await new.close()
            self.health.last_error = f"rotation: connection {new.number} sent nothing; keeping the old one"
            return old, old_reader
        old_reader.cancel()
        with contextlib.suppress(BaseException):
            await old_reader
        self._conns.remove(old)
        with contextlib.suppress(Exception):
            await old.close()
        self.rotations += 1
        self.health.detail["rotations"] = str(self.rotations)
        log.info("binance connection rotated", extra={"old": old.number, "new": new.number})
        self.health.detail["connection"] = str(new.number)
        return new, reader

    def stale_streams(self) -> list[str]:
        """Streams silent for ``stale_after_s`` while their connection delivers other data.

        Reported in ``health.detail['stale_streams']``; a quiet symbol can be legitimately silent,
        so only a silent *connection* triggers a reconnect.
        """
        now = self._clock.now_ms()
        limit = self.options.stale_after_s * 1000
        last = {st: self._seen.get(st, c.opened_ms) for c in self._conns for st in c.streams}
        return sorted(st for st, t in last.items() if now - t > limit)

    def _report_stale_streams(self) -> None:
        stale = self.stale_streams()
        self.health.detail["stale_streams"] = ",".join(stale[:20]) + (" ..." if len(stale) > 20 else "")

    def _went_up(self, conn: Connection) -> None:
        # Whatever happened while we were away: resume every known symbol from its last id. The
        # repairs are counted before the watermark is released, so it never runs ahead of them.
        for symbol, tracker in self._trackers.items():
            if tracker.high is not None:
                self._repairer.start(symbol, tail=True)
        self._down = 0
        self.health.connected = True
        self.health.detail["connection"] = str(conn.number)
        log.info("binance connected", extra={"connection": conn.number, "streams": len(conn.streams)})
        self.health.detail["backoff_s"] = "0"

    def _went_down(self, conn: Connection, exc: ConnectionLost) -> None:
        self._queued_watermark()  # the last complete point; it holds from here
        self._down = 1
        self.health.connected = False
        self.health.reconnects += 1
        self.health.last_error = str(exc)
        log.warning("binance connection lost", extra={"connection": conn.number, "reason": str(exc)})
        if exc.stale and not self.health.stale_since_ms:
            self.health.stale_since_ms = conn.last_frame_ms
        RECONNECTS.labels("stale" if exc.stale else "closed").inc()

    # --- frames -> batches ------------------------------------------------------------------

    async def _on_frame(self, conn: Connection, raw: str | bytes) -> None:
        now = self._clock.now_ms()
        try:
            msg = parse_message(raw, now)
        except MalformedMessage as exc:
            self._dead_letter(exc.reason, raw, now)
            return
        if isinstance(msg, ControlReply):
            if not conn.resolve(msg.id, msg.result, msg.error):
                self._dead_letter(f"unsolicited control reply: {msg.error or msg.result}", raw, now)
            return
        if isinstance(msg, ServerShutdown):
            self.health.detail["server_shutdown_ms"] = str(now)
            conn.opened_ms = -(10**15)  # rotate now: make-before-break as for the 24 h limit
            return
        if isinstance(msg, DepthUpdateMsg):
            symbol = msg.s
        elif isinstance(msg, KlineEvent):
            symbol = msg.candle.symbol
        else:
            symbol = msg.symbol
        if symbol not in self._symbols:
            self._dead_letter(f"unknown symbol {symbol!r}", raw, now)
            return
        if isinstance(msg, TradeRow) and msg.kind != self.options.stream:
            # the other id space would look like a huge gap, and the trades would count twice
            self._dead_letter(
                f"unsubscribed event type {msg.kind!r}: this source counts {self.options.stream}", raw, now
            )
            return
        conn.mark_data(now)
        self._seen[_stream_name(symbol, msg, self.options.stream)] = now
        self.health.stale_since_ms = 0
        self.health.messages += 1
        self.health.last_message_ms = now
        if isinstance(msg, TradeRow):
            if msg.sent_ms > self._pending_event_ms:
                self._pending_event_ms = msg.sent_ms
            n = self._buffer.add(msg)
            # a busy market never pauses long enough for the idle flush: bound the delay too
            if n >= self.options.batch_max or self._buffer.age_s() >= self.options.batch_delay_s:
                await self._flush()
        elif isinstance(msg, KlineEvent):
            await self._flush()  # count the trades before the kline that closes their minute
            # every frame before this one is flushed: exchange time has reached its E
            self._flushed_event_ms = max(self._flushed_event_ms, msg.event_ms)
            self._pending_event_ms = max(self._pending_event_ms, msg.event_ms)
            self._cross_check(msg.candle)
        elif isinstance(msg, BookTop):
            self.book[symbol] = msg

    def _dead_letter(self, reason: str, raw: str | bytes, now: int) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self._dead.put(DeadLetter(self.name, reason, text[:4096], now))
        self.dead_letter_count += 1
        self.health.detail["dead_letters"] = str(self.dead_letter_count)
        DEAD_LETTERS.labels(reason.split(":", 1)[0][:40]).inc()

    async def _flush(self) -> None:
        read_to = self._pending_event_ms  # frames read so far; more may arrive while we deliver
        for batch in self._buffer.drain(self._clock.now_ms()):
            await self._deliver(batch)
        self._flushed_event_ms = max(self._flushed_event_ms, read_to)

    async def _deliver(self, batch: TradeBatch) -> None:
        symbol = batch.symbol
        tracker = self._trackers.setdefault(symbol, IdTracker())
        mask, gaps = tracker.accept(batch.trade_id)
        for _ in gaps:
            self._repairer.count_gap(symbol, found=True, repaired=False)
        if gaps:
            self._repairer.start(symbol)
        if not mask.all():
            self.duplicates += int((~mask).sum())
            self.health.detail["duplicates"] = str(self.duplicates)
            batch = batch.take(mask)
        if not tracker.missing and symbol not in self._held:  # the common case: in order, nothing held
            if len(batch):
                await self._enqueue(batch)
            return
        if len(batch):
            self._held.setdefault(symbol, []).append(batch)
        await self._release(symbol)

    async def _release(self, symbol: str) -> None:
        """Send the held trades of ``symbol`` below its lowest missing id, in id order."""
        held = self._held.pop(symbol, None)
        if not held:
            return
        merged = held[0] if len(held) == 1 else _concat(held)
        merged = merged.take(np.argsort(merged.trade_id, kind="stable"))
        tracker = self._trackers[symbol]
        cut = len(merged) if not tracker.missing else int(np.searchsorted(merged.trade_id, tracker.missing[0][0]))
        if cut < len(merged):
            self._held[symbol] = [merged.take(np.arange(cut, len(merged)))]
        if cut:
            await self._enqueue(merged.take(np.arange(cut)))

    async def _enqueue(self, batch: TradeBatch) -> None:
        self._check.record(batch)
        # stamped with what had entered the queue before it: the stamp never covers later batches
        batch = replace(batch, watermark_ms=self._queued_watermark())
        # bounded, and blocking when full: a slow consumer slows the reads (TCP backpressure,
        # then at worst a reconnect and a REST repair) instead of dropping trades
        await self._queue.put(batch)
        self.health.detail["queue"] = f"{self._queue.qsize()}/{self._queue.maxsize}"

    def _cross_check(self, kline: Candle) -> None:
        self.klines[kline.symbol] = kline
        if self._check.check(kline) is False:
            self.kline_mismatches = self._check.mismatches
            self.health.detail["kline_mismatches"] = str(self.kline_mismatches)

    # --- gap repair -------------------------------------------------------------------------

    def _has_missing(self) -> bool:
        return any(t.missing for t in self._trackers.values())

    async def _fetch(self, symbol: str, from_id: int) -> TradePage:
        def bad(row: object, reason: str) -> None:
            self._dead_letter(f"REST {reason}", str(row), self._clock.now_ms())

        if self.options.stream == "aggTrade":
            return await self._rest.agg_trades(symbol, from_id=from_id, on_bad=bad)
        return await self._rest.historical_trades(symbol, from_id=from_id, on_bad=bad)


def _concat(batches: list[TradeBatch]) -> TradeBatch:
    first = batches[0]
    return TradeBatch(
        first.symbol,
        np.concatenate([b.trade_id for b in batches]),
        np.concatenate([b.event_ms for b in batches]),
        np.concatenate([b.price for b in batches]),
        np.concatenate([b.qty for b in batches]),
        np.concatenate([b.is_buyer_maker for b in batches]),
        max(b.recv_ms for b in batches),
    )


def _stream_name(symbol: str, msg: object, trade_stream: str) -> str:
    low = symbol.lower()
    if isinstance(msg, TradeRow):
        return f"{low}@{trade_stream}"
    if isinstance(msg, KlineEvent):
        return f"{low}@kline_{msg.candle.interval.value}"
    if isinstance(msg, BookTop):
        return f"{low}@bookTicker"
    return f"{low}@depth"
