"""The assistant: question → intent and entities → facts from the services → answer.

``Assistant.ask`` always answers from the template over the facts; with a chat API configured the
model rephrases the same facts, and any failure of it falls back to the template, saying so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coincast.assistant import facts as F
from coincast.assistant.intent import Intent, Parsed, parse
from coincast.assistant.llm import ChatClient, LlmError
from coincast.assistant.news import NewsService
from coincast.assistant.templates import NOT_ADVICE, render
from coincast.domain import Interval, InvalidRequest

if TYPE_CHECKING:
    from coincast.api.app import Services

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

    def __init__(self, services: Services, chat: ChatClient | None = None, news: NewsService | None = None) -> None:
        self.services, self.chat, self.news = services, chat, news
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
        return cls(services, chat, news)

    def default_symbols(self, parsed: Parsed) -> tuple[str, ...]:
        syms = parsed.symbols[:MAX_SYMBOLS]
        if parsed.intent is Intent.COMPARISON and len(syms) < 2:
            extra = [s for s in ("BTCUSDT", "ETHUSDT", *self.symbols) if s in self.symbols and s not in syms]
            syms = (*syms, *extra[: 3 - len(syms)])
        if not syms and not parsed.unknown and parsed.intent not in (Intent.HELP, Intent.NEWS):
            syms = ("BTCUSDT",) if "BTCUSDT" in self.symbols else self.symbols[:1]
        return syms

    async def ask(self, question: str) -> Answer:
        """Answer ``question``.

        Raises:
            EmptyQuestion: blank or longer than 500 characters.
        """
        q = question.strip()
        if not q or len(q) > MAX_QUESTION:
            raise EmptyQuestion(f"ask a question of 1 to {MAX_QUESTION} characters")
        parsed = parse(q, self.symbols)
        symbols = self.default_symbols(parsed)
        horizon = parsed.horizon or Interval.H1
        facts, sources = await self.gather(parsed.intent, symbols, horizon)
        draft = render(parsed.intent, symbols, horizon.value, facts)
        if parsed.unknown:
            draft = f"coincast does not follow {', '.join(parsed.unknown)}; it follows {', '.join(self.symbols)}. " + (
                draft if symbols or parsed.intent is Intent.NEWS else NOT_ADVICE
            )
        if _ADVICE.search(q):
            draft = "I can't tell you whether to buy or sell; here is what the data says. " + draft
        answer = draft
        llm: dict[str, Any] = {"used": False}
        if self.chat is not None and parsed.intent is not Intent.HELP:
            try:
                answer = await self.chat.phrase(q, facts, draft)
                if NOT_ADVICE.lower() not in answer.lower():
                    answer = f"{answer} {NOT_ADVICE}"
                llm = {"used": True, "model": self.chat.model}
            except LlmError as exc:
                log.warning("assistant LLM failed, answering from the template: %s", exc)
                answer = f"{draft} (The language model was unavailable: {exc}; this is the template answer.)"
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
