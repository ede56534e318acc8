"""Symbols as Binance writes them (``BTCUSDT``)."""

from __future__ import annotations

import re

from coincast.domain.errors import UnknownSymbol

DEFAULT_SYMBOLS: tuple[str, ...] = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "SOLUSDT",
    "DOGEUSDT",
    "DOTUSDT",
    "LTCUSDT",
    "LINKUSDT",
)

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def normalize_symbol(text: str) -> str:
    """Upper-case and validate the shape of a symbol (``btcusdt`` -> ``BTCUSDT``).

    Raises:
        ValueError: when the text cannot be a Binance symbol.
    """
    sym = text.strip().upper().replace("/", "").replace("-", "")
    if not _SYMBOL_RE.match(sym):
        raise ValueError(f"invalid symbol {text!r}: expected letters and digits like BTCUSDT")
    return sym


def require_symbol(text: str, known: tuple[str, ...] | list[str] | frozenset[str]) -> str:
    """Normalise ``text`` and check it is one of ``known``.

    Raises:
        UnknownSymbol: naming the value and the configured symbols.
    """
    try:
        sym = normalize_symbol(text)
    except ValueError as exc:
        raise UnknownSymbol(str(exc)) from None
    if sym not in known:
        raise UnknownSymbol(f"unknown symbol {text!r}; configured symbols: {', '.join(sorted(known))}")
    return sym
