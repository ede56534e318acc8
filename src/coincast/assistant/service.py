"""The assistant: question → intent and entities → facts from the services → answer.

``Assistant.ask`` always answers from the template over the facts; with a chat API configured the
model rephrases the same facts, and any failure of it falls back to the template, saying so.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coincast.assistant import facts as F
from coincast.assistant.intent import Horizon, Intent, Parsed, parse
from coincast.assistant.llm import ChatClient, LlmError
from coincast.assistant.news import NewsService
from coincast.assistant.templates import NOT_ADVICE, plain, render, unknown_line
from coincast.domain import Interval, InvalidRequest
from coincast.registry.base import live_key

if TYPE_CHECKING:
    from coincast.api.app import Services
    from coincast.assistant.lookup import BinanceLookup

log = logging.getLogger(__name__)
MAX_QUESTION = 500
MAX_SYMBOLS = 5
_ADVICE = re.compile(
    r"\b(should i (buy|sell|invest|hold)|is it a good (time|idea) to (buy|sell|invest)|"
    r"worth (buying|investing))\b",
    re.I,
)


class EmptyQuestion(InvalidRequest):
    code = "empty_question"


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with what it was built from (the API returns it as is)."""

    answer: str
    intent: str
    symbols: tuple[str, ...]
    horizon: str
    facts: dict[str, Any]
    sources: list[str]
    llm: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "intent": self.intent,
            "symbols": list(self.symbols),
            "horizon": self.horizon,
            "facts": self.facts,
            "sources": self.sources,
            "llm": self.llm,
        }


