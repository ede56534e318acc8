"""After-cost trading scores of a forecast group: its default strategy next to buy-and-hold.

The default strategy of every model is the backtest's ``long_short`` with weight 1: long when the
forecast price is above the origin price, short when below, flat when equal (persistence never
trades), positions held between signals, fees and slippage charged on every trade (see
:mod:`coincast.backtest.engine`). For direction classifiers the forecast price leans the way
P(up) leans, so this is "long when P(up) > 0.5".

Keys (all fractions, not percent): ``strategy_return`` (total, after costs), ``strategy_sharpe``
(annualised, after costs), ``strategy_max_drawdown`` (negative), ``strategy_turnover`` (sum of
traded weight), ``strategy_trades``; ``buy_and_hold_return``/``_sharpe``/``_max_drawdown`` over the
same span, cost free; ``break_even_bps``: the cost per unit traded (fee plus slippage, basis
points per side) at which the strategy's total return is zero, 0 when it loses before costs, null
when it never trades; ``cost_bps``: the fee plus slippage the scores were computed at.
"""

from __future__ import annotations

import math

import pandas as pd

from coincast.backtest.engine import BacktestConfig, InvalidPredictions, backtest_group, validate_predictions

TRADING_NAMES = (
    "strategy_return",
    "strategy_sharpe",
    "strategy_max_drawdown",
    "strategy_turnover",
    "strategy_trades",
    "buy_and_hold_return",
    "buy_and_hold_sharpe",
    "buy_and_hold_max_drawdown",
    "break_even_bps",
    "cost_bps",
)


def default_strategy(fee_bps: float = 10.0, slippage_bps: float = 5.0) -> BacktestConfig:
    """The strategy every leaderboard row is traded with: long/short on the forecast's sign, weight 1."""
    return BacktestConfig(strategy="long_short", sizing="fixed", fraction=1.0, fee_bps=fee_bps,
                          slippage_bps=slippage_bps)


def trading_scores(group: pd.DataFrame, cfg: BacktestConfig | None = None) -> dict[str, float | None]:
    """:data:`TRADING_NAMES` for one (symbol, model, horizon) group of predictions."""
    cfg = cfg or default_strategy()
    try:
        frame = validate_predictions(group)
    except InvalidPredictions:  # nothing scored yet
        return {k: None for k in TRADING_NAMES}
    res = backtest_group(frame, cfg)
    m, bh = res.metrics, res.buy_and_hold
    out = {
        "strategy_return": m["total_return"],
        "strategy_sharpe": m["sharpe"],
        "strategy_max_drawdown": m["max_drawdown"],
        "strategy_turnover": m["turnover"],
        "strategy_trades": m["trades"],
        "buy_and_hold_return": bh["total_return"],
        "buy_and_hold_sharpe": bh["sharpe"],
        "buy_and_hold_max_drawdown": bh["max_drawdown"],
        "break_even_bps": m["break_even_bps"],
        "cost_bps": cfg.fee_bps + cfg.slippage_bps,
    }
    return {k: (float(v) if math.isfinite(v) else None) for k, v in out.items()}
