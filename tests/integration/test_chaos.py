"""Chaos: the scaled roles lose nothing and double nothing while ingest, process and the broker die.

``coincast ingest --source binance``, two ``coincast process`` instances and ``coincast serve``
run as processes around a noida-db Kafka broker and PostgreSQL, fed by the fake Binance exchange
trading a synthetic market (3 symbols, 20 trades/s each, exactly representable prices and sizes).
A seeded random schedule ``SIGKILL``\\ s ingest, one process instance or both, and the broker,
each restarted after a short random delay with the same command line (a supervisor; a role
that exits on its own is restarted too, and reported). noida-db snapshots its log once a second,
so for one kind of broker kill its clients are frozen for that second before its ``SIGKILL``: like
a replicated broker, it keeps everything it acknowledged (see
:meth:`tests.integration.supervisor.NoidaBroker.crash`). The other kind is a plain ``SIGKILL``: the
broker comes back without what it acknowledged in its last second, and ingest must notice and
send it again (read back the topic's end, refill from the exchange's REST API). Then the
killing stops, the pipeline must catch up, the market stops just before a minute boundary, every
minute must close, and every stored 1m and 1s candle -- read from the store and through the serve
role's API -- must equal the candles of every trade the exchange released: OHLCV, quote and taker
volumes equal as floats, trade counts equal, none missing, none doubled.

Reproduce a failing run with ``COINCAST_CHAOS_SEED=<seed>`` (printed with the schedule).
``COINCAST_CHAOS_KILLS=<n>`` keeps only the first n kills of the schedule: ``0`` is a calm control
run (same market, same checks, nothing killed) that tells a harness problem from a product one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.fakes.synthetic import Bar, ThreadedFake, diff_bars, synthetic_markets, truth
from tests.integration.conftest import free_port
from tests.integration.supervisor import NoidaBroker, Supervised, noida_binary

from coincast.domain import Candle, Interval
from coincast.store.base import CandleStore
from coincast.wiring import open_store

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("COINCAST_CHAOS_SEED", "18"))
KILLS = int(os.environ.get("COINCAST_CHAOS_KILLS", "-1"))  # how many kills of the schedule (-1: all)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TICK_S = 0.05  # every symbol trades once per tick: 20 trades/s each
MARKET_S = 240  # trades generated; the market is stopped well before they run out
INTERVALS = (Interval.M1, Interval.S1)
TRADES_TOPIC = "coincast.trades"  # the bus's default prefix + topic
ROLE_ENV = {
    "COINCAST_SYMBOLS": ",".join(SYMBOLS),
    "COINCAST_STREAM__INTERVALS": "1s,1m",
    "COINCAST_STREAM__GRACE_MS": "300",
    "COINCAST_STORE__FLUSH_MS": "200",
    "COINCAST_LOG_LEVEL": "info",
}


@dataclass(frozen=True, slots=True)
class Kill:
    """``SIGKILL`` ``targets`` ``at_s`` seconds into the chaos phase; restart them ``down_s`` later."""

    at_s: float
    targets: tuple[str, ...]
    down_s: float

    def __str__(self) -> str:
        return f"t={self.at_s:5.1f}s kill -9 {'+'.join(self.targets)}, restart after {self.down_s:.1f}s"


REJOIN_S = 15.0  # a (re)started process must be consuming again within this


def _slow_rejoins(name: str, log: Path) -> list[str]:
    """Every run of a ``process`` instance that lived ``REJOIN_S`` must have had trade partitions
    assigned within ``REJOIN_S`` of its start (static membership: a restart takes its old ones)."""
    import json

    out = []
    for k, run in enumerate(log.read_text(errors="replace").split("\n===== run ")[1:], start=1):
        events = []
        for line in run.splitlines():
            with contextlib.suppress(ValueError, TypeError):
                d = json.loads(line)
                events.append((datetime.fromisoformat(d["timestamp"]).timestamp(), d))
        started = next((t for t, d in events if d.get("event") == "process started"), None)
        if started is None or not any(t - started >= REJOIN_S for t, _ in events):
            continue  # killed (or ended) before it could be held to the limit
        assigned = next((t for t, d in events if d.get("event") == "kafka partitions assigned"
                         and d.get("topic") == "trades"), None)
        if assigned is None or assigned - started > REJOIN_S:
            late = "never" if assigned is None else f"after {assigned - started:.1f} s"
            out.append(f"{name} run {k}: trade partitions assigned {late} (limit {REJOIN_S:g} s)")
    return out


def make_schedule(rng: np.random.Generator) -> list[Kill]:
    """Every kind of kill at least once (ingest, one process, both processes, the broker with what
    it acknowledged on disk, the broker losing its last second), plus two more at random, in random
    order, 3-7 s apart, each down 0.5-3 s."""
    kinds = ["ingest", "process", "both", "broker", "broker-lossy",
             *rng.choice(["ingest", "process", "broker", "broker-lossy"], size=2)]
    out, t = [], 0.0
    for kind in rng.permutation(kinds):
        t += float(rng.uniform(3.0, 7.0))
        down = float(rng.uniform(0.5, 3.0))
        targets = {"process": (str(rng.choice(["process-a", "process-b"])),),
                   "both": ("process-a", "process-b")}.get(str(kind), (str(kind),))
        out.append(Kill(round(t, 2), targets, round(down, 2)))
        t += down
    return out


class StoreReader:
    """Synchronous reads of the candle store (the test drives processes from a plain thread)."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self._store: CandleStore = self._runner.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> CandleStore:
        return open_store(url)

    def history(self, symbol: str, interval: Interval) -> list[Candle]:
        return self._runner.run(self._store.history(symbol, interval, start_ms=0, end_ms=2**62, limit=1_000_000))

    def latest_open_ms(self, symbol: str, interval: Interval) -> int:
        rows = self._runner.run(self._store.history(symbol, interval, start_ms=0, end_ms=2**62, limit=1))
        return rows[-1].open_ms if rows else 0

    def close(self) -> None:
        self._runner.run(self._store.close())
        self._runner.close()


