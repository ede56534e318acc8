"""Crypto news from RSS feeds and NewsAPI, with article text and VADER sentiment, cached.

feedparser parses the feeds, trafilatura extracts article text from the pages (or from the feed's
own HTML content), vaderSentiment scores each article; all three come with the ``assistant`` extra.
Nothing here raises on a network failure: unreachable sources are reported in ``errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from coincast.assistant.intent import extract_symbols
from coincast.domain import ConfigError

log = logging.getLogger(__name__)
EXTRA_HINT = "pip install 'coincast[assistant]'"
MAX_ARTICLES = 40
RETRY_S = 60.0  # a round that found no article is kept at most this long (the network may come back)


def _require(module: str) -> Any:
    """Import an optional library of the ``assistant`` extra, saying how to install it when missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"news needs the optional library {module!r}; install it with {EXTRA_HINT}") from exc


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    url: str
    source: str
    published: str | None
    text: str
    symbols: tuple[str, ...]
    sentiment: float  # VADER compound score in [-1, 1]

    @property
    def label(self) -> str:
        return "positive" if self.sentiment >= 0.05 else "negative" if self.sentiment <= -0.05 else "neutral"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.text[:400]
        d["symbols"] = list(self.symbols)
        d["label"] = self.label
        return d


@dataclass(slots=True)
class NewsDigest:
    """Articles fetched in one round, and which sources failed."""

    articles: list[Article] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fetched_ms: int = 0


def label_of(score: float) -> str:
    return "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"


