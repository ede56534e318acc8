"""The auto source's reachability probe against a live fake, a closed port and a silent server."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from tests.fakes.binance_server import ERR_418, FakeBinance
from tests.fakes.collect import ListSink

from coincast.domain import ConfigError, SystemClock
from coincast.settings import load_settings
from coincast.sources.auto import auto_factory, binance_reachable, open_replay, probe_binance
from coincast.sources.base import SourceHealth
from coincast.sources.binance import BinanceSource
from coincast.sources.replay import ReplaySource

pytestmark = pytest.mark.integration


async def test_reachable_fake_and_unreachable_ones(fake: FakeBinance) -> None:
    assert await binance_reachable(fake.rest_url, 3)
    fake.rest_faults.append((418, {"Retry-After": "60"}, ERR_418))
    probe = await probe_binance(fake.rest_url, 3)
    assert not probe.reachable and "HTTP 418" in probe.detail

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not await binance_reachable(f"http://127.0.0.1:{port}", 3)
    assert not await binance_reachable("not a url", 1)


async def test_silent_server_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        probe = await probe_binance(f"http://127.0.0.1:{port}", 0.3)
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()
    assert not probe.reachable and "no answer within 0.3 s" in probe.detail
    assert loop.time() - t0 < 3


class StubSim:
    """Stands in for the simulator: auto must mark whatever fallback it gets as simulated."""

    name = "sim"

    def __init__(self) -> None:
        self.health = SourceHealth(name="sim")


async def test_auto_picks_binance_or_a_visible_fallback(fake: FakeBinance, tmp_path: Path) -> None:
    async def fallback(settings: object, dead: object, clock: object, store: object) -> StubSim:
        return StubSim()

    auto = auto_factory(fallback)  # type: ignore[arg-type]
    live = load_settings(binance__rest_url=fake.rest_url, binance__ws_url=fake.ws_url, data_dir=tmp_path)
    src = await auto(live, ListSink(), SystemClock(), None)
    try:
        assert isinstance(src, BinanceSource) and "live Binance" in src.health.detail["auto"]
        assert not src.health.simulated
    finally:
        await src.close()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    offline = load_settings(binance__rest_url=f"http://127.0.0.1:{dead_port}", data_dir=tmp_path)
    sim = await auto(offline, ListSink(), SystemClock(), None)
    assert isinstance(sim, StubSim) and sim.health.simulated
    assert sim.health.detail["auto"].startswith("simulated market: Binance unreachable")


async def test_replay_factory_needs_a_file(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(ConfigError, match="--file"):
        await open_replay(load_settings(source__kind="replay", data_dir=tmp_path), ListSink(), SystemClock(), None)
    settings = load_settings(source__replay_file=shared_data / "trades_btcusdt.parquet", source__replay_speed=0)
    src = await open_replay(settings, ListSink(), SystemClock(), None)
    assert isinstance(src, ReplaySource) and src.health.detail["trades"] == "2001"
