"""Binance spot: wire formats, WebSocket connections, REST client and the live source."""

from coincast.sources.binance.rest import BinanceRest, IpBanned, RateLimited
from coincast.sources.binance.source import BinanceOptions, BinanceSource

__all__ = ["BinanceOptions", "BinanceRest", "BinanceSource", "IpBanned", "RateLimited"]