class NewsService:
    """Fetches, extracts, scores and caches news for ``ttl_s`` seconds.

    Args:
        feeds: RSS/Atom feed URLs.
        symbols: the configured pairs articles are matched to.
        newsapi_url: NewsAPI ``/v2/everything`` endpoint; used only with ``newsapi_key``.
        newsapi_key: NewsAPI key, or None.
        ttl_s: cache lifetime.
        timeout_s: per-request timeout.
        fetch_pages: also download each article's page for its full text (else the feed's content).
        now: monotonic seconds for the cache (tests pass a fake).
    """

    def __init__(
        self,
        feeds: Sequence[str],
        symbols: tuple[str, ...],
        *,
        newsapi_url: str = "",
        newsapi_key: str | None = None,
        ttl_s: float = 900.0,
        timeout_s: float = 5.0,
        fetch_pages: bool = True,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feeds = tuple(feeds)
        self.symbols = symbols
        self.newsapi_url, self.newsapi_key = newsapi_url, newsapi_key
        self.ttl_s, self.timeout_s, self.fetch_pages = ttl_s, timeout_s, fetch_pages
        self._cache: NewsDigest | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()
        self._now = now

    async def digest(self) -> NewsDigest:
        """The cached digest, fetched again once older than ``ttl_s``."""
        async with self._lock:
            ttl = self.ttl_s if self._cache is None or self._cache.articles else min(self.ttl_s, RETRY_S)
            if self._cache is None or self._now() - self._cached_at > ttl:
                self._cache = await self._fetch()
                self._cached_at = self._now()
            return self._cache

    async def summary(self, symbols: Sequence[str], limit: int = 5) -> dict[str, Any]:
        """Headlines and aggregated sentiment for ``symbols`` (all articles about crypto when empty)."""
        try:
            d = await self.digest()
        except ConfigError as exc:
            return {"available": False, "detail": str(exc), "articles": [], "by_symbol": {}}
        if not d.articles:
            why = "; ".join(d.errors) if d.errors else "the sources returned no articles"
            return {
                "available": False,
                "detail": f"no news source is reachable ({why})",
                "articles": [],
                "by_symbol": {},
                "errors": d.errors,
            }
        wanted = set(symbols)
        chosen = [a for a in d.articles if not wanted or wanted & set(a.symbols)]
        by_symbol: dict[str, Any] = {}
        for sym in symbols or sorted({s for a in d.articles for s in a.symbols}):
            scores = [a.sentiment for a in d.articles if sym in a.symbols]
            if scores:
                mean = sum(scores) / len(scores)
                by_symbol[sym] = {
                    "articles": len(scores),
                    "sentiment": round(mean, 3),
                    "label": label_of(mean),
                    "positive": sum(s >= 0.05 for s in scores),
                    "negative": sum(s <= -0.05 for s in scores),
                }
        overall = sum(a.sentiment for a in chosen) / len(chosen) if chosen else None
        return {
            "available": True,
            "articles_total": len(d.articles),
            "matched": len(chosen),
            "sentiment": None if overall is None else round(overall, 3),
            "label": None if overall is None else label_of(overall),
            "by_symbol": by_symbol,
            "articles": [a.as_dict() for a in chosen[:limit]],
            "errors": d.errors,
        }

    async def _fetch(self) -> NewsDigest:
        feedparser = _require("feedparser")
        vader = _require("vaderSentiment.vaderSentiment").SentimentIntensityAnalyzer()
        trafilatura = _require("trafilatura")
        digest = NewsDigest(fetched_ms=int(time.time() * 1000))
        raw: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True) as client:
            results = await asyncio.gather(*(self._get(client, u) for u in self.feeds), return_exceptions=True)
            for url, res in zip(self.feeds, results, strict=True):
                if isinstance(res, BaseException):
                    log.warning("news feed failed", extra={"feed": url, "error": repr(res)})
                    digest.errors.append(f"{_host(url)}: {failure(res)}")
                    continue
                parsed = feedparser.parse(res)
                name = parsed.feed.get("title") or url
                for e in parsed.entries:
                    html = (e.get("content") or [{}])[0].get("value") or e.get("summary") or ""
                    raw.append(
                        {
                            "title": e.get("title", ""),
                            "url": e.get("link", ""),
                            "source": name,
                            "published": e.get("published"),
                            "html": html,
                        }
                    )
            if self.newsapi_key:
                try:
                    raw.extend(await self._newsapi(client))
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("NewsAPI failed", extra={"error": repr(exc)})
                    digest.errors.append(f"NewsAPI: {failure(exc)}")
            raw = list({r["url"] or r["title"]: r for r in raw}.values())[:MAX_ARTICLES]
            pages = await asyncio.gather(
                *(self._get(client, r["url"]) if self.fetch_pages and r["url"] else _none() for r in raw),
                return_exceptions=True,
            )
        for r, page in zip(raw, pages, strict=True):
            text = None
            for html in (page if isinstance(page, str) else None, r["html"]):
                if html:
                    text = await asyncio.to_thread(trafilatura.extract, html) or None
                    if text:
                        break
            text = text or _strip(r["html"])
            body = f"{r['title']}. {text}"
            digest.articles.append(
                Article(
                    r["title"],
                    r["url"],
                    r["source"],
                    r["published"],
                    text,
                    extract_symbols(body, self.symbols),
                    float(vader.polarity_scores(body)["compound"]),
                )
            )
        return digest

    async def _get(self, client: httpx.AsyncClient, url: str) -> str:
        resp = await client.get(url, headers={"User-Agent": "coincast-assistant"})
        resp.raise_for_status()
        return resp.text

    async def _newsapi(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        resp = await client.get(
            self.newsapi_url,
            params={"q": "crypto OR bitcoin OR ethereum", "language": "en", "sortBy": "publishedAt", "pageSize": 20},
            headers={"X-Api-Key": self.newsapi_key or ""},
        )
        resp.raise_for_status()
        return [
            {
                "title": a.get("title") or "",
                "url": a.get("url") or "",
                "source": (a.get("source") or {}).get("name") or "NewsAPI",
                "published": a.get("publishedAt"),
                "html": a.get("content") or a.get("description") or "",
            }
            for a in resp.json().get("articles", [])
        ]


async def _none() -> None:
    return None


def _strip(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def failure(exc: BaseException) -> str:
    """What went wrong, fit for anyone to read: an HTTP status or the kind of error, never the
    exception's text (it can hold URLs with keys); the server log has the details."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        return f"unreachable ({type(exc).__name__})"
    return f"unusable answer ({type(exc).__name__})"


def _host(url: str) -> str:
    return httpx.URL(url).host or "feed"