class Cluster:
    """The broker and the roles under supervision, and a journal of what happened to them."""

    def __init__(self, broker: NoidaBroker, roles: dict[str, Supervised]) -> None:
        self.broker = broker
        self.roles = roles
        self.t0 = time.monotonic()
        self.journal: list[str] = []

    def note(self, text: str) -> None:
        wall = f"{datetime.now(UTC):%H:%M:%S}"
        line = f"{wall} t={time.monotonic() - self.t0:6.1f}s {text}"
        self.journal.append(line)
        print(line, file=sys.stderr)

    def supervise(self) -> None:
        self.broker.supervise()
        for role in self.roles.values():
            role.supervise()

    def wait(self, cond: Callable[[], bool], timeout_s: float, what: str) -> bool:
        """Supervise until ``cond()`` holds (True) or ``timeout_s`` passes (False, noted)."""
        start = time.monotonic()
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            self.supervise()
            try:
                if cond():
                    self.note(f"{what}: after {time.monotonic() - start:.1f}s")
                    return True
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.2)
        self.note(f"{what}: NOT within {timeout_s:.0f}s")
        return False

    def sleep_until(self, t: float) -> None:
        while time.monotonic() < t:
            self.supervise()
            time.sleep(0.05)

    def all_up(self) -> bool:
        return all(p.running and p.restart_at is None for p in [self.broker, *self.roles.values()])

    def kill(self, k: Kill) -> None:
        if k.targets == ("broker",):
            frozen_s = self.broker.crash(k.down_s, self.roles.values())
            self.note(f"[{k}] (clients frozen {frozen_s:.1f}s for the broker's snapshot)")
        elif k.targets == ("broker-lossy",):  # what it acknowledged since its last snapshot is gone
            self.broker.kill(k.down_s)
            self.note(f"[{k}] (plain SIGKILL: the broker loses up to a second of acknowledged writes)")
        else:
            for name in k.targets:
                self.roles[name].kill(k.down_s)
            self.note(f"[{k}]")

    def crashes(self) -> list[str]:
        return [c for p in [self.broker, *self.roles.values()] for c in p.crashes]

    def stop(self) -> None:
        for p in [*self.roles.values(), self.broker]:
            p.stop()

    def tails(self) -> str:
        return "\n".join(p.tail() for p in [*self.roles.values(), self.broker])


