"""The ``auto`` source's probe: is Binance's REST API reachable right now?

``coincast up`` (``--source auto``, the default) streams from Binance when this answers within a
few seconds and otherwise runs the simulator, saying so in ``/health`` and on the dashboard.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Probe:
    """The answer and, when negative, why (shown to the user)."""

    reachable: bool
    detail: str


async def probe_binance(rest_url: str, timeout_s: float = 3.0) -> Probe:
    """GET ``<rest_url>/api/v3/ping`` with an overall deadline of ``timeout_s``; never raises."""
    url = rest_url.rstrip("/") + "/api/v3/ping"
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(timeout=timeout_s) as client:
            resp = await client.get(url)
    except TimeoutError:
        return Probe(False, f"{url}: no answer within {timeout_s:g} s")
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return Probe(False, f"{url}: {type(exc).__name__}: {exc}")
    if resp.status_code != 200:
        return Probe(False, f"{url}: HTTP {resp.status_code}")
    return Probe(True, f"{url}: ok")


async def binance_reachable(rest_url: str, timeout_s: float = 3.0) -> bool:
    """True when Binance's REST ping answers 200 within ``timeout_s`` seconds."""
    return (await probe_binance(rest_url, timeout_s)).reachable
