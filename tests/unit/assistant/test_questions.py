"""The assistant is never wrong about the subject: 60 questions, then answers about coins it does
not follow, exact comparisons, horizons mapped to live models, and plain text only."""

from __future__ import annotations

import re

import pytest
from tests.fakes.binance_ticker import FakeBinanceTicker
from tests.fakes.llm_server import FakeLlm

from coincast.api.app import Services
from coincast.assistant.intent import Intent, parse
from coincast.assistant.llm import ChatClient
from coincast.assistant.lookup import BinanceLookup
from coincast.assistant.news import NewsService
from coincast.assistant.service import Assistant
from coincast.assistant.templates import plain
from coincast.domain import DEFAULT_SYMBOLS

P, F, T, C, N, R, M, H = (Intent.PRICE, Intent.FORECAST, Intent.TECHNICAL, Intent.COMPARISON, Intent.NEWS,
                          Intent.RISK, Intent.MODEL, Intent.HELP)

#: question, intent, followed pairs named, pairs named but not followed, horizon asked
QUESTIONS: list[tuple[str, Intent, tuple[str, ...], tuple[str, ...], str | None]] = [
    # prices: names, tickers, pairs, typos, capitals
    ("btc price", P, ("BTCUSDT",), (), None),
    ("whats the prise of bitcon", P, ("BTCUSDT",), (), None),
    ("how much is one solana worth", P, ("SOLUSDT",), (), None),
    ("doge price rn", P, ("DOGEUSDT",), (), None),
    ("WHAT IS THE PRICE OF BITCOIN", P, ("BTCUSDT",), (), None),
    ("SOL-USDT price", P, ("SOLUSDT",), (), None),
    ("how much is a bitcoin", P, ("BTCUSDT",), (), None),
    ("tell me about cardano", P, ("ADAUSDT",), (), None),
    ("what's the price of etherum", P, ("ETHUSDT",), (), None),
    ("Litecoin value?", P, ("LTCUSDT",), (), None),
    # coins it does not follow: never another coin's data
    ("price of PEPE", P, (), ("PEPEUSDT",), None),
    ("price of monero", P, (), ("XMRUSDT",), None),
    ("what about shiba inu today", P, (), ("SHIBUSDT",), None),
    ("How is WIF doing", P, (), ("WIFUSDT",), None),
    ("Is XYZ a good buy?", P, (), ("XYZUSDT",), None),
    ("price of moonrocket", P, (), ("MOONROCKETUSDT",), None),
    ("NEAR price", P, (), ("NEARUSDT",), None),
    ("pepeusdt price", P, (), ("PEPEUSDT",), None),
    ("Ethereum Classic price", P, (), ("ETCUSDT",), None),
    ("price of avax", P, (), ("AVAXUSDT",), None),
    ("the price of gold", P, (), ("GOLDUSDT",), None),
    ("monero news", N, (), ("XMRUSDT",), None),
    # several coins: exactly those asked
    ("compare BTC with XMR", C, ("BTCUSDT",), ("XMRUSDT",), None),
    ("compare btc with moonrocket", C, ("BTCUSDT",), ("MOONROCKETUSDT",), None),
    ("compare doge and eth", C, ("DOGEUSDT", "ETHUSDT"), (), None),
    ("BTC vs ETH vs SOL", C, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), (), None),
    ("which is better, cardano or solana?", C, ("ADAUSDT", "SOLUSDT"), (), None),
    ("eth and sol", C, ("ETHUSDT", "SOLUSDT"), (), None),
    ("ripple or litecoin, which one is stronger?", C, ("XRPUSDT", "LTCUSDT"), (), None),
    ("bitcoin cash vs bitcoin", C, ("BTCUSDT",), ("BCHUSDT",), None),
    ("compare the top coins", C, (), (), None),
    ("price of btc, eth and xrp", P, ("BTCUSDT", "ETHUSDT", "XRPUSDT"), (), None),
    ("pepe vs doge", C, ("DOGEUSDT",), ("PEPEUSDT",), None),
    # forecasts and horizons in minutes, hours, days, weeks
    ("what is the bitcoin forecast for the next hour?", F, ("BTCUSDT",), (), "1h"),
    ("Will ETH go up tomorrow?", F, ("ETHUSDT",), (), "1d"),
    ("predict BTCUSDT 1d", F, ("BTCUSDT",), (), "1d"),
    ("etherium forecast in 5 minutes", F, ("ETHUSDT",), (), "5m"),
    ("will sol go up in 4 hours", F, ("SOLUSDT",), (), "4h"),
    ("btc 15m forecast", F, ("BTCUSDT",), (), "15m"),
    ("xrp forecast for the next minute", F, ("XRPUSDT",), (), "1m"),
    ("ada prediction next week", F, ("ADAUSDT",), (), "1w"),
    ("bnb outlook in 30 min", F, ("BNBUSDT",), (), "30m"),
    ("where will dot be in 2 days", F, ("DOTUSDT",), (), "2d"),
    ("link forecast", F, ("LINKUSDT",), (), None),
    ("btc in half an hour", F, ("BTCUSDT",), (), "30m"),
    ("litecoin or polkadot tomorrow", F, ("LTCUSDT", "DOTUSDT"), (), "1d"),
    ("solana forecast 1h please", F, ("SOLUSDT",), (), "1h"),
    ("btc/usdt outlook", F, ("BTCUSDT",), (), None),
    # technical, risk, news, models
    ("is btc overbought?", T, ("BTCUSDT",), (), None),
    ("RSI and MACD for ethereum", T, ("ETHUSDT",), (), None),
    ("trend of doge on the hourly chart", T, ("DOGEUSDT",), (), "1h"),
    ("is it near the support?", T, (), (), None),
    ("how risky is solana?", R, ("SOLUSDT",), (), None),
    ("ltc max drawdown and volatility", R, ("LTCUSDT",), (), None),
    ("bitcoin news", N, ("BTCUSDT",), (), None),
    ("what is the sentiment on ethereum today", N, ("ETHUSDT",), (), None),
    ("latest crypto headlines", N, (), (), None),
    ("which model forecasts bitcoin?", M, ("BTCUSDT",), (), None),
    ("how accurate are the eth predictions", M, ("ETHUSDT",), (), None),
    ("explain the btc forecast", M, ("BTCUSDT",), (), None),
    # chit-chat and nonsense
    ("help", H, (), (), None),
    ("hello", H, (), (), None),
    ("what can you do?", H, (), (), None),
    ("asdfghjkl", H, (), (), None),
    ("???", H, (), (), None),
    ("solid absolute adamant dotted", H, (), (), None),
]


