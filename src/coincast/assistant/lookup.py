"""Coins coincast does not follow, looked up on Binance so the answer can still give a price.

One request per question (``GET /api/v3/ticker/24hr``, weight 2), no retries: an answer must not
hang on a slow network. Every outcome is a fact the template turns into one plain sentence.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from coincast.domain import CoincastError, InvalidRequest
from coincast.sources.binance.rest import BinanceRest
from coincast.sources.binance.wire import Ticker24hMsg


class BinanceLookup:
    """Looks up pairs on Binance's public REST API.

    Args:
        rest: a client whose base URL is Binance's REST root (or a local fake in tests).
    """

    def __init__(self, rest: BinanceRest) -> None:
        self.rest = rest

    @classmethod
    def from_url(cls, rest_url: str, timeout_s: float) -> BinanceLookup:
        return cls(BinanceRest.from_url(rest_url, timeout_s=timeout_s, max_attempts=1))

    async def close(self) -> None:
        await self.rest.close()

    async def ticker(self, pair: str) -> dict[str, Any]:
        """``{"symbol", "status": "found" | "unlisted" | "unreachable", ...}`` for ``pair``; never raises.

        ``found`` adds ``price``, ``change_24h_pct``, ``high_24h``, ``low_24h``, ``time_ms``.
        """
        try:
            raw = await self.rest.get("/api/v3/ticker/24hr", {"symbol": pair})
            t = Ticker24hMsg.model_validate(raw)
        except InvalidRequest:  # HTTP 400 "Invalid symbol."
            return {"symbol": pair, "status": "unlisted"}
        except (CoincastError, ValidationError, ValueError):  # network, rate limit, ban, odd payload
            return {"symbol": pair, "status": "unreachable"}
        return {
            "symbol": pair,
            "status": "found",
            "price": float(t.lastPrice),
            "change_24h_pct": round(float(t.priceChangePercent), 2),
            "high_24h": float(t.highPrice),
            "low_24h": float(t.lowPrice),
            "time_ms": t.closeTime,
            "source": "Binance",
        }
