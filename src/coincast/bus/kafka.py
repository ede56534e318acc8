"""Kafka bus (any Kafka-API broker: Apache Kafka, Redpanda, …) with plain confluent-kafka.

Topics are ``<prefix><topic>`` with the symbol as message key, so a symbol's batches stay in one
partition, in order. Producer backpressure: when librdkafka's local queue is full, ``publish``
waits instead of dropping.

Offsets follow durability. A plain subscription commits a burst's offsets once the caller asks
for the next burst (fine for the live candle fan-out). A *durable* subscription commits nothing
by itself: the caller takes :meth:`KafkaSubscription.position` at the instant it snapshots its
state and commits that position only after the state is stored, so a ``kill -9`` at any moment
replays from a point the stored state already covers (and the fold drops what it already has by
trade id). Before a rebalance takes partitions away, ``on_revoke`` runs with the keys seen on
them, so the owner stores and commits before another instance reads on.

A member that dies stays in its group until ``session.timeout.ms`` (6 s here, not librdkafka's
45 s), so a restarted or surviving ``process`` is consuming again within seconds.

The producer survives a broker restart: every message is kept until the broker acknowledges it;
when the broker is gone (every connection refused) or after a fatal producer error (an idempotent
producer's sequence state lost with the broker), a new producer is made before anything reaches a
restarted broker. With ``on_reset`` the source then compares what the broker kept with what it
sent and sends the rest again (a single broker killed before its data reached disk loses what it
acknowledged last); without it the unacknowledged messages are sent again, in order, before any
new one. A resend can duplicate a message the broker had stored; the consumer drops repeated ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client import Counter, Gauge

from coincast.bus.codec import decode, encode
from coincast.domain import DeadLetter, MalformedMessage, TradeBatch, TransientError
from coincast.sources.base import DeadLetterSink

log = logging.getLogger(__name__)

KAFKA_MALFORMED = Counter("coincast_kafka_malformed_total", "Undecodable messages set aside", ["topic"])
KAFKA_LAG = Gauge("coincast_kafka_consumer_lag", "Messages behind the high watermark", ["topic", "group"])
KAFKA_COMMITTED = Gauge("coincast_kafka_committed_time_seconds", "Wall time of the last offset commit",
                        ["topic", "group"])
KAFKA_REBALANCES = Counter("coincast_kafka_rebalances_total", "Partitions assigned or revoked", ["topic", "event"])
KAFKA_PRODUCER_RESETS = Counter("coincast_kafka_producer_resets_total",
                                "Producers replaced after a fatal error (broker restart)")
KAFKA_RESENT = Counter("coincast_kafka_resent_total", "Unacknowledged messages sent again")

# durable consumers (``process``): a dead member is noticed within seconds, not librdkafka's 45 s
DURABLE_CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1500, "max.poll.interval.ms": 10_000}
Position = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read


class KafkaBus:
    """A :class:`~coincast.bus.base.Bus` on a Kafka-protocol broker.

    Args:
        bootstrap: ``host:port[,host:port]``.
        prefix: topic name prefix (one cluster can host several deployments).
        partitions: partitions for topics this bus creates.
        dead_letters: where undecodable messages go (counted either way).
        config: extra librdkafka settings for producer and consumers (security, tuning).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        prefix: str = "coincast.",
        partitions: int = 3,
        dead_letters: DeadLetterSink | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._base = {"bootstrap.servers": bootstrap, **(config or {})}
        self._prefix = prefix
        self._partitions = partitions
        self._dead_letters = dead_letters
        self._seq = itertools.count()
        self._unacked: dict[int, tuple[str, bytes, bytes]] = {}  # seq -> (topic, key, value), in order
        self._fatal: str | None = None
        self._producer = self._new_producer()
        self.producer_resets = 0
        # after a broker restart: True when the producer's source sends again everything after
        # what the broker kept (then what was unacknowledged is dropped instead of resent)
        self.on_reset: Callable[[], Awaitable[bool]] | None = None
        self._reset_lock = asyncio.Lock()
        self._generation = 0  # rewinds so far: a message built before one is superseded
        self._stop = threading.Event()
        self._known_topics: set[str] = set()
        self._closed = False

    def _topic(self, topic: str) -> str:
        return self._prefix + topic

    def ensure_topics(self, *topics: str, timeout_s: float = 10.0) -> None:
        """Create the topics if missing (brokers may have auto-creation off)."""
        names = [self._topic(t) for t in topics if self._topic(t) not in self._known_topics]
        if not names:
            return
        admin = AdminClient(self._base)
        futures = admin.create_topics([NewTopic(n, num_partitions=self._partitions) for n in names],
                                      operation_timeout=timeout_s)
        for name, fut in futures.items():
            try:
                fut.result(timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TransientError(f"cannot create Kafka topic {name!r}: {exc}") from exc
            self._known_topics.add(name)

    def _new_producer(self) -> Producer:
        def on_error(err: KafkaError) -> None:
            # the broker gone is treated like a fatal error: the producer is replaced before any
            # message can reach a restarted broker, so what it kept is checked first (on_reset)
            if _fatal(err) or err.code() == KafkaError._ALL_BROKERS_DOWN:
                self._fatal = str(err)
            log.warning("kafka producer: %s", err)

        return Producer({**self._base, "linger.ms": 5, "enable.idempotence": True,
                         "queue.buffering.max.messages": 20_000, "error_cb": on_error})

    def _acked(self, seq: int) -> Callable[[KafkaError | None, Any], None]:
        def done(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                self._unacked.pop(seq, None)
            elif _fatal(err):
                self._fatal = str(err)
            # other errors (a timed-out message): kept in _unacked and sent again on the next reset
        return done

    async def publish(self, topic: str, key: str, batch: object) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        generation = self._generation
        if self._fatal is not None or self._reset_lock.locked():
            await self._reset_producer()  # waits for one in progress
        if self._generation != generation:
            return  # the source was rewound meanwhile: it sends these trades again (a stamp is stale)
        seq = next(self._seq)
        self._unacked[seq] = (self._topic(topic), key.encode(), encode(batch))
        await self._produce(seq)
        self._producer.poll(0)

    async def _produce(self, seq: int) -> None:
        if seq not in self._unacked:
            return  # dropped by a reset whose source sends it again
        name, key, data = self._unacked[seq]
        while True:
            try:
                self._producer.produce(name, data, key=key, on_delivery=self._acked(seq))
                return
            except BufferError:  # local queue full: wait for the broker to catch up
                await asyncio.to_thread(self._producer.poll, 0.05)
                if self._fatal is not None:
                    if not self._reset_lock.locked():  # (a resend inside a reset leaves it to the next)
                        await self._reset_producer()
                    return  # the reset handles everything unacknowledged, this one included
            except KafkaException as exc:
                if _fatal(exc.args[0]):
                    self._fatal = str(exc)
                    if not self._reset_lock.locked():
                        await self._reset_producer()
                    return
                raise TransientError(f"Kafka produce to {name!r} failed: {exc}") from exc

    async def _reset_producer(self) -> None:
        """Replace a producer that hit a fatal error (usually: the broker restarted).

        A broker that restarted may also have lost messages it had acknowledged (a single node
        killed before its data reached disk). With ``on_reset`` the source is asked to send again
        everything after what the broker still holds, and the unacknowledged messages are dropped
        (the source sends them again too); without it they are resent, in order.
        """
        async with self._reset_lock:  # one at a time; publishers wait (and drop what it supersedes)
            if self._fatal is None:
                return  # another caller did it
            log.warning("kafka producer failed (%s): replacing it (%d messages unacknowledged)",
                        self._fatal, len(self._unacked))
            old, self._producer, self._fatal = self._producer, self._new_producer(), None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(old.purge)
            self.producer_resets += 1
            KAFKA_PRODUCER_RESETS.inc()
            if self.on_reset is not None:
                pending, self._unacked = self._unacked, {}
                if await self.on_reset():
                    self._generation += 1
                    return
                self._unacked = pending
            for seq in sorted(self._unacked):
                KAFKA_RESENT.inc()
                await self._produce(seq)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every published batch is acknowledged by the broker (resending after a fatal
        producer error)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._unacked and loop.time() < deadline:
            if self._fatal is not None:
                await self._reset_producer()
            await asyncio.to_thread(self._producer.flush, min(1.0, max(0.0, deadline - loop.time())))
        if self._unacked:
            raise TransientError(f"{len(self._unacked)} Kafka messages not acknowledged within {timeout_s}s")

    @property
    def unacknowledged(self) -> int:
        return len(self._unacked)

    def subscribe(self, topic: str, group: str, *, durable: bool = False, instance_id: str = "") -> KafkaSubscription:
        """A consumer of ``topic`` in ``group``; ``durable`` leaves every commit to the caller.

        ``instance_id`` makes the consumer a static member (KIP-345): restarted with the same id it
        gets its partitions back at once, without waiting for the dead member's session to expire.
        """
        extra: dict[str, Any] = {**DURABLE_CONSUMER} if durable else {}
        if instance_id:
            extra["group.instance.id"] = instance_id
        return KafkaSubscription(self, topic, group, auto_commit=not durable, **extra)

    def consumer(self, group: str, **extra: Any) -> Consumer:
        return Consumer({**self._base, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "enable.partition.eof": False, **extra})

    async def last_published(self, topic: str, *, max_scan: int = 200_000) -> tuple[dict[str, int], int]:
        """Read the tail of ``topic`` back: the highest trade id published per key, and the highest
        watermark stamped. Scans back from the end of each partition in growing windows until every
        key seen has a trade (heartbeats carry none) or ``max_scan`` messages were read."""
        return await asyncio.to_thread(self._last_published, self._topic(topic), max_scan)

    def _last_published(self, name: str, max_scan: int) -> tuple[dict[str, int], int]:
        consumer = self.consumer(f"coincast-tail-{id(self)}")
        last_ids: dict[str, int] = {}
        watermark = 0
        try:
            meta = consumer.list_topics(name, timeout=10)
            parts = meta.topics[name].partitions if name in meta.topics else {}
            for p in parts:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                end, window, seen_keys = high, 2000, set[str]()
                while end > low:
                    start = max(low, end - window)
                    for m in self._read_range(consumer, name, p, start, end):
                        with contextlib.suppress(MalformedMessage):
                            item = decode(m.value())
                            if isinstance(item, TradeBatch):
                                seen_keys.add(item.symbol)
                                watermark = max(watermark, item.watermark_ms)
                                if len(item):
                                    top = int(item.trade_id.max())
                                    last_ids[item.symbol] = max(last_ids.get(item.symbol, -1), top)
                    if seen_keys <= set(last_ids) or high - start >= max_scan:
                        break
                    end, window = start, window * 2
        except KafkaException as exc:
            raise TransientError(f"cannot read back Kafka topic {name!r}: {exc}") from exc
        finally:
            consumer.close()
        return last_ids, watermark

    @staticmethod
    def _read_range(consumer: Consumer, name: str, partition: int, start: int, end: int) -> list[Any]:
        consumer.assign([TopicPartition(name, partition, start)])
        out: list[Any] = []
        idle = 0
        while (not out or out[-1].offset() < end - 1) and idle < 20:
            msgs = consumer.consume(1000, 0.5)
            got = [m for m in msgs if m.error() is None and (m.offset() or 0) < end]
            idle = 0 if got else idle + 1
            out.extend(got)
        return out

    def decode_messages(self, topic: str, msgs: list[Any]) -> list[object]:
        items: list[object] = []
        for m in msgs:
            if m.error() is not None:
                log.warning("kafka: %s", m.error())
                continue
            try:
                items.append(decode(m.value()))
            except MalformedMessage as exc:
                KAFKA_MALFORMED.labels(topic).inc()
                if self._dead_letters is not None:
                    self._dead_letters.put(DeadLetter("kafka", exc.reason, repr(exc.raw), m.timestamp()[1],
                                                      {"topic": m.topic(), "offset": str(m.offset())}))
        return items

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def close(self) -> None:
        """Flush what was published, then stop every consumer after its current poll."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.flush()
        except Exception as exc:  # shutting down: what is unsent is resent by the next run
            log.warning("kafka: %d messages not acknowledged at close: %s", len(self._unacked), exc)
        self._stop.set()


class KafkaSubscription:
    """A consumer as an async iterator of bursts, with explicit offsets for durable consumers.

    ``position()`` is what has been handed out so far (the next offset per partition); a durable
    caller stores its state, then ``commit(position)``. ``on_revoke`` (optional) is awaited on the
    caller's event loop before partitions go to another member, with the keys seen on them.
    """

    def __init__(self, bus: KafkaBus, topic: str, group: str, *, auto_commit: bool, **config: Any) -> None:
        self.topic = topic
        self.group = group
        # stores what the caller holds and forgets the keys; returns the position now stored
        self.on_revoke: Callable[[set[str]], Awaitable[Position | None]] | None = None
        self._in_rebalance = False
        self.lag = 0
        self.committed_ms = 0
        self.rebalances = 0
        self._bus = bus
        self._auto = auto_commit
        self._position: Position = {}
        self._keys: dict[int, set[str]] = {}  # partition -> keys seen on it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._to_commit: Position | None = None  # queued for the consumer's thread
        self._handed_out = False
        self._config = config
        self.rejoins = 0
        self._consumer = bus.consumer(group, on_commit=self._on_commit, **config)
        self._consumer.subscribe([bus._topic(topic)], on_assign=self._assigned, on_revoke=self._revoked)
        self._iter = self._consume()

    def __aiter__(self) -> KafkaSubscription:
        return self

    async def __anext__(self) -> list[object]:
        return await self._iter.__anext__()

    async def aclose(self) -> None:
        await self._iter.aclose()  # type: ignore[attr-defined]

    def position(self) -> Position:
        return dict(self._position)

    async def commit(self, position: Position) -> None:
        """Commit ``position`` (taken earlier with :meth:`position`) without waiting for the broker.

        Never blocks the caller (a broker that is down must not stall the store writes) and never
        raises: a commit that fails or is lost only means a longer replay, which the fold
        de-duplicates. The broker's answer is logged and counted by :meth:`_on_commit`.
        """
        if not position or self._closing or self._in_rebalance:
            return  # during a rebalance only the callback's own thread may commit (see _revoked)
        # handed to the consumer's own thread (next poll): librdkafka calls from the event loop
        # while consume() runs in that thread can block the loop
        self._to_commit = {**(self._to_commit or {}), **position}

    def _send_commit(self) -> None:
        """In the consumer's thread: send the queued commit (and, for a plain subscription, the
        position of the bursts handed out so far)."""
        pending, self._to_commit = self._to_commit, None
        try:
            if pending:
                self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in pending.items()],
                                      asynchronous=True)
            elif self._auto and self._handed_out:
                self._consumer.commit(asynchronous=True)
        except (KafkaException, RuntimeError) as exc:
            log.warning("kafka commit failed (the next run replays a little more): %s", exc)
        self._handed_out = False

    def _on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("kafka commit failed (the next run replays a little more): %s", err)
            return
        self.committed_ms = time.time_ns() // 1_000_000
        KAFKA_COMMITTED.labels(self.topic, self.group).set(self.committed_ms / 1000)

    # -- librdkafka callbacks (run in the consumer's thread, inside consume()) -------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalances += 1
        KAFKA_REBALANCES.labels(self.topic, "assigned").inc(len(partitions))
        log.info("kafka partitions assigned",
                 extra={"topic": self.topic, "partitions": [p.partition for p in partitions]})

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before partitions go: the caller stores its state (on its event loop, which calls no
        consumer method meanwhile), then this thread commits what was stored."""
        self.rebalances += 1
        KAFKA_REBALANCES.labels(self.topic, "revoked").inc(len(partitions))
        keys = set().union(*(self._keys.pop(p.partition, set()) for p in partitions)) if partitions else set()
        if self.on_revoke is not None and self._loop is not None and keys and not self._closing:
            self._in_rebalance = True
            try:
                fut = asyncio.run_coroutine_threadsafe(_stored(self.on_revoke(keys)), self._loop)
                position = fut.result(timeout=30)
                if position:
                    offsets = [TopicPartition(t, p, o) for (t, p), o in position.items()]
                    consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # the new owner replays from the last commit: nothing is lost
                log.warning("kafka revoke handler failed: %s: %s", type(exc).__name__, exc)
            finally:
                self._in_rebalance = False
        for p in partitions:
            self._position.pop((p.topic, p.partition), None)
        log.info("kafka partitions revoked",
                 extra={"topic": self.topic, "partitions": [p.partition for p in partitions]})

    # -- the loop ---------------------------------------------------------------------------------

    async def _consume(self) -> AsyncIterator[list[object]]:
        # consume() and close() never overlap: a cancelled await leaves consume() running in its
        # thread, and librdkafka must not close the consumer under it (it can hang).
        self._loop = asyncio.get_running_loop()
        lock = threading.Lock()

        def poll() -> tuple[Any, int]:
            with lock:
                self._send_commit()
                msgs = self._consumer.consume(1000, 0.25)
                return msgs, self._lag_after(msgs)

        def close() -> None:
            with lock:
                self._send_commit()
                self._consumer.close()

        try:
            while not self._bus.stopping:
                msgs, lag = await asyncio.to_thread(poll)
                if (fatal := next((m.error() for m in msgs if m.error() is not None and _fatal(m.error())), None)):
                    await self._rejoin(str(fatal), close)
                    continue
                staged: Position = {}
                for m in msgs:
                    if m.error() is None:
                        staged[(m.topic(), m.partition())] = m.offset() + 1
                        if (key := m.key()) is not None:
                            self._keys.setdefault(m.partition(), set()).add(key.decode("utf-8", "replace"))
                items = self._bus.decode_messages(self.topic, msgs)
                if items:
                    yield items
                # the caller asks for more only once it has handled the burst: only now does the
                # position cover it (a snapshot taken meanwhile commits less, never more)
                self._position.update(staged)
                if staged:
                    self._handed_out = True
                    self.lag = lag
                    KAFKA_LAG.labels(self.topic, self.group).set(lag)
        finally:
            await self._hand_back("final store and commit")
            self._closing = True
            with contextlib.suppress(KafkaException, RuntimeError):
                await asyncio.to_thread(close)

    async def _hand_back(self, what: str) -> None:
        """Store and commit, then forget every partition's keys (``on_revoke`` with all of them)."""
        keys = set().union(*self._keys.values()) if self._keys else set()
        self._keys.clear()
        if self.on_revoke is not None and keys:
            try:
                position = await self.on_revoke(keys)
                if position:
                    await self.commit(position)
            except Exception as exc:  # the next owner replays from the last commit
                log.warning("kafka: %s failed: %s", what, exc)

    async def _rejoin(self, why: str, close: Callable[[], None]) -> None:
        """A consumer that hit a fatal error (fenced, its group state lost with a broker restart)
        is replaced by a new member; what this one held is stored and handed back first."""
        log.warning("kafka consumer failed (%s): rejoining the group", why)
        await self._hand_back("store before rejoining")
        self._position.clear()
        self._closing = True
        with contextlib.suppress(KafkaException, RuntimeError):
            await asyncio.to_thread(close)
        self._closing = False
        self._consumer = self._bus.consumer(self.group, on_commit=self._on_commit, **self._config)
        self._consumer.subscribe([self._bus._topic(self.topic)], on_assign=self._assigned, on_revoke=self._revoked)
        self.rejoins += 1
        KAFKA_REBALANCES.labels(self.topic, "rejoined").inc()

    def _lag_after(self, msgs: list[Any]) -> int:
        """Messages behind the end of the last message's partition (in the consumer's thread)."""
        good = [m for m in msgs if m.error() is None]
        if not good:
            return self.lag
        last = good[-1]
        with contextlib.suppress(KafkaException):
            _, high = self._consumer.get_watermark_offsets(TopicPartition(last.topic(), last.partition()), cached=True)
            if high >= 0:
                return int(max(0, high - last.offset() - 1))
        return self.lag


async def _stored(awaitable: Awaitable[Position | None]) -> Position | None:
    return await awaitable


def _fatal(err: object) -> bool:
    """A producer error that only a new producer gets past (librdkafka reports some as ``_FATAL``)."""
    if not isinstance(err, KafkaError):
        return False
    return bool(err.fatal()) or err.code() == KafkaError._FATAL
