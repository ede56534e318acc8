"""Deterministic intent, symbol and horizon extraction from a plain-language market question.

Rules over word boundaries rather than a classifier: the vocabulary is small and closed (ten
coins, eight intents), answers must be reproducible, and the rules are tested on many phrasings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from coincast.domain import Interval


class Intent(StrEnum):
    PRICE = "price"
    FORECAST = "forecast"
    TECHNICAL = "technical"
    COMPARISON = "comparison"
    NEWS = "news"
    RISK = "risk"
    MODEL = "model"
    HELP = "help"


#: Coin names and tickers to the USDT pair they mean.
COIN_NAMES: dict[str, str] = {
    "bitcoin": "BTC",
    "btc": "BTC",
    "xbt": "BTC",
    "ethereum": "ETH",
    "ether": "ETH",
    "eth": "ETH",
    "binance coin": "BNB",
    "bnb": "BNB",
    "solana": "SOL",
    "sol": "SOL",
    "ripple": "XRP",
    "xrp": "XRP",
    "cardano": "ADA",
    "ada": "ADA",
    "dogecoin": "DOGE",
    "doge": "DOGE",
    "avalanche": "AVAX",
    "avax": "AVAX",
    "polkadot": "DOT",
    "dot": "DOT",
    "chainlink": "LINK",
    "link": "LINK",
    "litecoin": "LTC",
    "ltc": "LTC",
    "tron": "TRX",
    "trx": "TRX",
    "polygon": "MATIC",
    "matic": "MATIC",
    "toncoin": "TON",
    "shiba": "SHIB",
}

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

_HORIZONS: tuple[tuple[str, Interval], ...] = (
    (r"\b(next|in (an?|one|1)) hour\b|\b1 ?h(our)?\b|\bhourly\b|\bthis hour\b|\b60 ?min", Interval.H1),
    (r"\btomorrow\b|\bnext (day|24 ?h(ours)?)\b|\b1 ?d(ay)?\b|\bdaily\b|\b24 ?h(ours)?\b|\bin a day\b", Interval.D1),
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a question asks: the intent, the configured symbols named (in order) and a horizon."""

    question: str
    intent: Intent
    symbols: tuple[str, ...]
    horizon: Interval | None
    unknown: tuple[str, ...] = ()  # pairs named that are not configured


def extract_symbols(text: str, known: tuple[str, ...] | None, quote: str = "USDT") -> tuple[str, ...]:
    """Pairs named in ``text``, in order of first mention, limited to ``known`` pairs (None: any).

    Accepts pairs (``BTCUSDT``, ``btc/usdt``, ``BTC-USDT``), tickers (``btc``) and names
    (``bitcoin``); "eth and sol" gives both.
    """
    low = text.lower()
    found: list[tuple[int, str]] = []
    for m in re.finditer(r"\b([a-z]{2,6})[/\-]?(usdt|usdc|busd|usd)\b", low):
        found.append((m.start(), m.group(1).upper() + quote))
    for name, base in sorted(COIN_NAMES.items(), key=lambda kv: -len(kv[0])):
        for m in re.finditer(rf"(?<![a-z]){re.escape(name)}(?![a-z])", low):
            found.append((m.start(), base + quote))
    known_set = set(known) if known is not None else None
    out: list[str] = []
    for _, sym in sorted(found):
        if (known_set is None or sym in known_set) and sym not in out:
            out.append(sym)
    return tuple(out)


def extract_horizon(text: str) -> Interval | None:
    """The forecast horizon named in ``text`` (1h or 1d), or None."""
    low = text.lower()
    hits = [(m.start(), iv) for pat, iv in _HORIZONS if (m := re.search(pat, low))]
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


def parse(question: str, known: tuple[str, ...]) -> Parsed:
    """Intent, symbols and horizon of ``question`` over the configured pairs ``known``."""
    symbols = extract_symbols(question, known)
    unknown = tuple(s for s in extract_symbols(question, None) if s not in known)
    intent = classify(question, len(symbols) + len(unknown))
    return Parsed(question, intent, symbols, extract_horizon(question), unknown)
