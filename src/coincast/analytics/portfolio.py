"""Long-only portfolio suggestions from historical returns: minimum variance, risk parity, maximum Sharpe.

Inputs are annualised: expected returns ``mu`` (historical means, an in-sample estimate, not a
forecast) and the covariance ``cov``. Weights are non-negative and sum to 1. Solved with
scipy.optimize (SLSQP); risk parity uses the convex log-barrier form (Spinu 2013), whose
solution is unique, then normalises it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

F64 = npt.NDArray[np.float64]

STRATEGIES: tuple[str, ...] = ("min_variance", "risk_parity", "max_sharpe", "equal_weight")


@dataclass(frozen=True, slots=True)
class Portfolio:
    """A weight vector with its annualised expected return, volatility, Sharpe and risk shares."""

    strategy: str
    symbols: tuple[str, ...]
    weights: F64
    expected_return: float
    volatility: float
    sharpe: float
    risk_contributions: F64  # share of the portfolio variance from each asset, sums to 1


def evaluate(strategy: str, symbols: Sequence[str], w: F64, mu: F64, cov: F64, risk_free: float = 0.0) -> Portfolio:
    """Expected return, volatility, Sharpe and risk contributions of weights ``w``."""
    var = float(w @ cov @ w)
    vol = math.sqrt(max(var, 0.0))
    ret = float(w @ mu)
    rc = w * (cov @ w) / var if var > 0 else np.full_like(w, np.nan)
    sr = (ret - risk_free) / vol if vol > 0 else math.nan
    return Portfolio(strategy, tuple(symbols), w, ret, vol, sr, rc)


def _solve(objective, n: int) -> F64:  # type: ignore[no-untyped-def]
    x0 = np.full(n, 1.0 / n)
    res = minimize(
        objective,
        x0,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=({"type": "eq", "fun": lambda w: np.sum(w) - 1.0},),
        options={"ftol": 1e-12, "maxiter": 500},
    )
    if not res.success:
        raise RuntimeError(f"portfolio optimisation failed: {res.message}")
    w = np.clip(res.x, 0.0, None)
    return np.asarray(w / w.sum(), dtype=np.float64)


def min_variance(cov: F64) -> F64:
    """Long-only weights with the smallest variance."""
    return _solve(lambda w: w @ cov @ w, cov.shape[0])


def max_sharpe(mu: F64, cov: F64, risk_free: float = 0.0) -> F64:
    """Long-only weights with the largest (mu·w - rf) / sqrt(w'Σw)."""

    def neg_sharpe(w: F64) -> float:
        vol = math.sqrt(max(float(w @ cov @ w), 1e-18))
        return -(float(w @ mu) - risk_free) / vol

    return _solve(neg_sharpe, cov.shape[0])


def risk_parity(cov: F64) -> F64:
    """Weights whose risk contributions w_i (Σw)_i are equal (equal risk contribution).

    Minimises 0.5 y'Σy - (1/n) Σ log y over y > 0 (convex), then w = y / sum(y).
    """
    n = cov.shape[0]
    scale = float(np.sqrt(np.mean(np.diag(cov))))  # numerically nicer: solve on a unit-vol scale
    c = cov / scale**2

    def objective(y: F64) -> float:
        return float(0.5 * (y @ c @ y) - np.sum(np.log(y)) / n)

    def gradient(y: F64) -> F64:
        return np.asarray(c @ y - 1.0 / (n * y), dtype=np.float64)

    res = minimize(
        objective,
        np.full(n, 1.0),
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(1e-12, None)] * n,
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000},
    )
    if not res.success:
        raise RuntimeError(f"risk parity failed: {res.message}")
    return np.asarray(res.x / res.x.sum(), dtype=np.float64)


def suggest(symbols: Sequence[str], mu: F64, cov: F64, risk_free: float = 0.0) -> list[Portfolio]:
    """The four portfolios of :data:`STRATEGIES` for these annualised ``mu`` and ``cov``.

    Raises:
        ValueError: shapes disagree or fewer than two assets.
    """
    n = len(symbols)
    if n < 2 or mu.shape != (n,) or cov.shape != (n, n):
        raise ValueError(f"need >= 2 assets with matching mu {mu.shape} and cov {cov.shape}")
    weights = {
        "min_variance": min_variance(cov),
        "risk_parity": risk_parity(cov),
        "max_sharpe": max_sharpe(mu, cov, risk_free),
        "equal_weight": np.full(n, 1.0 / n),
    }
    return [evaluate(name, symbols, weights[name], mu, cov, risk_free) for name in STRATEGIES]
