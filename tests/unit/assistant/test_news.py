"""News from a local RSS feed and NewsAPI: text extraction, sentiment, caching, offline."""

from __future__ import annotations

import sys

import pytest
from tests.fakes.news_server import FakeNews

from coincast.api.app import Services
from coincast.assistant.news import NewsService
from coincast.assistant.service import Assistant

SYMS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
RSS = [
    (
        "Bitcoin rallies to a record high",
        "Bitcoin surged strongly today. Traders are thrilled and optimistic about "
        "the great gains. Analysts praise the excellent momentum",
    ),
    (
        "Ethereum hit by exploit, prices crash",
        "Ethereum suffered a terrible hack. Investors panic as losses mount "
        "and fear spreads. The crash is awful for holders",
    ),
    ("Bitcoin miners report strong profits", "Bitcoin miners enjoy excellent profits and a great quarter"),
]
NEWSAPI = [("Solana outage frustrates users", "Solana network failure causes anger, losses and bad reviews")]


async def test_feed_and_newsapi_articles_with_text_and_sentiment() -> None:
    with FakeNews(RSS, NEWSAPI, api_key="k") as site:
        news = NewsService([site.url + "/feed.xml"], SYMS, newsapi_url=site.url + "/v2/everything", newsapi_key="k")
        s = await news.summary(("BTCUSDT", "ETHUSDT", "SOLUSDT"))
        again = await news.summary(("BTCUSDT",))
        hits = dict(site.hits)
    assert s["available"] is True and s["articles_total"] == 4 and s["errors"] == []
    btc, eth, sol = (s["by_symbol"][k] for k in SYMS)
    assert btc["articles"] == 2 and btc["label"] == "positive" and btc["positive"] == 2
    assert eth["articles"] == 1 and eth["label"] == "negative" and eth["sentiment"] < -0.5
    assert sol["label"] == "negative"
    first = next(a for a in s["articles"] if a["title"] == RSS[0][0])
    assert "Analysts praise the excellent momentum" in first["text"]  # from the page, not the 80-char summary
    assert "Home | Markets" not in first["text"]  # boilerplate removed
    assert again["matched"] == 2 and hits["/feed.xml"] == 1 and hits["/v2/everything"] == 1  # cached


async def test_unreachable_sources_are_reported_not_raised() -> None:
    with FakeNews(RSS, api_key="k") as site:
        bad_key = NewsService([], SYMS, newsapi_url=site.url + "/v2/everything", newsapi_key="wrong")
        s = await bad_key.summary(("BTCUSDT",))
    assert s["available"] is False and "401" in s["detail"]
    assert s["errors"] == ["NewsAPI: HTTP 401"] and "everything" not in s["detail"] and "wrong" not in s["detail"]
    offline = NewsService(["http://127.0.0.1:9/feed.xml"], SYMS, timeout_s=2.0)
    s = await offline.summary(())
    assert s["available"] is False and s["detail"].startswith("no news source is reachable")
    # anyone may ask: the reason is a host and a kind of failure, never a URL or exception text
    assert s["errors"] == ["127.0.0.1: unreachable (ConnectError)"], s["errors"]
    assert "http" not in s["detail"] and "Errno" not in s["detail"] and "/feed.xml" not in s["detail"]


async def test_news_answer_cites_sentiment_and_headline(services: Services) -> None:
    with FakeNews(RSS) as site:
        news = NewsService([site.url + "/feed.xml"], SYMS)
        a = await Assistant(services, news=news).ask("what is the news sentiment on bitcoin?")
    s = a.facts["news"]["by_symbol"]["BTCUSDT"]
    assert a.intent == "news" and f"{s['sentiment']:+.3f} over 2 articles" in a.answer
    assert "BTCUSDT news sentiment is positive" in a.answer and 'Latest: "Bitcoin' in a.answer
    assert any(u.startswith(site.url + "/article/") for u in a.sources)


async def test_cache_keeps_articles_for_the_ttl_and_retries_an_empty_round_sooner() -> None:
    clock = [0.0]
    with FakeNews([]) as site:
        news = NewsService([site.url + "/feed.xml"], SYMS, ttl_s=900.0, now=lambda: clock[0])
        assert (await news.summary(()))["available"] is False
        site.articles.extend(RSS)
        clock[0] = 30.0
        assert (await news.summary(()))["available"] is False  # within the 60 s retry delay
        clock[0] = 61.0
        assert (await news.summary(()))["articles_total"] == 3  # fetched again
        clock[0] = 800.0
        await news.summary(())
        assert site.hits["/feed.xml"] == 2  # articles are kept for the whole ttl
        clock[0] = 962.0
        await news.summary(())
        assert site.hits["/feed.xml"] == 3


async def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "feedparser", None)  # what an install without the extra looks like
    s = await NewsService(["http://127.0.0.1:9/feed.xml"], SYMS).summary(())
    assert s["available"] is False and "pip install 'coincast[assistant]'" in s["detail"]
    assert "feedparser" in s["detail"]