def _trades_topic(bootstrap: str) -> str:
    """End offsets of the trades topic's partitions and the process group's committed offsets
    (diagnostics: tells a producer that stopped from a consumer that stopped)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "coincast-process", "enable.auto.commit": False})
    try:
        topic = c.list_topics(TRADES_TOPIC, timeout=5).topics.get(TRADES_TOPIC)
        tps = [TopicPartition(TRADES_TOPIC, p) for p in sorted(topic.partitions)] if topic else []
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=5)}
        return ", ".join(f"p{tp.partition} end {c.get_watermark_offsets(tp, timeout=5)[1]} "
                         f"committed {committed.get(tp.partition)}" for tp in tps) or "no trades topic"
    except KafkaException as exc:
        return f"broker not answering: {exc}"
    finally:
        c.close()


def _api_bars(url: str, symbol: str, interval: Interval) -> tuple[dict[int, Bar], list[int]]:
    """Closed candles served by the API, and the open times of those it still shows as open."""
    r = httpx.get(f"{url}/api/v1/candles/{symbol}", params={"interval": interval.value, "limit": 5_000}, timeout=10)
    r.raise_for_status()
    candles = r.json()["candles"]
    return ({c["open_time"]: Bar.of(c) for c in candles if c["closed"]},
            [c["open_time"] for c in candles if not c["closed"]])


def _compare(where: str, symbol: str, interval: Interval, want: dict[int, Bar], got: dict[int, Bar]) -> list[str]:
    """One summary line (with figures) and the per-candle diffs; empty when equal."""
    lines = diff_bars(want, got)
    if not lines:
        return []
    lost = sum(max(0, w.trades - (got[t].trades if t in got else 0)) for t, w in want.items())
    doubled = sum(max(0, g.trades - (want[t].trades if t in want else 0)) for t, g in got.items())
    missing = sum(1 for t in want if t not in got)
    head = (f"{where} {symbol} {interval.value}: {len(lines)} of {len(want)} candles differ ({missing} missing); "
            f"{lost} of {sum(w.trades for w in want.values())} trades lost, {doubled} extra")
    shown = lines[:25] + ([f"... {len(lines) - 25} more"] if len(lines) > 25 else [])
    return [head, *("    " + x for x in shown)]


def test_sigkill_ingest_process_and_broker_loses_and_doubles_nothing(
    tmp_path: Path, postgres_url: str, shared_data: Path
) -> None:
    binary = noida_binary()
    if binary is None:
        pytest.skip("the chaos test starts and kills its own broker: install noida-db (pip)")
    rng = np.random.default_rng(SEED)
    schedule = make_schedule(rng)
    schedule = schedule if KILLS < 0 else schedule[:KILLS]
    markets = synthetic_markets(rng, SYMBOLS, n=int(MARKET_S / TICK_S))
    print(f"\nchaos seed {SEED} (COINCAST_CHAOS_SEED), schedule:\n" + "\n".join(f"  {k}" for k in schedule),
          file=sys.stderr)
    kafka_dir = tmp_path / "kafka"
    kafka_dir.mkdir()
    broker = NoidaBroker(binary, free_port(), kafka_dir, tmp_path / "broker.log")
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    problems: list[str] = []
    with ThreadedFake(shared_data / "binance_fixtures", markets, trades_per_tick=1, tick_s=TICK_S) as fake:
        bootstrap = f"127.0.0.1:{broker.port}"
        env = {**os.environ, **ROLE_ENV, "COINCAST_BUS__URL": f"kafka://{bootstrap}",
               "COINCAST_STORE__URL": postgres_url, "COINCAST_DATA_DIR": str(tmp_path),
               "COINCAST_BINANCE_WS_URL": fake.server.ws_url, "COINCAST_BINANCE_REST_URL": fake.server.rest_url}
        coincast = [sys.executable, "-m", "coincast"]
        roles = {name: Supervised(name, coincast + args, env, tmp_path / f"{name}.log") for name, args in {
            "serve": ["serve", "--port", str(port)],
            "process-a": ["process"],
            "process-b": ["process"],
            "ingest": ["ingest", "--source", "binance"],
        }.items()}
        cluster = Cluster(broker, roles)
        reader: StoreReader | None = None
        try:
            broker.start()
            for role in roles.values():
                role.start()
            reader = StoreReader(postgres_url)
            store = reader

            def flowing() -> bool:
                return all(store.latest_open_ms(s, Interval.S1) > 0 for s in SYMBOLS)

            if not cluster.wait(flowing, 60, "first 1s candle of every symbol stored"):
                pytest.fail(f"the roles never produced a candle\n{cluster.tails()}")

            t0 = time.monotonic()
            for k in schedule:
                cluster.sleep_until(t0 + k.at_s)
                cluster.kill(k)
            cluster.wait(cluster.all_up, 30, "every killed process restarted")

            def caught_up() -> bool:
                recent = time.time_ns() // 1_000_000 - 4_000
                return all(store.latest_open_ms(s, Interval.S1) >= recent for s in SYMBOLS)

            cluster.note(f"trades topic: {_trades_topic(bootstrap)}")
            if not cluster.wait(caught_up, 60, "1s candles of every symbol stored up to 4 s ago"):
                problems.append("the pipeline did not catch up within 60 s after the last kill")
                cluster.note(f"trades topic: {_trades_topic(bootstrap)}")

            now_ms = time.time_ns() // 1_000_000
            stop_ms = (now_ms // 60_000 + 1) * 60_000 - 1_500  # just before a minute ends: a short wait
            if stop_ms - now_ms < 2_000:
                stop_ms += 60_000
            cluster.sleep_until(time.monotonic() + (stop_ms - now_ms) / 1000)
            fake.call(fake.server.pause)

            def market_stopped() -> bool:  # a tick in progress may still release the other symbols
                first = fake.released()
                time.sleep(3 * TICK_S)
                return fake.released() == first

            cluster.wait(market_stopped, 5, "market stopped")
            released = fake.released()
            want = {(s, iv): truth(fake.server.markets[s], iv) for s in SYMBOLS for iv in INTERVALS}
            cluster.note("released " + ", ".join(f"{s} {n} trades" for s, n in released.items()))

            def minutes_closed() -> bool:
                return all(store.latest_open_ms(s, Interval.M1) >= max(want[(s, Interval.M1)]) for s in SYMBOLS)

            if not cluster.wait(minutes_closed, 30, "the last minute of every symbol closed and stored"):
                problems.append("the last minute was not stored as closed within 30 s after the market stopped")

            for s in SYMBOLS:
                for iv in INTERVALS:
                    stored = {c.open_ms: Bar.of(c) for c in store.history(s, iv)}
                    problems += _compare("store", s, iv, want[(s, iv)], stored)
                    try:
                        served, still_open = _api_bars(api, s, iv)
                    except httpx.HTTPError as exc:
                        problems.append(f"API {s} {iv.value}: {type(exc).__name__}: {exc}")
                        continue
                    problems += _compare("API", s, iv, want[(s, iv)], served)
                    if still_open and iv is Interval.M1:
                        problems.append(f"API {s} {iv.value}: still open: {still_open}")
            problems += [f"crash: {c}" for c in cluster.crashes()]
            for name in ("process-a", "process-b"):
                problems += _slow_rejoins(name, roles[name].log)
        finally:
            if reader is not None:
                reader.close()
            cluster.stop()
    if problems:
        report = "\n".join([f"seed {SEED}; schedule:", *(f"  {k}" for k in schedule), "journal:",
                            *(f"  {x}" for x in cluster.journal), "problems:", *problems])
        print(report, file=sys.stderr)
        pytest.fail(f"{report}\n\nlogs:\n{cluster.tails()}")
