"""Forecast targets per horizon: forward log return, direction and forward realized volatility.

Targets are matched by time, not by row count: the target at ``t`` for horizon ``h`` uses the
candle that opens exactly at ``t + h``. Where that candle does not exist (the end of the data,
or an exchange outage) the target is NaN rather than a value spanning a different horizon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from coincast.domain import InvalidRequest
from coincast.features.bars import F64

TARGET_PREFIX = "target_"
TARGET_KINDS: tuple[str, ...] = ("logret", "up", "vol")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_HORIZON = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


@dataclass(frozen=True, slots=True)
class Horizon:
    """A forecast horizon such as ``1h`` (label as given, length in ms)."""

    label: str
    ms: int

    @classmethod
    def parse(cls, text: str) -> Horizon:
        """Parse ``'1h'``, ``'4h'``, ``'1d'``, ``'30m'``, ``'1w'``.

        Raises:
            InvalidRequest: for anything else, naming the value.
        """
        match = _HORIZON.match(text)
        if match is None or int(match.group(1)) == 0:
            raise InvalidRequest(f"unknown horizon {text!r}; expected a count and a unit m/h/d/w, e.g. 1h or 1d")
        n, unit = int(match.group(1)), match.group(2)
        return cls(f"{n}{unit}", n * _UNIT_MS[unit])


def target_column(kind: str, horizon: str) -> str:
    """Column name of a target: ``target_column("logret", "1h") == "target_logret_1h"``.

    Kinds: ``logret`` (forward log return), ``up`` (1.0 if that return is > 0, else 0.0),
    ``vol`` (forward realized volatility: sqrt of the summed squared one-step log returns
    inside the horizon, not annualised).

    Raises:
        InvalidRequest: unknown kind or horizon.
    """
    if kind not in TARGET_KINDS:
        raise InvalidRequest(f"unknown target kind {kind!r}; expected one of {', '.join(TARGET_KINDS)}")
    return f"{TARGET_PREFIX}{kind}_{Horizon.parse(horizon).label}"


def compute_targets(open_ms: npt.NDArray[np.int64], close: F64, horizon: Horizon) -> dict[str, F64]:
    """The three targets of ``horizon`` for one symbol's rows (sorted by ``open_ms``)."""
    n = open_ms.shape[0]
    ahead = np.searchsorted(open_ms, open_ms + horizon.ms)
    safe = np.minimum(ahead, max(n - 1, 0))
    found = (ahead < n) & (open_ms[safe] == open_ms + horizon.ms) if n else np.zeros(0, dtype=bool)
    step = np.zeros(n, dtype=np.float64)
    if n > 1:
        step[1:] = np.log(close[1:] / close[:-1])
    cum_sq = np.cumsum(step * step)
    logret = np.full(n, np.nan)
    vol = np.full(n, np.nan)
    idx = np.flatnonzero(found)
    logret[idx] = np.log(close[ahead[idx]] / close[idx])
    vol[idx] = np.sqrt(np.maximum(cum_sq[ahead[idx]] - cum_sq[idx], 0.0))
    up = np.where(np.isnan(logret), np.nan, (logret > 0).astype(np.float64))
    label = horizon.label
    return {
        f"{TARGET_PREFIX}logret_{label}": logret,
        f"{TARGET_PREFIX}up_{label}": up,
        f"{TARGET_PREFIX}vol_{label}": vol,
    }
