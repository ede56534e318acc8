"""Deterministic intent, symbol and horizon extraction from a plain-language market question.

Rules over word boundaries rather than a classifier: the vocabulary is small (coins, eight
intents), answers must be reproducible, and the rules are tested on many phrasings. Coins come
from :mod:`coincast.assistant.coins`; horizons are any number of minutes, hours, days or weeks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from coincast.assistant.coins import COIN_NAMES, mentions
from coincast.domain import Interval

__all__ = ["COIN_NAMES", "Horizon", "Intent", "Parsed", "classify", "extract_horizon", "extract_symbols", "parse"]


class Intent(StrEnum):
    PRICE = "price"
    FORECAST = "forecast"
    TECHNICAL = "technical"
    COMPARISON = "comparison"
    NEWS = "news"
    RISK = "risk"
    MODEL = "model"
    HELP = "help"


# Checked in this order: the first intent whose pattern matches wins (more specific first).
_INTENT_PATTERNS: tuple[tuple[Intent, str], ...] = (
    (Intent.HELP, r"^\s*(help|\?)\s*$|what can you (do|answer)|how (do|can) i use|^\s*(hi|hello|hey)\b"),
    (
        Intent.MODEL,
        r"\b(which|what) model|\bmodels?\b.*\b(work|trained|accura|reliab|good|mase|track record)|"
        r"\bexplain\b.*\b(forecast|prediction|model)|\b(mase|track record|feature importance)\b|"
        r"how (accurate|reliable|good)",
    ),
    (Intent.NEWS, r"\b(news|headlines?|sentiment|articles?|mood|what are people saying)\b"),
    (Intent.RISK, r"\b(risk|risky|volatil\w*|drawdown|var|value at risk|sharpe|safe)\b"),
    (
        Intent.COMPARISON,
        r"\b(compare|comparison|versus|vs\.?|better|outperform\w*|which (coin|one)|"
        r"stronger|weaker)\b",
    ),
    (
        Intent.TECHNICAL,
        r"\b(rsi|macd|ema|sma|bollinger|atr|indicators?|technical|overbought|oversold|trend|"
        r"support|resistance|momentum|moving average)\b",
    ),
    (
        Intent.FORECAST,
        r"\b(forecast\w*|predict\w*|prediction|will\b.*\b(go|rise|fall|be|drop|reach)|going to|"
        r"outlook|expect\w*|next (hour|day|week)|tomorrow|future|up or down)\b",
    ),
    (Intent.PRICE, r"\b(price|worth|cost|trading at|how much|quote|value|change|up today|down today)\b"),
)

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10,
                 "twelve": 12, "fifteen": 15, "thirty": 30, "sixty": 60}
_DURATION = re.compile(  # "15m", "4 hours", "a day", "two-week"; a word number needs a space or hyphen
    r"\b(?:(\d+)\s*-?\s*|(" + "|".join(_NUMBER_WORDS) + r")(?:\s+|-))"
    r"(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\b"
)
#: Phrases naming a horizon without a number, checked after numbers ("in 4 hours" is not "hour").
_PHRASES: tuple[tuple[str, int], ...] = (
    (r"\bhalf (an|a) hour\b", 30 * 60_000),
    (r"\b(next|this|coming) minute\b|\bminute by minute\b", 60_000),
    (r"\b(next|this|coming) hour\b|\bhourly\b|\bwithin the hour\b", 3_600_000),
    (r"\btomorrow\b|\b(next|coming) day\b|\bdaily\b|\bby the end of (the|to)day\b|\btonight\b", 86_400_000),
    (r"\b(next|this|coming) week\b|\bweekly\b", 7 * 86_400_000),
    (r"\b(next|this|coming) month\b|\bmonthly\b", 30 * 86_400_000),
    (r"\b(next|this|coming) year\b|\byearly\b|\blong term\b", 365 * 86_400_000),
)


@dataclass(frozen=True, slots=True)
class Horizon:
    """A horizon a question asks about: its length and how it was written."""

    ms: int
    text: str

    @property
    def interval(self) -> Interval | None:
        """The candle interval of exactly this length, if there is one (``1h``), else None."""
        return next((iv for iv in Interval if iv.ms == self.ms), None)

    @property
    def label(self) -> str:
        """``5m``, ``4h``, ``1d``, ``2w`` when whole, else ``90m``."""
        for unit in ("w", "d", "h", "m"):
            if self.ms % _UNIT_MS[unit] == 0:
                return f"{self.ms // _UNIT_MS[unit]}{unit}"
        return f"{self.ms}ms"


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a question asks: the intent, the configured symbols named (in order) and a horizon."""

    question: str
    intent: Intent
    symbols: tuple[str, ...]
    asked: Horizon | None
    unknown: tuple[str, ...] = ()  # coins named that are not configured (pairs when the quote is known)

    @property
    def horizon(self) -> Interval | None:
        """The asked horizon as an interval (None when none was asked or none has that length)."""
        return self.asked.interval if self.asked else None


