"""Which coins a question names: names, tickers, pairs, typos, and coins nobody listed.

The assistant must never answer about a coin other than the one asked about, so recognising a
coin it does *not* follow matters as much as recognising one it does. Three nets, in order:

1. a vocabulary of coin names and tickers (the majors plus a hundred or so others);
2. near-misses of the longer names (``bitcon``, ``etherium``), by :mod:`difflib` similarity;
3. anything written like a ticker: a pair (``abcusdt``), an upper-case token that is not a
   common acronym (``WIF``), or the word after "price of" / "forecast for" / "compare … with"
   that is not an ordinary word.

Tickers that are also English words (``near``, ``op``, ``one``, ``gas``…) only count when written
in capitals or as a pair, so "near the support" is not NEAR.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

#: Coin names and tickers to the base asset they mean.
COIN_NAMES: dict[str, str] = {
    "bitcoin": "BTC", "btc": "BTC", "xbt": "BTC", "bitcoins": "BTC",
    "ethereum": "ETH", "ether": "ETH", "eth": "ETH",
    "binance coin": "BNB", "bnb": "BNB",
    "solana": "SOL", "sol": "SOL",
    "ripple": "XRP", "xrp": "XRP",
    "cardano": "ADA", "ada": "ADA",
    "dogecoin": "DOGE", "doge": "DOGE",
    "polkadot": "DOT", "dot": "DOT",
    "litecoin": "LTC", "ltc": "LTC",
    "chainlink": "LINK", "link": "LINK",
    "avalanche": "AVAX", "avax": "AVAX",
    "tron": "TRX", "trx": "TRX",
    "polygon": "POL", "matic": "POL", "pol": "POL",
    "toncoin": "TON", "ton": "TON",
    "shiba inu": "SHIB", "shiba": "SHIB", "shib": "SHIB",
    "pepe": "PEPE", "pepecoin": "PEPE",
    "monero": "XMR", "xmr": "XMR",
    "stellar": "XLM", "xlm": "XLM",
    "cosmos": "ATOM", "atom": "ATOM",
    "uniswap": "UNI", "uni": "UNI",
    "near protocol": "NEAR", "near": "NEAR",
    "aptos": "APT", "apt": "APT",
    "arbitrum": "ARB", "arb": "ARB",
    "optimism": "OP", "op": "OP",
    "sui": "SUI",
    "filecoin": "FIL", "fil": "FIL",
    "internet computer": "ICP", "icp": "ICP",
    "hedera": "HBAR", "hbar": "HBAR",
    "ethereum classic": "ETC", "etc": "ETC",
    "bitcoin cash": "BCH", "bch": "BCH",
    "kaspa": "KAS", "kas": "KAS",
    "render": "RENDER", "rndr": "RENDER",
    "injective": "INJ", "inj": "INJ",
    "sei": "SEI",
    "bonk": "BONK",
    "dogwifhat": "WIF", "wif": "WIF",
    "floki": "FLOKI",
    "algorand": "ALGO", "algo": "ALGO",
    "vechain": "VET", "vet": "VET",
    "aave": "AAVE",
    "maker": "MKR", "mkr": "MKR",
    "the graph": "GRT", "grt": "GRT",
    "fantom": "FTM", "ftm": "FTM",
    "tezos": "XTZ", "xtz": "XTZ",
    "eos": "EOS",
    "iota": "IOTA",
    "zcash": "ZEC", "zec": "ZEC",
    "dash": "DASH",
    "neo": "NEO",
    "theta": "THETA",
    "the sandbox": "SAND", "sand": "SAND",
    "decentraland": "MANA", "mana": "MANA",
    "axie infinity": "AXS", "axs": "AXS",
    "gala": "GALA",
    "chiliz": "CHZ", "chz": "CHZ",
    "curve": "CRV", "crv": "CRV",
    "lido": "LDO", "ldo": "LDO",
    "worldcoin": "WLD", "wld": "WLD",
    "celestia": "TIA", "tia": "TIA",
    "jupiter": "JUP", "jup": "JUP",
    "ondo": "ONDO",
    "official trump": "TRUMP", "trump coin": "TRUMP",
    "tether": "USDT", "usdt": "USDT", "usd coin": "USDC", "usdc": "USDC", "dai": "DAI",
    "hyperliquid": "HYPE", "hype": "HYPE",
    "ethena": "ENA", "ena": "ENA",
    "stacks": "STX", "stx": "STX",
    "immutable": "IMX", "imx": "IMX",
    "quant": "QNT", "qnt": "QNT",
    "flow": "FLOW",
    "elrond": "EGLD", "multiversx": "EGLD", "egld": "EGLD",
    "pancakeswap": "CAKE", "cake": "CAKE",
    "1inch": "1INCH",
    "zilliqa": "ZIL", "zil": "ZIL",
    "harmony": "ONE", "one": "ONE",
    "gas": "GAS",
}

#: Vocabulary entries that are also ordinary words: coins only in capitals or as a pair.
AMBIGUOUS = frozenset({
    "near", "op", "one", "gas", "sand", "mana", "gala", "dash", "neo", "ton", "atom", "uni", "apt", "arb",
    "flow", "cake", "hype", "curve", "render", "maker", "quant", "stacks", "harmony", "immutable", "algo",
    "link", "dot", "sol", "dai", "etc", "sei", "vet", "ondo", "jupiter", "cosmos", "stellar", "optimism",
    "avalanche", "polygon", "ripple", "ether", "iota", "theta", "bonk", "eos", "fil", "kas", "ena", "tia",
})
#: ... except these, which the dashboard's own coins made familiar in lower case.
FAMILIAR = frozenset({"link", "dot", "sol", "ripple", "ether", "avalanche", "polygon", "cosmos", "stellar"})

#: Upper-case tokens that are not coins.
ACRONYMS = frozenset({
    "RSI", "MACD", "EMA", "SMA", "ATR", "ADX", "OBV", "VWAP", "BB", "USD", "EUR", "GBP", "JPY", "UTC", "GMT",
    "VAR", "CVAR", "CEO", "ETF", "ETFS", "AI", "ML", "API", "OK", "US", "USA", "UK", "EU", "GDP", "FED", "SEC",
    "CPI", "FOMC", "ATH", "ATL", "DCA", "ROI", "PNL", "TA", "FA", "I", "A", "IS", "IT", "THE", "AND", "OR",
    "VS", "PLS", "PLZ", "LSTM", "CNN", "GBM", "MASE", "MAE", "RMSE", "MAPE", "KNN", "LDA", "LR", "RF", "H", "D",
    "M", "MIN", "AM", "PM", "TODAY", "NOW", "WHAT", "HOW", "WHY", "BUY", "SELL", "HODL", "FOMO", "FUD",
    "NEWS", "PRICE", "LOL", "OMG", "BTW", "IMO", "FYI", "TLDR", "NFT", "NFTS", "DEFI", "DEX", "CEX", "KYC",
    "CRYPTO", "COIN", "COINS", "TOKEN", "MARKET", "HELP", "ME", "MY", "WE", "YOU", "NO", "YES", "UP", "DOWN",
})

#: Words that may follow "price of" and friends without being a coin.
ORDINARY = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "my", "your", "our", "their", "his",
    "her", "me", "us", "them", "you", "i", "we", "they", "one", "any", "some", "all", "each", "every", "both",
    "either", "neither", "other", "another", "such", "what", "which", "who", "whom", "whose", "when", "where",
    "why", "how", "market", "markets", "crypto", "cryptos", "cryptocurrency", "cryptocurrencies", "coin",
    "coins", "token", "tokens", "altcoin", "altcoins", "today", "tomorrow", "yesterday", "now", "tonight",
    "week", "weeks", "month", "months", "year", "years", "hour", "hours", "minute", "minutes", "day", "days",
    "next", "last", "past", "current", "currently", "later", "soon", "recent", "recently", "latest", "new",
    "old", "price", "prices", "forecast", "forecasts", "prediction", "predictions", "outlook", "trend",
    "trends", "value", "chart", "charts", "risk", "volatility", "drawdown", "sentiment", "news", "headlines",
    "model", "models", "portfolio", "everything", "anything", "something", "up", "down", "higher", "lower",
    "above", "below", "over", "under", "around", "about", "between", "after", "before", "during", "short",
    "long", "term", "mid", "run", "buying", "selling", "holding", "trading", "investing", "going", "moving",
    "doing", "and", "or", "but", "with", "without", "from", "into", "onto", "upon", "for", "of", "on", "in",
    "at", "by", "to", "as", "than", "then", "so", "not", "is", "are", "was", "were", "be", "been", "being",
    "do", "does", "did", "has", "have", "had", "will", "would", "shall", "should", "can", "could", "may",
    "might", "must", "volatile", "risky", "safe", "good", "bad", "best", "worst", "better", "worse", "big",
    "small", "high", "low", "top", "bottom", "please", "thanks", "thank", "hi", "hello", "hey", "ok", "okay",
    "yes", "no",
})

_NAME_ORDER = sorted(COIN_NAMES, key=len, reverse=True)
#: Names long and unlike English words enough to be recognised misspelt (not "ripple": "triple").
_TYPO_TARGETS = ["bitcoin", "ethereum", "solana", "cardano", "dogecoin", "polkadot", "litecoin", "chainlink",
                 "avalanche", "monero", "toncoin", "uniswap", "filecoin", "worldcoin", "dogwifhat"]
_PAIR = re.compile(r"\b([a-z0-9]{2,10}?)[/\-]?(usdt|usdc|busd|fdusd)\b")
_CUE = re.compile(
    r"\b(?:price|value|forecast|prediction|outlook|chart|rsi|risk|volatility)\s+(?:of|for|on)\s+([a-z0-9]+)"
    r"|\b(?:compare|with|versus|vs\.?)\s+([a-z0-9]+)"
    r"|\b(?:is|are|does)\s+([a-z0-9]+)\s+(?:worth|trading|doing|going)\b"
    r"|\bhow\s+much\s+is\s+(?:a\s+|one\s+)?([a-z0-9]+)\b"
)


@dataclass(frozen=True, slots=True)
class Mention:
    """A coin named in a question: its base asset, where, and how it was recognised."""

    base: str
    start: int
    how: str  # "name", "ticker", "pair", "typo", "guess"


def mentions(text: str) -> list[Mention]:
    """Every coin ``text`` names, in order of first mention, one per base asset."""
    low = text.lower()
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= lo or a >= hi for lo, hi in taken)

    for m in _PAIR.finditer(low):
        base = m.group(1).upper()
        found.append(Mention(COIN_NAMES.get(m.group(1), base), m.start(), "pair"))
        taken.append(m.span())
    for name in _NAME_ORDER:
        for m in re.finditer(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", low):
            if not free(*m.span()):
                continue
            written = text[m.start():m.end()]
            if name in AMBIGUOUS and name not in FAMILIAR and not written.isupper():
                continue
            found.append(Mention(COIN_NAMES[name], m.start(), "ticker" if len(name) <= 5 else "name"))
            taken.append(m.span())
    for m in re.finditer(r"[a-z][a-z0-9]{4,}", low):
        if not free(*m.span()) or m.group() in ORDINARY:
            continue
        close = difflib.get_close_matches(m.group(), _TYPO_TARGETS, n=1, cutoff=0.8)
        if close:
            found.append(Mention(COIN_NAMES[close[0]], m.start(), "typo"))
            taken.append(m.span())
    words = re.findall(r"[A-Za-z]{2,}", text)
    # a question typed in capitals: its ordinary words are not tickers
    shouting = sum(w.isupper() for w in words) > len(words) / 2 and any(
        w.isupper() and w.lower() in ORDINARY for w in words)
    for m in re.finditer(r"(?<![A-Za-z0-9$])\$?([A-Z][A-Z0-9]{1,9})(?![A-Za-z0-9])", text):
        if not shouting and free(*m.span(1)) and m.group(1) not in ACRONYMS:
            found.append(Mention(m.group(1), m.start(1), "guess"))
            taken.append(m.span(1))
    for m in _CUE.finditer(low):
        i = next(g for g in range(1, 5) if m.group(g))
        word, span = m.group(i), m.span(i)
        if free(*span) and word not in ORDINARY and not _is_horizon_word(word) and not word.endswith(("ing", "ed")):
            found.append(Mention(word.upper(), span[0], "guess"))
            taken.append(span)
    out: list[Mention] = []
    for mention in sorted(found, key=lambda x: x.start):
        if all(o.base != mention.base for o in out):
            out.append(mention)
    return out


def _is_horizon_word(word: str) -> bool:
    return bool(re.fullmatch(r"\d+(m|h|d|w|min|mins|hr|hrs)?|[a-z]*(minute|hour|day|week|month|year)s?", word))
