"""Pure values and functions: no I/O, no imports from the rest of coincast."""

from coincast.domain.clock import Clock, ManualClock, SystemClock
from coincast.domain.errors import (
    CoincastError,
    ConfigError,
    InvalidInterval,
    InvalidRequest,
    InvalidTimeRange,
    MalformedMessage,
    TransientError,
    UnknownSymbol,
)
from coincast.domain.interval import Interval
from coincast.domain.market import Candle, DeadLetter, FoldState, Trade, TradeBatch
from coincast.domain.symbols import DEFAULT_SYMBOLS, normalize_symbol, require_symbol

__all__ = [
    "DEFAULT_SYMBOLS",
    "Candle",
    "Clock",
    "CoincastError",
    "ConfigError",
    "DeadLetter",
    "FoldState",
    "Interval",
    "InvalidInterval",
    "InvalidRequest",
    "InvalidTimeRange",
    "MalformedMessage",
    "ManualClock",
    "SystemClock",
    "Trade",
    "TradeBatch",
    "TransientError",
    "UnknownSymbol",
    "normalize_symbol",
    "require_symbol",
]