def extract_symbols(text: str, known: tuple[str, ...] | None, quote: str = "USDT") -> tuple[str, ...]:
    """Pairs named in ``text``, in order of first mention, limited to ``known`` pairs (None: any).

    Accepts pairs (``BTCUSDT``, ``btc/usdt``, ``BTC-USDT``), tickers (``btc``), names (``bitcoin``)
    and near-misses of names (``bitcon``); "eth and sol" gives both.
    """
    out = tuple(m.base + quote for m in mentions(text) if m.base != quote)  # "tether" is the quote itself
    return out if known is None else tuple(s for s in out if s in set(known))


def extract_horizon(text: str) -> Horizon | None:
    """The first horizon named in ``text``: a number and a unit, or a phrase ("tomorrow")."""
    low = text.lower()
    hits: list[tuple[int, Horizon]] = []
    for m in _DURATION.finditer(low):
        if low[:m.start()].endswith("half "):
            continue  # "half an hour" is a phrase below
        n = int(m.group(1)) if m.group(1) else _NUMBER_WORDS[m.group(2)]
        if n > 0:
            hits.append((m.start(), Horizon(n * _UNIT_MS[m.group(3)[0]], m.group().strip())))
    taken = [m.span() for m in _DURATION.finditer(low) if not low[:m.start()].endswith("half ")]
    for pattern, ms in _PHRASES:
        for m in re.finditer(pattern, low):
            if all(m.end() <= a or m.start() >= b for a, b in taken):
                hits.append((m.start(), Horizon(ms, m.group())))
    return min(hits, key=lambda h: h[0])[1] if hits else None


def classify(text: str, n_symbols: int) -> Intent:
    """The intent of ``text``; two or more coins with no other cue is a comparison."""
    low = text.lower()
    for intent, pattern in _INTENT_PATTERNS:
        if re.search(pattern, low):
            if (
                intent in (Intent.PRICE, Intent.TECHNICAL)
                and n_symbols >= 2
                and re.search(r"\b(compare|vs|versus|better)\b", low)
            ):
                return Intent.COMPARISON
            return intent
    if n_symbols >= 2:
        return Intent.COMPARISON
    return Intent.PRICE if n_symbols == 1 else Intent.HELP


def parse(question: str, known: tuple[str, ...], quote: str = "USDT") -> Parsed:
    """Intent, symbols and horizon of ``question`` over the configured pairs ``known``."""
    named = extract_symbols(question, None, quote)
    symbols = tuple(s for s in named if s in set(known))
    unknown = tuple(s for s in named if s not in set(known))
    intent = classify(question, len(named))
    asked = extract_horizon(question)
    if intent is Intent.PRICE and asked is not None and _AHEAD.search(question.lower()):
        intent = Intent.FORECAST  # "btc in half an hour": a price ahead is a forecast
    return Parsed(question, intent, symbols, asked, unknown)


_AHEAD = re.compile(r"\b(in|within|next|by|tomorrow|tonight|later|ahead)\b")
