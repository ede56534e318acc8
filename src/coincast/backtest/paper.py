"""Paper trading: the backtest's rules applied to live forecasts as they arrive.

A :class:`PaperAccount` follows one (symbol, model, horizon). It keeps the forecasts it was fed
(a forecast fed again with its outcome replaces the unscored copy) and answers with the same
engine as the backtest, so the paper record equals a backtest of the same forecasts; since the
engine is causal (a position depends only on forecasts made at or before its origin), the
result does not depend on how the forecasts were batched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coincast.backtest.engine import (
    BacktestConfig,
    BacktestResult,
    backtest_group,
    positions,
    select_periods,
    times_ms,
    trailing_vol,
    validate_predictions,
)
from coincast.backtest.held import held_weights
from coincast.store.predictions import LivePrediction

FRAME_COLUMNS = (
    "symbol",
    "model",
    "horizon",
    "origin_time",
    "target_time",
    "origin_price",
    "predicted_price",
    "lower",
    "upper",
    "prob_up",
    "actual_price",
    "predicted_volatility",
)


def predictions_frame(preds: Iterable[LivePrediction]) -> pd.DataFrame:
    """Live forecasts as a predictions frame (the columns of ``coincast evaluate --predictions``)."""
    rows = [
        (
            p.symbol,
            p.model,
            p.horizon,
            p.origin_ms,
            p.target_ms,
            p.origin_price,
            p.predicted_price,
            p.lower,
            p.upper,
            p.prob_up,
            p.actual_price,
            p.volatility,
        )
        for p in preds
    ]
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    for c in ("origin_time", "target_time"):
        df[c] = pd.to_datetime(df[c].astype("int64"), unit="ms", utc=True)
    for c in ("prob_up", "actual_price", "predicted_volatility"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """The position the account holds now: weight (+ long, - short) from ``origin_ms`` to ``target_ms``."""

    weight: float
    origin_ms: int
    target_ms: int
    origin_price: float


class PaperAccount:
    """Paper trading of one (symbol, model, horizon) with a :class:`BacktestConfig`."""

    def __init__(self, symbol: str, model: str, horizon: str, config: BacktestConfig, *, keep: int = 20_000) -> None:
        self.symbol, self.model, self.horizon, self.config = symbol, model, horizon, config
        self._keep = keep
        self._rows: dict[int, LivePrediction] = {}

    def observe(self, preds: Sequence[LivePrediction]) -> int:
        """Take new forecasts and outcomes (others' symbols or models are ignored); returns how many were taken."""
        n = 0
        for p in preds:
            if (p.symbol, p.model, p.horizon) != (self.symbol, self.model, self.horizon):
                continue
            old = self._rows.get(p.origin_ms)
            if old is None or old.actual_price is None or p.actual_price is not None:
                self._rows[p.origin_ms] = p
                n += 1
        if len(self._rows) > self._keep:
            for k in sorted(self._rows)[: len(self._rows) - self._keep]:
                del self._rows[k]
        return n

    def _frame(self) -> pd.DataFrame:
        return predictions_frame(self._rows[k] for k in sorted(self._rows))

    def position(self) -> OpenPosition | None:
        """The position held over the latest accepted forecast (None when flat or nothing fed).

        Its weight is the one the position was opened with (positions are held between signals).
        """
        if not self._rows:
            return None
        g = self._frame()
        o_ms, t_ms = times_ms(g["origin_time"]), times_ms(g["target_time"])
        sel = g.iloc[select_periods(o_ms, t_ms)]
        vol = (
            trailing_vol(o_ms, g["origin_price"].to_numpy(float), self.config.vol_window)
            if self.config.sizing == "vol_target"
            else None
        )
        so, st = times_ms(sel["origin_time"]), times_ms(sel["target_time"])
        joined = np.concatenate([[False], so[1:] == st[:-1]])
        held, _, _ = held_weights(positions(sel, self.config, vol), joined)
        w = float(held[-1])
        if w == 0.0:
            return None
        return OpenPosition(w, int(so[-1]), int(st[-1]), float(sel["origin_price"].iloc[-1]))

    def result(self) -> BacktestResult | None:
        """The record of the settled periods: every scored forecast up to the first unscored one."""
        g = self._frame()
        unscored = g["actual_price"].isna().to_numpy()
        if unscored.any():
            g = g.iloc[: int(unscored.argmax())]
        if g.empty:
            return None
        return backtest_group(validate_predictions(g), self.config)
