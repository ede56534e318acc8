"""Backtests and paper trading of forecast-driven strategies (see :mod:`coincast.backtest.engine`)."""

from coincast.backtest.engine import (
    STRATEGIES,
    BacktestConfig,
    BacktestResult,
    InvalidPredictions,
    UnknownStrategy,
    result_payload,
    run_backtest,
)
from coincast.backtest.paper import PaperAccount, predictions_frame

__all__ = [
    "STRATEGIES",
    "BacktestConfig",
    "BacktestResult",
    "InvalidPredictions",
    "PaperAccount",
    "UnknownStrategy",
    "predictions_frame",
    "result_payload",
    "run_backtest",
]
