"""Kafka bus (any Kafka-API broker: Apache Kafka, Redpanda, …) with plain confluent-kafka.

Topics are ``<prefix><topic>`` with the symbol as message key, so a symbol's batches stay in one
partition, in order. Delivery is at-least-once: a consumer commits a burst's offsets only after
the caller asks for the next burst; the candle fold drops duplicate trade ids and stores upsert,
so a redelivery after a crash changes nothing. Producer backpressure: when librdkafka's local
queue is full, ``publish`` waits instead of dropping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client import Counter, Gauge

from coincast.bus.codec import decode, encode
from coincast.domain import DeadLetter, MalformedMessage, TransientError
from coincast.sources.base import DeadLetterSink

log = logging.getLogger(__name__)

KAFKA_MALFORMED = Counter("coincast_kafka_malformed_total", "Undecodable messages set aside", ["topic"])
KAFKA_LAG = Gauge("coincast_kafka_consumer_lag", "Messages behind the high watermark", ["topic", "group"])


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
        self._producer = Producer({**self._base, "linger.ms": 5, "enable.idempotence": True,
                                   "queue.buffering.max.messages": 20_000})
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

    async def publish(self, topic: str, key: str, batch: object) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        data = encode(batch)
        name = self._topic(topic)
        while True:
            try:
                self._producer.produce(name, data, key=key.encode())
                break
            except BufferError:  # local queue full: wait for the broker to catch up
                await asyncio.to_thread(self._producer.poll, 0.05)
            except KafkaException as exc:
                raise TransientError(f"Kafka produce to {name!r} failed: {exc}") from exc
        self._producer.poll(0)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every published batch is acknowledged by the broker."""
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        if left:
            raise TransientError(f"{left} Kafka messages not acknowledged within {timeout_s}s")

    def subscribe(self, topic: str, group: str) -> AsyncIterator[list[object]]:
        consumer = Consumer({**self._base, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "enable.partition.eof": False})
        consumer.subscribe([self._topic(topic)])
        return self._consume(consumer, topic, group)

    async def _consume(self, consumer: Consumer, topic: str, group: str) -> AsyncIterator[list[object]]:
        # consume() and close() never overlap: a cancelled await leaves consume() running in its
        # thread, and librdkafka must not close the consumer under it (it can hang).
        lock = threading.Lock()

        def poll() -> Any:
            with lock:
                return consumer.consume(1000, 0.25)

        def close() -> None:
            with lock:
                consumer.close()

        try:
            while not self._stop.is_set():
                msgs = await asyncio.to_thread(poll)
                items = self._decode(topic, msgs)
                if items:
                    yield items
                if msgs:
                    consumer.commit(asynchronous=True)
                    self._record_lag(consumer, topic, group, msgs[-1])
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                await asyncio.to_thread(close)

    def _decode(self, topic: str, msgs: list[Any]) -> list[object]:
        items: list[object] = []
        for m in msgs:
            if m.error() is not None:
                if m.error().fatal():
                    raise TransientError(f"Kafka consumer error on {topic!r}: {m.error()}")
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

    @staticmethod
    def _record_lag(consumer: Consumer, topic: str, group: str, last: Any) -> None:
        with contextlib.suppress(KafkaException):
            _, high = consumer.get_watermark_offsets(TopicPartition(last.topic(), last.partition()), cached=True)
            if high >= 0:
                KAFKA_LAG.labels(topic, group).set(max(0, high - last.offset() - 1))

    async def close(self) -> None:
        """Flush what was published, then stop every consumer after its current poll."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(TransientError):
            await self.flush()
        self._stop.set()
