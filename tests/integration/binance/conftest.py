"""Fixtures for the Binance source tests: the fake exchange with recorded trades."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.fakes.binance_server import FakeBinance, Market
from tests.fakes.collect import FAST, ListSink

from coincast.domain import SystemClock
from coincast.sources.binance import BinanceOptions, BinanceRest, BinanceSource


@pytest.fixture
def markets(shared_data: Path) -> list[Market]:
    start = time.time_ns() // 1_000_000
    trades = shared_data / "trades_btcusdt.parquet"
    return [
        Market.from_parquet(trades, "BTCUSDT", start_ms=start),
        # a second symbol with the same recorded flow under other ids, to check per-symbol routing
        Market.from_parquet(trades, "ETHUSDT", start_ms=start, id_offset=-500_000_000),
    ]


@pytest.fixture
async def fake(shared_data: Path, markets: list[Market]) -> AsyncIterator[FakeBinance]:
    async with FakeBinance(shared_data / "binance_fixtures", markets) as server:
        yield server


@pytest.fixture
def make_source(fake: FakeBinance) -> Callable[..., tuple[BinanceSource, ListSink]]:
    def make(options: BinanceOptions = FAST, clock: object = None) -> tuple[BinanceSource, ListSink]:
        sink = ListSink()
        clk = clock or SystemClock()
        rest = BinanceRest.from_url(fake.rest_url, clock=clk, timeout_s=5.0)
        src = BinanceSource(fake.ws_url, rest, ["BTCUSDT", "ETHUSDT"], dead_letters=sink, clock=clk, options=options)  # type: ignore[arg-type]
        return src, sink

    return make