def test_the_table_is_large_and_varied() -> None:
    assert len(QUESTIONS) >= 60
    assert {q[1] for q in QUESTIONS} == set(Intent)
    assert sum(bool(q[3]) for q in QUESTIONS) >= 12 and sum(len(q[2]) + len(q[3]) >= 2 for q in QUESTIONS) >= 10


@pytest.mark.parametrize(("question", "intent", "symbols", "unknown", "horizon"), QUESTIONS)
def test_parse(
    question: str, intent: Intent, symbols: tuple[str, ...], unknown: tuple[str, ...], horizon: str | None
) -> None:
    p = parse(question, tuple(DEFAULT_SYMBOLS))
    got = (p.intent, p.symbols, p.unknown, p.asked.label if p.asked else None)
    assert got == (intent, symbols, unknown, horizon), question


@pytest.mark.parametrize("question", [q for q, _, syms, unknown, _ in QUESTIONS if unknown and not syms])
async def test_a_coin_not_followed_is_named_and_never_answered_with_another_coins_data(
    services: Services, question: str
) -> None:
    a = await Assistant(services).ask(question)
    assert a.symbols == () and all(per == {} for per in a.facts.values()), question
    assert a.answer.startswith("coincast does not follow ") and "is at" not in a.answer
    assert not any(f"{s} is at" in a.answer for s in services.settings.symbols)


async def test_comparison_uses_exactly_the_coins_asked(services: Services) -> None:
    a = await Assistant(services).ask("compare BTC with XMR")
    assert a.symbols == ("BTCUSDT",) and set(a.facts["price"]) == {"BTCUSDT"}
    assert "ETHUSDT" not in a.answer.split("it follows")[1].split(".", 1)[1]
    assert a.answer.startswith("coincast does not follow XMRUSDT; it follows BTCUSDT, ETHUSDT, SOLUSDT.")
    b = await Assistant(services).ask("sol vs eth")
    assert b.symbols == ("SOLUSDT", "ETHUSDT") and set(b.facts["price"]) == {"SOLUSDT", "ETHUSDT"}
    c = await Assistant(services).ask("compare the coins")
    assert c.answer.startswith("You named no coins, so here are BTCUSDT, ETHUSDT, SOLUSDT.")


async def test_no_coin_named_says_which_coin_the_answer_is_about(services: Services) -> None:
    a = await Assistant(services).ask("what's the price right now?")
    assert a.symbols == ("BTCUSDT",) and a.answer.startswith("You named no coin, so here is BTCUSDT.")


