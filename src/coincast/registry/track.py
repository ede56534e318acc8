"""The live track record: score stored forecasts once their target bar has closed, then summarise.

Scoring is time-driven: :meth:`PredictionScorer.score_due` asks the prediction store for every
unscored forecast whose target bar closed by ``clock.now_ms()``, looks the actual close up in the
candle store (bar ``target_ms`` at the forecast's interval) and records it. A forecast whose bar is
not in the store yet stays pending and is tried again on the next call, so a late write of the
candle never loses a score.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from coincast.domain import Clock, Interval
from coincast.store.base import CandleStore
from coincast.store.predictions import LivePrediction, PredictionStore


class PredictionScorer:
    """Records outcomes of due forecasts.

    Args:
        predictions: where forecasts are stored.
        candles: where the actual closes are read.
        clock: wall time deciding what is due.
    """

    def __init__(self, predictions: PredictionStore, candles: CandleStore, clock: Clock) -> None:
        self._predictions = predictions
        self._candles = candles
        self._clock = clock
        self.scored = 0

    async def score_due(self, *, limit: int = 1000) -> list[LivePrediction]:
        """Score what is due now; returns the forecasts scored by this call."""
        now = self._clock.now_ms()
        due = await self._predictions.due_predictions(now, limit=limit)
        groups: dict[tuple[str, str], list[LivePrediction]] = defaultdict(list)
        for p in due:
            groups[(p.symbol, p.interval)].append(p)
        done: list[LivePrediction] = []
        for (symbol, interval), items in groups.items():
            lo = min(p.target_ms for p in items)
            hi = max(p.target_ms for p in items)
            iv = Interval(interval)
            bars = await self._candles.history(symbol, iv, start_ms=lo, end_ms=hi, limit=(hi - lo) // iv.ms + 1)
            close = {c.open_ms: c.close for c in bars}
            for p in items:
                if p.target_ms in close:
                    done.append(replace(p, actual_price=close[p.target_ms], scored_ms=now))
        await self._predictions.record_outcomes(done)
        self.scored += len(done)
        return done


def track_record(scored: Sequence[LivePrediction]) -> dict[str, Any]:
    """Live scores of forecasts with a known outcome, each next to persistence on the same rows.

    ``mae`` (quote currency) and ``mape`` (%) of the predicted price; ``mase`` that MAE over the MAE
    of "no change" (below 1 beats the random walk); ``direction_hit_rate``: share where
    ``prob_up > 0.5`` (or, without a probability, the predicted move being up) matches the actual
    move; ``interval_coverage``: share with ``lower <= actual <= upper``, next to the nominal
    ``level``; ``n`` the number of scored forecasts.
    """
    rows = [p for p in scored if p.actual_price is not None and math.isfinite(p.actual_price)]
    if not rows:
        return {
            "n": 0,
            "mae": None,
            "mape": None,
            "mase": None,
            "direction_hit_rate": None,
            "interval_coverage": None,
            "level": None,
            "mean_width": None,
        }
    actual = np.array([p.actual_price for p in rows], dtype=float)
    pred = np.array([p.predicted_price for p in rows], dtype=float)
    origin = np.array([p.origin_price for p in rows], dtype=float)
    prob = np.array([np.nan if p.prob_up is None else p.prob_up for p in rows], dtype=float)
    up_pred = np.where(np.isfinite(prob), prob > 0.5, pred > origin)
    lower = np.array([p.lower for p in rows], dtype=float)
    upper = np.array([p.upper for p in rows], dtype=float)
    mae = float(np.mean(np.abs(pred - actual)))
    mae_ref = float(np.mean(np.abs(origin - actual)))
    return {
        "n": len(rows),
        "mae": mae,
        "mape": float(np.mean(np.abs(pred - actual) / np.abs(actual)) * 100.0),
        "mase": mae / mae_ref if mae_ref > 0 else None,
        "direction_hit_rate": float(np.mean(up_pred == (actual > origin))),
        "interval_coverage": float(np.mean((lower <= actual) & (actual <= upper))),
        "level": float(rows[-1].level),
        "mean_width": float(np.mean(upper - lower)),
    }
