"""`coincast up --source binance` through a stalled reconnect: no candle closes over unread trades.

The sequence of issue 18, against the fake exchange trading a synthetic market (2 symbols,
20 trades/s each, exactly representable prices and sizes): the WebSocket drops (TCP reset),
the next reconnects are refused (HTTP 503), the next connection is accepted but delivers nothing
for a while as the market keeps trading, and the first REST gap-repair request answers 429
(``Retry-After``). Then data flows again. The outage is timed to span a minute boundary, so the
1m candle it cuts is the one that would close early.

Variations: a drop during repair (while the client waits out the 429), a 418 ban during repair
(the source may stop, but nothing may close wrongly), a silence longer than the watchdog
(``COINCAST_BINANCE__STALE_AFTER_S``), two drops in one minute.

The check: every 1s and 1m candle before a horizon a few seconds after data flows again, served by
the API and stored in DuckDB, equals the candles of every trade the fake released (OHLCV, quote
and taker volumes equal as floats, trade counts equal), none missing, none extra.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.fakes.binance_server import ERR_418, ERR_429, FakeBinance
from tests.fakes.synthetic import Bar, ThreadedFake, diff_bars, synthetic_markets, truth
from tests.integration.conftest import UpProcess, coincast_up

from coincast.domain import Interval
from coincast.wiring import open_store

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TICK_S = 0.05  # every symbol trades once per tick: 20 trades/s each
MARKET_S = 300
INTERVALS = (Interval.M1, Interval.S1)
ENV = {
    "COINCAST_SYMBOLS": ",".join(SYMBOLS),
    "COINCAST_STREAM__INTERVALS": "1s,1m",
    "COINCAST_STREAM__GRACE_MS": "300",
    "COINCAST_STORE__FLUSH_MS": "200",
}
REST_429 = (429, {"Retry-After": "1"}, ERR_429)
REST_418 = (418, {"Retry-After": "3"}, ERR_418)


@dataclass(frozen=True, slots=True)
class Stall:
    """One variation of the sequence.

    Attributes:
        refused: handshakes answered 503 after the drop.
        silent_s: how long the accepted connection stays silent (the market keeps trading).
        rest: canned REST answers, first in first out, for the first requests after the drop.
        drop_during_repair: drop again as soon as the first canned REST answer was served.
        second_drop_after_s: drop once more (one refusal, no silence) this long after data flows again.
        env: extra settings for ``coincast up``.
        span_minute: time the drop so that the outage spans a minute boundary (the 1m candle it
            cuts is the one that would close early); costs up to a minute of waiting.
        complete: False when the source may legitimately stop (an IP ban): then only the candles
            it did close are checked, and they must be a gap-free prefix of the truth.
    """

    refused: int = 3
    silent_s: float = 10.0
    rest: tuple[tuple[int, dict[str, str], Any], ...] = (REST_429,)
    drop_during_repair: bool = False
    second_drop_after_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    span_minute: bool = True
    complete: bool = True


STALLS = {
    "issue-sequence": Stall(),
    "drop-during-repair": Stall(drop_during_repair=True, span_minute=False),
    "418-during-repair": Stall(rest=(REST_429, REST_418), complete=True, span_minute=False),  # a 3 s ban is waited out
    # the watchdog (3 s) gives up on the silent connection twice before data flows again
    "silence-longer-than-watchdog": Stall(silent_s=8.0, env={"COINCAST_BINANCE__STALE_AFTER_S": "3"}),
    "two-drops-in-a-minute": Stall(silent_s=4.0, second_drop_after_s=3.0, span_minute=False),
}


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _closed(up: UpProcess, symbol: str, interval: Interval) -> dict[int, Bar]:
    r = up.get(f"/api/v1/candles/{symbol}", interval=interval.value, limit=5_000)
    r.raise_for_status()
    return {c["open_time"]: Bar.of(c) for c in r.json()["candles"] if c["closed"]}


def _stored(db: Path, symbol: str, interval: Interval) -> dict[int, Bar]:
    async def read() -> dict[int, Bar]:
        store = open_store(f"duckdb:///{db}")
        try:
            rows = await store.history(symbol, interval, start_ms=0, end_ms=2**62, limit=1_000_000)
            return {c.open_ms: Bar.of(c) for c in rows}
        finally:
            await store.close()

    return asyncio.run(read())


def _check(where: str, symbol: str, interval: Interval, want: dict[int, Bar], got: dict[int, Bar],
           horizon_ms: int, complete: bool, drop_ms: int) -> list[str]:
    """Differences among candles that end by ``horizon_ms``. When not ``complete``, only up to
    the last candle ``got`` has (a gap-free prefix), but at least every candle that had closed
    before the first drop."""
    end = horizon_ms - interval.ms + 1  # open times before this end by the horizon
    if not complete:
        closed_before_drop = drop_ms - interval.ms - 1_000  # interval + grace + a tick before the drop
        end = min(end, max([closed_before_drop, *(t + 1 for t, g in got.items() if g.trades)]))
    w = {t: b for t, b in want.items() if t < end}
    g = {t: b for t, b in got.items() if t < end}
    lines = diff_bars(w, g)
    if not lines:
        return []
    lost = sum(max(0, b.trades - (g[t].trades if t in g else 0)) for t, b in w.items())
    head = f"{where} {symbol} {interval.value}: {len(lines)} of {len(w)} candles differ; {lost} trades missing"
    return [head, *("    " + x for x in lines[:30])]


def _when(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%H:%M:%S.%f}"[:-3]


class Sequence:
    """Drives the fake through one :class:`Stall` and keeps a journal for the failure message."""

    def __init__(self, fake: ThreadedFake, up: UpProcess) -> None:
        self.fake, self.up = fake, up
        self.journal: list[str] = []
        self.drop_ms = 0  # wall time of the first drop

    def note(self, text: str) -> None:
        self.journal.append(f"{_when(_wall_ms())} {text}")

    def wait(self, cond: Callable[[], bool], timeout_s: float, what: str) -> None:
        self.up.wait_until(cond, timeout=timeout_s, what=what)
        self.note(what)

    def connections(self) -> int:
        return self.fake.call(lambda: self.fake.server.connections_total)

    def drop(self, refuse: int, silent: bool) -> None:
        def go(server: FakeBinance) -> None:
            server.refuse_next(refuse)
            server.silent = silent
            server.drop_all()

        self.fake.call(go, self.fake.server)
        self.drop_ms = self.drop_ms or _wall_ms()
        self.note(f"drop: next {refuse} handshakes refused, then {'silent' if silent else 'normal'}")

    def run(self, stall: Stall) -> None:
        server = self.fake.server
        self.fake.call(server.rest_faults.extend, stall.rest)
        n0 = self.connections()
        self.drop(stall.refused, silent=True)
        self.wait(lambda: self.connections() > n0, 30, "a new connection accepted (silent)")
        if stall.drop_during_repair:
            self.wait(lambda: not self.fake.call(len, server.rest_faults), 30, "first repair request answered 429")
            n1 = self.connections()
            self.drop(0, silent=True)
            self.wait(lambda: self.connections() > n1, 30, "reconnected during repair (silent)")
        time.sleep(stall.silent_s)  # the stall itself: the market trades, the connection says nothing
        if "COINCAST_BINANCE__STALE_AFTER_S" in stall.env:
            self.wait(lambda: self.connections() >= n0 + 2, 15, "the watchdog replaced the silent connection")
        self.fake.call(setattr, server, "silent", False)
        self.note(f"silence over after {stall.silent_s:.0f}s; {self.connections()} connections so far")
        if stall.second_drop_after_s is not None:
            time.sleep(stall.second_drop_after_s)
            n2 = self.connections()
            self.drop(1, silent=False)
            self.wait(lambda: self.connections() > n2, 30, "reconnected after the second drop")


@pytest.mark.parametrize("name", list(STALLS))
def test_stalled_reconnect_closes_no_candle_early(name: str, tmp_path: Path, shared_data: Path) -> None:
    stall = STALLS[name]
    rng = np.random.default_rng(1800 + list(STALLS).index(name))
    markets = synthetic_markets(rng, SYMBOLS, n=int(MARKET_S / TICK_S))
    problems: list[str] = []
    with ThreadedFake(shared_data / "binance_fixtures", markets, trades_per_tick=1, tick_s=TICK_S) as fake:
        env = {**ENV, **stall.env, "COINCAST_BINANCE_WS_URL": fake.server.ws_url,
               "COINCAST_BINANCE_REST_URL": fake.server.rest_url}
        data = tmp_path / "d"
        with coincast_up(data, "--source", "binance", env=env) as up:
            seq = Sequence(fake, up)
            seq.wait(lambda: all(len(_closed(up, s, Interval.S1)) >= 3 for s in SYMBOLS), 60, "data flowing")
            if stall.span_minute:  # the outage: refusals (~4 s of backoff), then the silence
                lead_ms = 3_000 + int(stall.silent_s * 500)
                boundary = (_wall_ms() + lead_ms + 500) // 60_000 * 60_000 + 60_000
                up.wait_until(lambda: _wall_ms() >= boundary - lead_ms, timeout=70, what="drop time")
                seq.note(f"minute boundary to span: {_when(boundary)}")
            seq.run(stall)
            horizon = (_wall_ms() // 1000 + 4) * 1000  # candles opening before this are checked
            ok = True
            try:
                seq.wait(lambda: all(max(_closed(up, s, Interval.S1), default=0) >= horizon for s in SYMBOLS),
                         30, f"1s candles closed past the horizon {_when(horizon)}")
            except AssertionError as exc:
                ok = False
                record = problems.append if stall.complete else seq.note  # an IP ban may stop the source
                record(f"1s candles not closed past the horizon: {exc}"[:300])
            if up.proc.poll() is None:
                for s in SYMBOLS:
                    for iv in INTERVALS:
                        problems += _check("API", s, iv, want_of(fake, s, iv), _closed(up, s, iv),
                                           horizon, stall.complete and ok, seq.drop_ms)
            else:
                (problems.append if stall.complete else seq.note)(f"coincast up exited ({up.proc.returncode})")
            code = up.stop(signal.SIGINT)
            seq.note(f"coincast up stopped, exit code {code}")
        rest_log = [f"{p} {q}" for p, q in fake.server.rest_log]
        if unserved := fake.call(list, fake.server.rest_faults):  # the scenario did not happen as meant
            problems.append(f"canned REST answers never requested: {[status for status, _, _ in unserved]}")
        for s in SYMBOLS:
            for iv in INTERVALS:
                problems += _check("store", s, iv, want_of(fake, s, iv), _stored(data / "coincast.db", s, iv),
                                   horizon, stall.complete and ok, seq.drop_ms)
    if stall.complete and code != 0:
        problems.append(f"coincast up exit code {code}")
    report = "\n".join([f"stall {name}: {stall}", "journal:", *(f"  {x}" for x in seq.journal),
                        "REST requests:", *(f"  {x}" for x in rest_log[:20]), "problems:", *problems])
    print(report, file=sys.stderr)
    if problems:
        pytest.fail(f"{report}\n\nlog:\n{up.log.read_text(errors='replace')[-4000:]}")


def want_of(fake: ThreadedFake, symbol: str, interval: Interval) -> dict[int, Bar]:
    """The truth of every trade released so far (read on the fake's loop: no half-released tick)."""
    return fake.call(truth, fake.server.markets[symbol], interval)

