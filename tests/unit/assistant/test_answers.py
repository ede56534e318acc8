"""Template answers cite the real numbers of a hand-made market."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.unit.assistant.conftest import N, closes, hourly, make_services

from coincast.api.app import Services
from coincast.assistant.service import Assistant, EmptyQuestion
from coincast.assistant.templates import money, pct
from coincast.domain import Interval
from coincast.store.duckdb import DuckDBStore
from coincast.stream.indicators import LiveIndicators


async def test_price_answer_cites_last_close_and_24h_change(services: Services) -> None:
    a = await Assistant(services).ask("what's the price of bitcoin?")
    bars = hourly("BTCUSDT")[-24:]
    change = round((bars[-1].close / bars[0].open - 1) * 100, 2)
    assert a.intent == "price" and a.symbols == ("BTCUSDT",)
    assert money(bars[-1].close) in a.answer and pct(change) in a.answer
    assert a.facts["price"]["BTCUSDT"]["price"] == bars[-1].close
    assert a.answer.endswith("Not financial advice.")
    assert a.sources == ["BTCUSDT ticker (store 1h)"]


async def test_forecast_answer_has_bounds_and_live_mase(services: Services) -> None:
    a = await Assistant(services).ask("what is the bitcoin forecast for the next hour?")
    last = float(closes("BTCUSDT")[-1])
    predicted = round(last * 1.003, 2)
    f = a.facts["forecast"]["BTCUSDT"]
    assert (a.intent, a.horizon) == ("forecast", "1h")
    assert f["predicted_price"] == predicted and f["track_record"]["n"] == 3
    assert f["track_record"]["mase"] == pytest.approx(1 / (3.5 / 3), abs=1e-4)
    assert money(predicted) in a.answer and money(predicted * 0.99) in a.answer and money(predicted * 1.01) in a.answer
    assert "MASE 0.857" in a.answer and "beats no-change" in a.answer and "90% interval" in a.answer


async def test_forecast_without_a_model_says_how_to_get_one(services: Services) -> None:
    a = await Assistant(services).ask("ETH forecast for tomorrow")
    assert a.horizon == "1d" and a.facts["forecast"] == {}
    assert "No live 1d forecast for ETHUSDT" in a.answer and "Models page" in a.answer and "coincast" not in a.answer
    assert money(float(closes("ETHUSDT")[-1])) in a.answer  # still gives the price


async def test_technical_answer_matches_indicators_on_the_candles(services: Services) -> None:
    a = await Assistant(services).ask("is solana overbought? rsi please")
    ind = LiveIndicators("SOLUSDT", Interval.H1)
    for c in hourly("SOLUSDT")[-200:]:
        ind.update(c)
    rsi = ind.values["rsi_14"]
    assert rsi is not None
    assert a.intent == "technical" and f"RSI 14 is {rsi:,.1f}" in a.answer
    assert a.facts["technical"]["SOLUSDT"]["rsi_14"] == round(rsi, 4)
    assert a.facts["technical"]["SOLUSDT"]["trend"] in {"up", "down", "sideways"}


async def test_risk_answer_matches_numpy(services: Services) -> None:
    a = await Assistant(services).ask("how risky is ETH?")
    c = closes("ETHUSDT")
    r = np.diff(np.log(c))
    vol = np.std(r, ddof=1) * math.sqrt(24 * 365) * 100
    dd = (c / np.maximum.accumulate(c) - 1).min() * 100
    assert a.facts["risk"]["ETHUSDT"]["bars"] == N
    assert pct(round(vol, 2), sign=False) in a.answer and pct(round(dd, 2)) in a.answer


async def test_comparison_names_strongest_and_weakest(services: Services) -> None:
    a = await Assistant(services).ask("compare eth and sol")
    ch = {s: a.facts["price"][s]["change_24h_pct"] for s in ("ETHUSDT", "SOLUSDT")}
    best = max(ch, key=lambda s: ch[s])
    assert a.intent == "comparison" and a.symbols == ("ETHUSDT", "SOLUSDT")
    assert f"Strongest over 24 h: {best} ({pct(ch[best])})" in a.answer


async def test_model_answer_cites_the_registry(services: Services) -> None:
    a = await Assistant(services).ask("which model forecasts bitcoin?")
    assert "lightgbm" in a.answer and "BTCUSDT-1h-lgbm-0001" in a.answer and "3 features" in a.answer
    assert "mase 0.970" in a.answer and "2026-01-01" in a.answer


async def test_advice_questions_get_facts_not_advice(services: Services) -> None:
    a = await Assistant(services).ask("should I buy bitcoin now?")
    assert a.answer.startswith("I can't tell you whether to buy or sell")
    assert "Not financial advice." in a.answer


async def test_help_and_empty_questions(services: Services) -> None:
    a = await Assistant(services).ask("help")
    assert a.intent == "help" and "forecast" in a.answer and a.facts == {}
    with pytest.raises(EmptyQuestion):
        await Assistant(services).ask("   ")


async def test_news_without_a_service_says_so(services: Services) -> None:
    a = await Assistant(services).ask("bitcoin news")
    assert a.facts["news"]["available"] is False and "No news available" in a.answer


async def test_technical_falls_back_to_minute_candles_on_a_fresh_install(tmp_path: Path) -> None:
    store = DuckDBStore.open(":memory:")
    try:
        await store.upsert(hourly("BTCUSDT")[:3])
        minutes = [replace(c, interval=Interval.M1, open_ms=c.open_ms // 60) for c in hourly("BTCUSDT")[:120]]
        await store.upsert(minutes)
        services = make_services(tmp_path, store, intervals=(Interval.M1, Interval.H1))
        a = await Assistant(services).ask("btc rsi")
        t = a.facts["technical"]["BTCUSDT"]
        assert t["interval"] == "1m" and t["rsi_14"] is not None and "BTCUSDT 1m: RSI 14 is" in a.answer
    finally:
        await store.close()


async def test_coins_that_are_not_followed_are_named_not_replaced_by_bitcoin(services: Services) -> None:
    a = await Assistant(services).ask("what is the dogecoin price?")
    assert a.symbols == () and a.facts == {}
    assert a.answer.startswith("coincast does not follow DOGEUSDT; it follows BTCUSDT, ETHUSDT, SOLUSDT.")
    a = await Assistant(services).ask("compare doge and eth")
    assert "does not follow DOGEUSDT" in a.answer and "ETHUSDT" in a.symbols
