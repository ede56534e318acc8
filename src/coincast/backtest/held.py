"""Positions held between signals: the cost-free path of a run of same-side periods, and its trades.

See the rules in :mod:`coincast.backtest.engine` ("Holding", "Costs"). Kept apart so the engine
(periods, signals, sizing, metrics) and the paper account share one definition of a held position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def held_weights(target: np.ndarray, joined: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions held between signals: ``(weight, entry, start)`` per period.

    A position (a *run*) opens when the side changes, or after a gap (``joined`` false), and is
    held while later periods join on with the same side: its size is the target weight at its
    first period (``entry`` is that period's index), later targets of the same side do not resize
    it. ``start`` marks the first period of each run; flat periods have weight 0.
    """
    n = target.shape[0]
    side = np.sign(target)
    prev_side = np.concatenate([[0.0], side[:-1]])
    start = (side != 0) & (~joined | (side != prev_side))
    entry = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    weight = np.where(side != 0, target[entry], 0.0)
    return weight, entry, start


@dataclass(frozen=True, slots=True)
class HeldPath:
    """The cost-free path of held positions and the traded amounts, from which any cost rate follows.

    ``gross`` is each period's equity factor before costs; ``d_in``/``d_out`` the weight traded at
    the period's start (opening a run) and end (closing it), as fractions of equity at that time.
    """

    weight: np.ndarray
    start: np.ndarray
    gross: np.ndarray
    d_in: np.ndarray
    d_out: np.ndarray

    def growth(self, cost_rate: float) -> np.ndarray:
        """Per-period equity factors after paying ``cost_rate`` per unit of weight traded."""
        out: np.ndarray = (1.0 - self.d_in * cost_rate) * self.gross * (1.0 - self.d_out * cost_rate)
        return out

    def break_even_bps(self) -> float:
        """Cost per unit traded (basis points per side) at which the total return is zero.

        0 when the strategy loses before costs; NaN when it never trades. Exact root of
        ``prod(gross) * prod(1 - a * k) = 1`` over the traded amounts ``a`` (brentq).
        """
        traded = np.concatenate([self.d_in, self.d_out])
        traded = traded[traded > 0]
        if traded.size == 0:
            return math.nan
        log_gross = float(np.sum(np.log(self.gross)))
        if not log_gross > 0:
            return 0.0
        from scipy.optimize import brentq

        top = (1.0 - 1e-12) / float(traded.max())
        k = brentq(lambda c: log_gross + float(np.sum(np.log1p(-traded * c))), 0.0, top, xtol=1e-14)
        return float(k) * 10_000.0


def held_path(target: np.ndarray, joined: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> HeldPath:
    """Hold each run's units from entry to exit: its value follows the price, not a daily reset.

    Within a run entered at price ``P`` with weight ``w`` the equity after ``t`` is
    ``E * (1 + w * (p_t / P - 1))`` (``E`` the equity after the entry cost), so a held short or
    long earns exactly the price move times its entry weight; closing trades the weight the
    position has drifted to, ``w * (p_exit / P) / (1 + w * (p_exit / P - 1))``.
    """
    w, entry, start = held_weights(target, joined)
    p_entry = p0[entry]
    g_end = 1.0 + w * (p1 / p_entry - 1.0)
    g_prev = np.where(start | (w == 0), 1.0, np.concatenate([[1.0], g_end[:-1]]))
    n = target.shape[0]
    last = np.ones(n, dtype=bool)  # the run ends with this period
    last[:-1] = np.concatenate([start[1:] | (w[1:] == 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        drifted = np.where(g_end > 0, np.abs(w * (p1 / p_entry) / g_end), 0.0)
    d_in = np.where(start, np.abs(w), 0.0)
    d_out = np.where(last & (w != 0), drifted, 0.0)
    return HeldPath(w, start, g_end / g_prev, d_in, d_out)
