"""Intent, symbol and horizon extraction over many phrasings."""

from __future__ import annotations

import pytest

from coincast.assistant.intent import Intent, extract_horizon, extract_symbols, parse
from coincast.domain import DEFAULT_SYMBOLS, Interval

KNOWN = tuple(DEFAULT_SYMBOLS)


@pytest.mark.parametrize(
    ("question", "intent", "symbols", "horizon"),
    [
        ("what is the bitcoin forecast for the next hour?", Intent.FORECAST, ("BTCUSDT",), Interval.H1),
        ("Will ETH go up tomorrow?", Intent.FORECAST, ("ETHUSDT",), Interval.D1),
        ("predict BTCUSDT 1d", Intent.FORECAST, ("BTCUSDT",), Interval.D1),
        ("where is solana expected to be in an hour", Intent.FORECAST, ("SOLUSDT",), Interval.H1),
        ("btc/usdt outlook", Intent.FORECAST, ("BTCUSDT",), None),
        ("what's the price of bitcoin", Intent.PRICE, ("BTCUSDT",), None),
        ("how much is ether worth?", Intent.PRICE, ("ETHUSDT",), None),
        ("BTC", Intent.PRICE, ("BTCUSDT",), None),
        ("xrp price change 24h", Intent.PRICE, ("XRPUSDT",), Interval.D1),
        ("is btc overbought?", Intent.TECHNICAL, ("BTCUSDT",), None),
        ("RSI and MACD for ethereum", Intent.TECHNICAL, ("ETHUSDT",), None),
        ("what's the trend of doge on the hourly chart", Intent.TECHNICAL, ("DOGEUSDT",), Interval.H1),
        ("compare eth and sol", Intent.COMPARISON, ("ETHUSDT", "SOLUSDT"), None),
        ("BTC vs ETH", Intent.COMPARISON, ("BTCUSDT", "ETHUSDT"), None),
        ("which is better, cardano or solana?", Intent.COMPARISON, ("ADAUSDT", "SOLUSDT"), None),
        ("eth and sol", Intent.COMPARISON, ("ETHUSDT", "SOLUSDT"), None),
        ("compare the price of btc and bnb", Intent.COMPARISON, ("BTCUSDT", "BNBUSDT"), None),
        ("bitcoin news", Intent.NEWS, ("BTCUSDT",), None),
        ("what is the sentiment on ethereum today", Intent.NEWS, ("ETHUSDT",), None),
        ("latest crypto headlines", Intent.NEWS, (), None),
        ("how risky is solana?", Intent.RISK, ("SOLUSDT",), None),
        ("BTC volatility and max drawdown", Intent.RISK, ("BTCUSDT",), None),
        ("which model forecasts bitcoin?", Intent.MODEL, ("BTCUSDT",), None),
        ("how accurate are the eth predictions", Intent.MODEL, ("ETHUSDT",), None),
        ("explain the btc forecast", Intent.MODEL, ("BTCUSDT",), None),
        ("help", Intent.HELP, (), None),
        ("hello", Intent.HELP, (), None),
        ("what can you do?", Intent.HELP, (), None),
        ("", Intent.HELP, (), None),
    ],
)
def test_parse(question: str, intent: Intent, symbols: tuple[str, ...], horizon: Interval | None) -> None:
    p = parse(question, KNOWN)
    assert (p.intent, p.symbols, p.horizon) == (intent, symbols, horizon), question


def test_symbols_keep_order_dedupe_and_stay_within_the_configured_pairs() -> None:
    assert extract_symbols("sol, then Bitcoin, then BTC again and ETH-USDT", KNOWN) == ("SOLUSDT", "BTCUSDT", "ETHUSDT")
    assert extract_symbols("bitcoin and ethereum", ("ETHUSDT",)) == ("ETHUSDT",)
    assert extract_symbols("solid absolute adamant dotted", KNOWN) == ()  # no coin inside other words


def test_first_named_horizon_wins() -> None:
    def interval(text: str) -> Interval | None:
        h = extract_horizon(text)
        return h.interval if h else None

    assert interval("tomorrow, or the next hour") is Interval.D1
    assert interval("in one hour") is Interval.H1
    assert interval("next week") is None  # no candle interval is a week long
    assert interval("nothing ahead") is None