class Assistant:
    """Answers market questions from ``services`` (see the module docstring).

    Args:
        services: the running platform's store, live state, board and models.
        chat: an LLM client, or None for template answers.
        news: the news service, or None when news is off.
    """

    def __init__(
        self, services: Services, chat: ChatClient | None = None, news: NewsService | None = None,
        lookup: BinanceLookup | None = None,
    ) -> None:
        self.services, self.chat, self.news, self.lookup = services, chat, news, lookup
        self.symbols: tuple[str, ...] = tuple(services.settings.symbols)

    @classmethod
    def from_services(cls, services: Services) -> Assistant:
        """Build the chat client and news service from ``services.settings.assistant``."""
        a = services.settings.assistant
        chat = None
        if a.llm_url:
            key = a.llm_api_key.get_secret_value() if a.llm_api_key else None
            chat = ChatClient(a.llm_url, a.llm_model, key, a.llm_timeout_s)
        news = NewsService(
            a.news_feeds,
            tuple(services.settings.symbols),
            newsapi_url=a.newsapi_url,
            newsapi_key=a.newsapi_key.get_secret_value() if a.newsapi_key else None,
            ttl_s=a.news_ttl_s,
            timeout_s=a.news_timeout_s,
        )
        lookup = None
        try:
            from coincast.assistant.lookup import BinanceLookup  # the Binance client comes with the ingest extra
        except ImportError:
            pass
        else:
            b = services.settings.binance
            lookup = BinanceLookup.from_url(b.rest_url, b.probe_timeout_s)
        return cls(services, chat, news, lookup)

    def default_symbols(self, parsed: Parsed) -> tuple[str, tuple[str, ...]]:
        """The coins to answer about and, when the question named none, a sentence saying which.

        Only coins the question names are used, except when it names none at all: then a
        comparison takes the three largest followed coins and other questions Bitcoin, and say so.
        """
        syms = parsed.symbols[:MAX_SYMBOLS]
        if syms or parsed.unknown or parsed.intent in (Intent.HELP, Intent.NEWS):
            return "", syms
        if parsed.intent is Intent.COMPARISON:
            majors = [s for s in ("BTCUSDT", "ETHUSDT") if s in self.symbols]
            syms = tuple(dict.fromkeys([*majors, *self.symbols]))[:3]
            return f"You named no coins, so here are {', '.join(syms)}.", syms
        syms = ("BTCUSDT",) if "BTCUSDT" in self.symbols else self.symbols[:1]
        return f"You named no coin, so here is {syms[0]}.", syms

    def live_horizons(self, symbol: str) -> list[Interval]:
        """Horizons with a live model for ``symbol``, shortest first."""
        if self.services.models is None:
            return []
        live = self.services.models.registry.live()
        return sorted((iv for iv in Interval if live_key(symbol, iv.value) in live), key=lambda iv: iv.ms)

    def choose_horizon(self, asked: Horizon | None, symbols: tuple[str, ...]) -> tuple[Interval, str]:
        """The forecast horizon to answer with, and a sentence when it is not the one asked for.

        An asked horizon that a live model serves is used as is; otherwise the nearest live one
        (on a log scale: 30 minutes is nearer 1 hour than 5 minutes), saying so. With nothing
        asked: 1 hour when live, else the shortest live horizon, else 1 hour.
        """
        live = self.live_horizons(symbols[0]) if symbols else []
        if asked is None:
            if not live or Interval.H1 in live:
                return Interval.H1, ""
            return live[0], ""
        if asked.interval is not None and (asked.interval in live or not live):
            return asked.interval, ""
        if not live:
            return Interval.H1, (f"coincast forecasts whole candle intervals (1m, 5m, 1h, 1d); "
                                 f"there is none of {asked.label}.")
        best = min(live, key=lambda iv: abs(math.log(iv.ms / asked.ms)))
        served = ", ".join(iv.value for iv in live)
        return best, (f"No live model forecasts {asked.label} ahead for {symbols[0]} (live horizons: {served}); "
                      f"here is the nearest, {best.value}.")

    async def ask(self, question: str) -> Answer:
        """Answer ``question``.

        Raises:
            EmptyQuestion: blank or longer than 500 characters.
        """
        q = question.strip()
        if not q or len(q) > MAX_QUESTION:
            raise EmptyQuestion(f"ask a question of 1 to {MAX_QUESTION} characters")
        parsed = parse(q, self.symbols)
        note, symbols = self.default_symbols(parsed)
        if parsed.intent in (Intent.FORECAST, Intent.MODEL):
            horizon, horizon_note = self.choose_horizon(parsed.asked, symbols)
        else:
            horizon, horizon_note = parsed.horizon or Interval.H1, ""
        if symbols or not parsed.unknown:
            facts, sources = await self.gather(parsed.intent, symbols, horizon)
            draft = render(parsed.intent, symbols, horizon.value, facts)
        else:  # only coins it does not follow: nothing of its own to add
            facts, sources, draft = {}, [], NOT_ADVICE
        if parsed.unknown:
            looked = [await self.lookup.ticker(p) for p in parsed.unknown[:MAX_SYMBOLS]] if self.lookup else []
            if looked:
                facts["binance"] = {f["symbol"]: f for f in looked}
                sources.extend(f"{f['symbol']} 24 h ticker (Binance)" for f in looked if f["status"] == "found")
            draft = unknown_line(parsed.unknown, self.symbols, looked) + " " + draft
        draft = " ".join(x for x in (note, horizon_note, draft) if x)
        if _ADVICE.search(q):
            draft = "I can't tell you whether to buy or sell; here is what the data says. " + draft
        answer = draft
        llm: dict[str, Any] = {"used": False}
        if self.chat is not None and parsed.intent is not Intent.HELP:
            try:
                answer = plain(await self.chat.phrase(q, facts, draft))
                if NOT_ADVICE.lower() not in answer.lower():
                    answer = f"{answer} {NOT_ADVICE}"
                llm = {"used": True, "model": self.chat.model}
            except LlmError as exc:
                log.warning("assistant LLM failed, answering from the template: %s (%r)", exc, exc.__cause__)
                answer = f"{draft} (The language model did not answer, so this is the built-in answer.)"
                llm = {"used": False, "fallback": True, "error": str(exc)}
        return Answer(answer, parsed.intent.value, symbols, horizon.value, facts, sources, llm)

    async def gather(
        self, intent: Intent, symbols: tuple[str, ...], horizon: Interval
    ) -> tuple[dict[str, Any], list[str]]:
        """The facts ``intent`` needs, keyed by kind then symbol, and the sources they came from."""
        s = self.services
        kinds: dict[Intent, tuple[str, ...]] = {
            Intent.PRICE: ("price",),
            Intent.FORECAST: ("price", "forecast"),
            Intent.TECHNICAL: ("technical",),
            Intent.COMPARISON: ("price", "risk"),
            Intent.RISK: ("risk",),
            Intent.MODEL: ("model", "forecast"),
            Intent.NEWS: (),
            Intent.HELP: (),
        }
        facts: dict[str, Any] = {}
        for kind in kinds[intent]:
            per: dict[str, Any] = {}
            for sym in symbols:
                if kind == "price":
                    value = await F.price(s, sym)
                elif kind == "technical":
                    value = await F.technical_best(s, sym)
                elif kind == "risk":
                    value = await F.risk(s, sym)
                elif kind == "forecast":
                    value = await F.forecast(s, sym, horizon)
                else:
                    value = await F.model(s, sym, horizon)
                if value is not None:
                    per[sym] = value
            facts[kind] = per
        sources = _sources(facts)
        if intent is Intent.NEWS:
            if self.news is None:
                facts["news"] = {
                    "available": False,
                    "detail": "news is not configured",
                    "articles": [],
                    "by_symbol": {},
                }
            else:
                facts["news"] = await self.news.summary(symbols)
                sources.extend(a["url"] for a in facts["news"]["articles"] if a.get("url"))
        return facts, sources


def _sources(facts: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for kind, per in facts.items():
        for sym, v in per.items():
            if kind == "price":
                out.append(f"{sym} ticker ({v['source']})")
            elif kind == "technical":
                out.append(f"{sym} {v['interval']} indicators ({v['source']})")
            elif kind == "risk":
                out.append(f"{sym} {v['bars']} stored 1h candles")
            elif kind == "forecast":
                out.append(f"{sym} live forecast {v['model_id']} and its scored predictions")
            elif kind == "model":
                out.append(f"model registry: {v['model_id']}")
    return out