@pytest.mark.parametrize(("question", "used", "note"), [
    ("btc forecast for the next hour", "1h", None),
    ("btc forecast", "1h", None),
    ("btc forecast in 30 minutes", "1h", "No live model forecasts 30m ahead for BTCUSDT (live horizons: 1h)"),
    ("btc in 5 min?", "1h", "No live model forecasts 5m ahead for BTCUSDT"),
    ("bitcoin tomorrow", "1h", "No live model forecasts 1d ahead for BTCUSDT"),
    ("btc next week", "1h", "No live model forecasts 1w ahead"),
])
async def test_horizons_map_to_the_models_that_exist(
    services: Services, question: str, used: str, note: str | None
) -> None:
    a = await Assistant(services).ask(question)  # only BTCUSDT 1h has a live model
    assert a.intent == "forecast" and a.horizon == used, question
    assert a.facts["forecast"]["BTCUSDT"]["horizon"] == used
    assert (note is None) == ("No live model" not in a.answer)
    if note:
        assert note in a.answer and "here is the nearest, 1h." in a.answer


async def test_a_coin_without_models_keeps_the_asked_horizon_and_points_to_the_models_page(
    services: Services,
) -> None:
    a = await Assistant(services).ask("eth forecast in 5 minutes")
    assert a.horizon == "5m" and "No live 5m forecast for ETHUSDT yet" in a.answer and "Models page" in a.answer
    b = await Assistant(services).ask("eth forecast in 2 days")
    assert b.horizon == "1h" and "there is none of 2d" in b.answer


async def test_coins_not_followed_are_looked_up_on_binance(services: Services) -> None:
    with FakeBinanceTicker({"XMRUSDT": (160.5, -2.25, 170.0, 150.25)}) as binance:
        lookup = BinanceLookup.from_url(binance.url, 2.0)
        try:
            a = await Assistant(services, lookup=lookup).ask("compare monero with moonrocket")
        finally:
            await lookup.close()
    assert binance.hits == ["XMRUSDT", "MOONROCKETUSDT"]
    assert a.symbols == () and a.facts["binance"]["XMRUSDT"]["price"] == 160.5
    assert "On Binance, XMRUSDT is at 160.50 USDT, -2.25% over 24 h (range 150.25 to 170.00)." in a.answer
    assert "Binance lists no MOONROCKETUSDT pair either." in a.answer
    assert a.sources == ["XMRUSDT 24 h ticker (Binance)"]


async def test_binance_out_of_reach_is_one_plain_sentence(services: Services) -> None:
    lookup = BinanceLookup.from_url("http://127.0.0.1:9", 1.0)  # discard port: nothing listens
    try:
        a = await Assistant(services, lookup=lookup).ask("pepe price")
    finally:
        await lookup.close()
    assert a.answer == ("coincast does not follow PEPEUSDT; it follows BTCUSDT, ETHUSDT, SOLUSDT. "
                        "Binance could not be reached to look up PEPEUSDT. Not financial advice.")


async def test_unreachable_news_is_one_plain_sentence(services: Services) -> None:
    news = NewsService(["http://127.0.0.1:9/feed.xml"], ("BTCUSDT",), timeout_s=1.0)
    a = await Assistant(services, news=news).ask("bitcoin news")
    assert a.answer == "No news available: the news sources could not be reached just now. Not financial advice."
    assert a.facts["news"]["errors"]  # the reason stays in the facts, for the API and the logs


_RAW = re.compile(r"Error|Exception|Traceback|errno|\*\*|`|^#|\]\(|https?://", re.M)


async def test_answers_have_no_markdown_or_raw_errors(services: Services) -> None:
    for question, *_ in QUESTIONS:
        a = await Assistant(services).ask(question)
        assert not _RAW.search(a.answer), (question, a.answer)
    with FakeLlm(lambda body: "## Bitcoin\n\n- **Price**: `90,000` USDT\n- see [chart](http://x.test/c)") as llm:
        a = await Assistant(services, ChatClient(llm.base_url, "m", None, 5.0)).ask("btc price")
    assert a.answer == "Bitcoin Price: 90,000 USDT see chart (http://x.test/c) Not financial advice."
    with FakeLlm(lambda body: "x", status=500) as llm:
        b = await Assistant(services, ChatClient(llm.base_url, "m", None, 5.0)).ask("btc price")
    assert b.answer.endswith("(The language model did not answer, so this is the built-in answer.)")
    assert not _RAW.search(b.answer) and "500" not in b.answer and b.llm["error"]


def test_plain_strips_markdown() -> None:
    assert plain("**BTC** is *up* and __ETH__ `flat`\n\n1. one\n2. two") == "BTC is up and ETH flat one two"
    assert plain("price 2*3*4 stays") == "price 2*3*4 stays"
