"""Risk and performance measures on one return series: pure numpy, no I/O.

Conventions: returns are simple returns per period (e.g. daily); losses (VaR, CVaR) are positive
fractions; a drawdown is a negative fraction of the running peak; annualisation uses
``periods_per_year`` (365 for daily crypto returns, which trade every day).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Drawdown:
    """Largest peak-to-trough fall: ``depth`` = trough / peak - 1 (<= 0), with the row indices."""

    depth: float
    peak: int
    trough: int


def max_drawdown(prices: F64) -> Drawdown:
    """The maximum drawdown of a price (or wealth) series.

    Raises:
        ValueError: empty series.
    """
    if prices.size == 0:
        raise ValueError("max_drawdown needs at least one price")
    running_peak = np.maximum.accumulate(prices)
    dd = prices / running_peak - 1.0
    trough = int(np.argmin(dd))
    peak = int(np.argmax(prices[: trough + 1]))
    return Drawdown(float(dd[trough]), peak, trough)


def annualised_vol(returns: F64, periods_per_year: float) -> float:
    """Sample standard deviation of the returns × sqrt(periods per year); NaN with < 2 returns."""
    if returns.size < 2:
        return math.nan
    return float(np.std(returns, ddof=1) * math.sqrt(periods_per_year))


def var_historical(returns: F64, level: float = 0.95) -> float:
    """Historical VaR: the loss not exceeded with probability ``level`` (linear-interpolated quantile)."""
    if returns.size == 0:
        return math.nan
    return float(-np.quantile(returns, 1.0 - level))


def cvar_historical(returns: F64, level: float = 0.95) -> float:
    """Historical CVaR (expected shortfall): mean loss of the returns at or below the VaR quantile."""
    if returns.size == 0:
        return math.nan
    cut = np.quantile(returns, 1.0 - level)
    return float(-returns[returns <= cut].mean())


def var_parametric(returns: F64, level: float = 0.95) -> float:
    """Gaussian VaR: -(mean + std × z_(1-level)) with the sample mean and std."""
    if returns.size < 2:
        return math.nan
    mu, sd = float(np.mean(returns)), float(np.std(returns, ddof=1))
    return -(mu + sd * float(stats.norm.ppf(1.0 - level)))


def cvar_parametric(returns: F64, level: float = 0.95) -> float:
    """Gaussian CVaR: -mean + std × pdf(z) / (1 - level)."""
    if returns.size < 2:
        return math.nan
    mu, sd = float(np.mean(returns)), float(np.std(returns, ddof=1))
    z = float(stats.norm.ppf(1.0 - level))
    return -mu + sd * float(stats.norm.pdf(z)) / (1.0 - level)


def sharpe(returns: F64, periods_per_year: float, risk_free_annual: float = 0.0) -> float:
    """Annualised Sharpe ratio: mean excess return / sample std × sqrt(periods per year)."""
    if returns.size < 2:
        return math.nan
    excess = returns - risk_free_annual / periods_per_year
    sd = float(np.std(returns, ddof=1))
    return math.nan if sd == 0 else float(np.mean(excess) / sd * math.sqrt(periods_per_year))


def sortino(returns: F64, periods_per_year: float, risk_free_annual: float = 0.0) -> float:
    """Annualised Sortino ratio: mean excess return / downside deviation × sqrt(periods per year).

    The downside deviation is sqrt(mean(min(excess, 0)^2)) over all periods.
    """
    if returns.size < 2:
        return math.nan
    excess = returns - risk_free_annual / periods_per_year
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    return math.nan if downside == 0 else float(np.mean(excess) / downside * math.sqrt(periods_per_year))


@dataclass(frozen=True, slots=True)
class Trend:
    """OLS slope of log price per day, its t-statistic, and a label (up / down / flat at |t| >= 2)."""

    slope_per_day: float
    t_stat: float
    label: str


def trend(days: F64, log_prices: F64) -> Trend:
    """Linear trend of log prices against time in days (residual autocorrelation is ignored, so
    the t-statistic is optimistic; it only labels the direction)."""
    if days.size < 3 or np.ptp(days) == 0:
        return Trend(math.nan, math.nan, "flat")
    fit = stats.linregress(days, log_prices)
    if fit.stderr == 0:  # a perfect line
        t = 0.0 if fit.slope == 0 else math.copysign(math.inf, fit.slope)
    else:
        t = float(fit.slope / fit.stderr)
    label = "up" if t >= 2 else "down" if t <= -2 else "flat"
    return Trend(float(fit.slope), t, label)
