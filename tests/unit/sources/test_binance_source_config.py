"""Configuration errors of the live source, before any socket opens."""

from __future__ import annotations

import httpx
import pytest
from tests.fakes.collect import ListSink

from coincast.domain import ConfigError, ManualClock
from coincast.sources.binance import BinanceOptions, BinanceRest, BinanceSource


def make(symbols: list[str], options: BinanceOptions) -> BinanceSource:
    rest = BinanceRest(httpx.AsyncClient(base_url="http://127.0.0.1:9"))
    return BinanceSource(
        "ws://127.0.0.1:9", rest, symbols, dead_letters=ListSink(), clock=ManualClock(), options=options
    )


def test_more_streams_than_one_connection_allows_is_a_config_error() -> None:
    symbols = [f"S{i:03d}USDT" for i in range(342)]  # 342 x 3 streams = 1026 > 1024
    with pytest.raises(ConfigError, match="1024 streams per connection"):
        make(symbols, BinanceOptions())
    src = make(symbols[:341], BinanceOptions())
    assert src.streams_of("BTCUSDT") == ["btcusdt@aggTrade", "btcusdt@kline_1m", "btcusdt@bookTicker"]


def test_unknown_trade_stream_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected aggTrade or trade"):
        make(["BTCUSDT"], BinanceOptions(stream="depth"))


def test_watermark_is_zero_before_the_first_connection() -> None:
    src = make(["BTCUSDT"], BinanceOptions())
    assert src.watermark_ms() == 0 and not src.repairing and not src.health.connected


async def test_subscribing_while_disconnected_changes_the_next_connection() -> None:
    src = make(["BTCUSDT"], BinanceOptions())
    await src.subscribe(["ethusdt"])
    await src.unsubscribe(["BTCUSDT"])
    assert src.symbols == ["ETHUSDT"]
    with pytest.raises(ConfigError, match="1024 streams"):
        await src.subscribe([f"S{i:03d}USDT" for i in range(400)])
    assert src.symbols == ["ETHUSDT"]
