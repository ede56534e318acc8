"""The auto source's reachability probe against a live fake, a closed port and a silent server."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tests.fakes.binance_server import ERR_418, FakeBinance

from coincast.sources.auto import binance_reachable, probe_binance

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
