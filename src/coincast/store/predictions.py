"""Storage seam for live forecasts and their outcomes: the :class:`PredictionStore` protocol.

A live forecast is kept from the moment it is made; once its target bar has closed the scorer
records the actual close (``actual_price``) and when it did so (``scored_ms``). Scores are never
edited afterwards, so the live track record is an append-only history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LivePrediction:
    """One forecast made on the stream; times are integer ms UTC, prices in quote currency.

    ``origin_ms`` is the open time of the last closed bar the forecast knew (its close is
    ``origin_price``); ``target_ms = origin_ms + horizon`` is the open time of the bar whose close
    is forecast, so the forecast can be scored at ``due_ms = target_ms + interval``.
    """

    model_id: str
    model: str
    symbol: str
    horizon: str
    interval: str
    origin_ms: int
    target_ms: int
    due_ms: int
    origin_price: float
    predicted_price: float
    lower: float
    upper: float
    prob_up: float | None
    volatility: float | None
    level: float
    created_ms: int
    actual_price: float | None = None
    scored_ms: int | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


#: Field order of stored predictions, and the column names stores use for them.
PRED_FIELDS: tuple[str, ...] = (
    "symbol", "horizon", "model_id", "origin_ms", "model", "interval", "target_ms", "due_ms", "origin_price",
    "predicted_price", "lower", "upper", "prob_up", "volatility", "level", "created_ms", "actual_price", "scored_ms",
)
PRED_COLUMNS: tuple[str, ...] = tuple(
    {"origin_ms": "origin_time", "target_ms": "target_time"}.get(f, f) for f in PRED_FIELDS)


def prediction_row(p: LivePrediction) -> tuple[object, ...]:
    return tuple(getattr(p, f) for f in PRED_FIELDS)


def row_prediction(r: Sequence[object]) -> LivePrediction:
    return LivePrediction(**dict(zip(PRED_FIELDS, r, strict=True)))  # type: ignore[arg-type]


@runtime_checkable
class PredictionStore(Protocol):
    """Live forecasts keyed by (symbol, horizon, model_id, origin_ms); writes are idempotent."""

    async def add_predictions(self, items: Sequence[LivePrediction]) -> int:
        """Insert or replace; returns the number of rows written."""
        ...

    async def predictions(
        self, symbol: str, horizon: str, *, limit: int, model_id: str | None = None, scored: bool | None = None
    ) -> list[LivePrediction]:
        """The newest ``limit`` forecasts, oldest first (``scored`` True/False filters on an outcome)."""
        ...

    async def due_predictions(self, now_ms: int, *, limit: int = 1000) -> list[LivePrediction]:
        """Unscored forecasts whose target bar has closed (``due_ms <= now_ms``), oldest first."""
        ...

    async def record_outcomes(self, outcomes: Sequence[LivePrediction]) -> int:
        """Store ``actual_price`` and ``scored_ms`` of already stored forecasts (matched by key)."""
        ...


class MemoryPredictionStore:
    """A :class:`PredictionStore` in memory, for stores that cannot keep predictions (lost on exit)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str, int], LivePrediction] = {}

    @staticmethod
    def _key(p: LivePrediction) -> tuple[str, str, str, int]:
        return (p.symbol, p.horizon, p.model_id, p.origin_ms)

    async def add_predictions(self, items: Sequence[LivePrediction]) -> int:
        for p in items:
            self._rows[self._key(p)] = p
        return len(items)

    async def predictions(
        self, symbol: str, horizon: str, *, limit: int, model_id: str | None = None, scored: bool | None = None
    ) -> list[LivePrediction]:
        rows = [
            p
            for p in self._rows.values()
            if p.symbol == symbol
            and p.horizon == horizon
            and (model_id is None or p.model_id == model_id)
            and (scored is None or (p.actual_price is not None) == scored)
        ]
        rows.sort(key=lambda p: (p.origin_ms, p.created_ms))
        return rows[-limit:]

    async def due_predictions(self, now_ms: int, *, limit: int = 1000) -> list[LivePrediction]:
        due = sorted(
            (p for p in self._rows.values() if p.actual_price is None and p.due_ms <= now_ms), key=lambda p: p.due_ms
        )
        return due[:limit]

    async def record_outcomes(self, outcomes: Sequence[LivePrediction]) -> int:
        n = 0
        for p in outcomes:
            if p.actual_price is not None and self._key(p) in self._rows:
                self._rows[self._key(p)] = p
                n += 1
        return n
