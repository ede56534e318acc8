"""The backtest engine on frames small enough to check by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from coincast.backtest import BacktestConfig, InvalidPredictions, UnknownStrategy, run_backtest
from coincast.backtest.engine import backtest_group, validate_predictions
from coincast.domain import InvalidRequest

H = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % H


def frame(
    prices: list[float],
    predicted: list[float],
    *,
    model: str = "m",
    prob_up: list[float] | None = None,
    lower: list[float] | None = None,
    upper: list[float] | None = None,
    step: int = 1,
    horizon_bars: int = 1,
) -> pd.DataFrame:
    """Forecasts at bars 0..n-1-horizon of ``prices`` (one per ``step`` bars), each horizon_bars ahead."""
    idx = list(range(0, len(prices) - horizon_bars, step))
    n = len(idx)
    return pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "model": model,
            "horizon": "1h",
            "origin_time": pd.to_datetime([T0 + i * H for i in idx], unit="ms", utc=True),
            "target_time": pd.to_datetime([T0 + (i + horizon_bars) * H for i in idx], unit="ms", utc=True),
            "origin_price": [prices[i] for i in idx],
            "predicted_price": predicted[:n],
            "actual_price": [prices[i + horizon_bars] for i in idx],
            "prob_up": prob_up if prob_up is not None else [np.nan] * n,
            "lower": lower if lower is not None else [np.nan] * n,
            "upper": upper if upper is not None else [np.nan] * n,
            "window": 0,
        }
    )


def one(df: pd.DataFrame, **cfg: object) -> object:
    (res,) = run_backtest(df, BacktestConfig(**cfg))  # type: ignore[arg-type]
    return res


def test_two_trades_with_fees_and_slippage_exactly() -> None:
    # bar 0->1 +10 % (long), 1->2 flat (no position), 2->3 -20 % (short): two trades.
    df = frame([100, 110, 110, 88], [101, 110, 80])
    res = one(df, strategy="long_short", fee_bps=10, slippage_bps=5)
    k = 0.0015
    first = (1 - k) * 1.10 * (1 - k)
    # the short's units were worth 1 x equity at 110; at 88 they are worth 0.8 of the entry
    # equity while equity is 1.2 of it: closing trades a weight of 0.8 / 1.2.
    second = (1 - k) * 1.20 * (1 - k * 0.8 / 1.2)
    assert res.metrics["total_return"] == pytest.approx(first * second - 1, abs=1e-12)
    assert res.metrics["trades"] == 2
    assert list(res.trades["side"]) == ["long", "short"]
    assert res.trades["gross_return"].tolist() == pytest.approx([0.10, 0.20])
    assert res.trades["net_return"].tolist() == pytest.approx([first - 1, second - 1])
    assert res.metrics["hit_rate"] == 1.0
    assert res.metrics["turnover"] == pytest.approx(3 + 0.8 / 1.2)
    assert res.metrics["exposure"] == pytest.approx(2 / 3)
    # money: entry 1*k, exit 1.1*(1-k)*k, entry first*k, exit first*(1-k)*0.8*k (the short's
    # notional at 88); fee share 10/15
    costs = k + 1.1 * (1 - k) * k + first * k + first * (1 - k) * 0.8 * k
    assert res.metrics["fees_paid"] == pytest.approx(costs * 10 / 15)
    assert res.metrics["slippage_paid"] == pytest.approx(costs * 5 / 15)
    assert res.equity["strategy"].iloc[-1] == pytest.approx(first * second)
    assert res.buy_and_hold["total_return"] == pytest.approx(88 / 100 - 1)


def test_long_only_skips_the_short_and_holding_on_costs_nothing() -> None:
    # two joined longs are one trade: entry and exit costs only, no cost in between.
    df = frame([100, 110, 121, 100], [200, 200, 50])
    res = one(df, strategy="long_only", fee_bps=20, slippage_bps=0)
    k = 0.002
    assert res.metrics["total_return"] == pytest.approx((1 - k) * 1.21 * (1 - k) - 1)
    assert res.metrics["trades"] == 1
    assert res.trades["periods"].tolist() == [2]
    assert res.equity["position"].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_always_flat_is_zero_and_buy_and_hold_is_the_price_ratio() -> None:
    rng = np.random.default_rng(1)
    prices = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200))))
    df = frame(prices, prices[:-1], model="persistence")  # predicted = origin price: never trades
    res = one(df, fee_bps=10, slippage_bps=5)
    assert res.metrics["total_return"] == 0.0
    assert res.metrics["trades"] == 0 and res.metrics["turnover"] == 0 and res.metrics["exposure"] == 0
    assert (res.equity["strategy"] == 1.0).all()
    assert res.metrics["max_drawdown"] == 0.0
    assert res.buy_and_hold["total_return"] == pytest.approx(prices[-1] / prices[0] - 1)
    assert res.equity["buy_and_hold"].to_numpy() == pytest.approx(np.asarray(prices) / prices[0])


def test_no_look_ahead_positions_ignore_later_actual_prices() -> None:
    rng = np.random.default_rng(7)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120)))
    pred = prices[:-1] * (1 + rng.normal(0, 0.01, 119))
    base = frame(list(prices), list(pred), prob_up=list(rng.uniform(0, 1, 119)))
    cfg = dict(strategy="long_short", sizing="vol_target", target_vol=0.3, vol_window=10)
    res = one(base, **cfg)
    cut = 60
    changed = base.copy()
    later = changed["target_time"] > changed["origin_time"].iloc[cut]
    changed.loc[later, "actual_price"] *= rng.uniform(0.5, 1.5, int(later.sum()))
    after = changed["origin_time"] > changed["origin_time"].iloc[cut]
    changed.loc[after, "origin_price"] *= 1.3
    changed.loc[after, "predicted_price"] *= 0.7
    res2 = one(changed, **cfg)
    pos1, pos2 = res.equity["position"].to_numpy(), res2.equity["position"].to_numpy()
    assert pos1[: cut + 1].tolist() == pos2[: cut + 1].tolist()
    assert np.abs(pos1[: cut + 1]).max() > 0
    assert res.equity["strategy"].iloc[cut] == res2.equity["strategy"].iloc[cut]
    assert pos1.tolist() != pos2.tolist()  # the change did matter later on


def test_overlapping_forecasts_are_skipped() -> None:
    prices = [100.0, 101, 102, 103, 104, 105, 106]
    df = frame(prices, [1000.0] * 10, horizon_bars=2)  # origins 0..4, each 2 bars ahead
    res = one(df, strategy="long_only", fee_bps=0, slippage_bps=0)
    assert res.metrics["periods"] == 3  # origins 0, 2, 4
    assert res.metrics["total_return"] == pytest.approx(106 / 100 - 1)
    assert res.metrics["trades"] == 1


def test_prob_thresholds_confidence_filter_and_fraction() -> None:
    prices = [100.0, 110, 99, 110]
    df = frame(prices, [120, 90, 120], prob_up=[0.7, 0.2, 0.5])
    res = one(df, strategy="prob", fee_bps=0, slippage_bps=0, fraction=0.5)
    assert res.equity["position"].tolist() == [0.5, -0.5, 0.0, 0.0]
    assert res.metrics["total_return"] == pytest.approx(1.05 * 1.05 - 1)
    conf = frame(prices, [120, 90, 120], lower=[101, 95, 101], upper=[130, 111, 130])
    res = one(conf, strategy="long_short", fee_bps=0, slippage_bps=0, confident_only=True)
    assert res.equity["position"].tolist() == [1.0, 0.0, 1.0, 0.0]  # the short's interval holds 110


def test_vol_target_scales_inversely_and_is_flat_while_warming_up() -> None:
    rng = np.random.default_rng(3)
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 80)))
    wild = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 80)))
    w = {}
    for name, p in (("calm", calm), ("wild", wild)):
        res = one(frame(list(p), [1e9] * 79), sizing="vol_target", target_vol=0.2, vol_window=20, max_leverage=5)
        pos = res.equity["position"].to_numpy()
        assert (pos[:20] == 0).all() and (pos[20:-1] > 0).all()
        w[name] = pos[20:-1].mean()
    assert w["calm"] > 3 * w["wild"]


def test_metrics_use_the_risk_functions() -> None:
    from coincast.analytics.risk import sharpe

    rng = np.random.default_rng(5)
    prices = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50))))
    res = one(frame(prices, [1e9] * 49), strategy="long_only", fee_bps=0, slippage_bps=0)
    r = np.diff(prices) / np.asarray(prices[:-1])
    assert res.metrics["sharpe"] == pytest.approx(sharpe(r, 365 * 24))
    assert res.metrics["total_return"] == pytest.approx(res.buy_and_hold["total_return"], abs=1e-12)
    assert res.metrics["max_drawdown"] == pytest.approx(res.buy_and_hold["max_drawdown"])
    assert res.metrics["max_drawdown"] < 0
    assert math.isfinite(res.metrics["annual_volatility"])


def test_errors_are_clear() -> None:
    with pytest.raises(UnknownStrategy, match="long_only"):
        BacktestConfig(strategy="moon")
    with pytest.raises(InvalidRequest, match="fee_bps"):
        BacktestConfig(fee_bps=-1)
    with pytest.raises(InvalidPredictions, match="actual_price"):
        validate_predictions(
            pd.DataFrame({"symbol": ["X"]}).assign(
                model="m", horizon="1h", origin_time=0, target_time=1, origin_price=1.0, predicted_price=1.0
            )
        )
    df = frame([100.0, 101, 102], [1.0, 2.0])
    with pytest.raises(InvalidRequest, match="the predictions have m"):
        run_backtest(df, BacktestConfig(), models=["lstm"])
    assert len(backtest_group(validate_predictions(df), BacktestConfig()).equity) == 3


def test_a_long_held_short_follows_the_price() -> None:
    # The audit's case: ADA shorted at 0.594 and held (every forecast says down) to 0.276.
    prices = [0.594, 0.62, 0.50, 0.45, 0.30, 0.276]
    df = frame(prices, [p * 0.9 for p in prices[:-1]])
    res = one(df, strategy="long_short", fee_bps=10, slippage_bps=5)
    k = 0.0015
    gross = 1 + (-1) * (0.276 / 0.594 - 1)  # +53.54 %: the price fell 53.5 %
    drift = (0.276 / 0.594) / gross  # the short's notional over equity at the exit
    net = (1 - k) * gross * (1 - k * drift)
    assert res.metrics["trades"] == 1 and res.metrics["hit_rate"] == 1.0
    (trade,) = res.trades.to_dict("records")
    assert (trade["side"], trade["periods"], trade["weight"]) == ("short", 5, -1.0)
    assert (trade["entry_price"], trade["exit_price"]) == (0.594, 0.276)
    assert trade["gross_return"] == pytest.approx(gross - 1, abs=1e-12)
    assert trade["net_return"] == pytest.approx(net - 1, abs=1e-12)
    assert res.metrics["total_return"] == pytest.approx(net - 1, abs=1e-12)
    assert res.metrics["turnover"] == pytest.approx(1 + drift)
    # marked to market in between: after 0.62 the short is down 4.38 %, no cost charged
    assert res.equity["strategy"].iloc[1] == pytest.approx((1 - k) * (1 - (0.62 / 0.594 - 1)))
    assert res.equity["strategy"].iloc[3] == pytest.approx((1 - k) * (1 - (0.45 / 0.594 - 1)))
    # a short rebalanced to -1 every hour would have made a different (wrong) number
    rebalanced = np.prod([1 - (b / a - 1) for a, b in itertools.pairwise(prices)])
    assert abs(rebalanced - gross) > 0.05


def test_a_long_held_long_at_half_weight_follows_the_price() -> None:
    prices = [100.0, 120.0, 90.0, 130.0]
    res = one(frame(prices, [1e9] * 3), strategy="long_only", fraction=0.5, fee_bps=20, slippage_bps=0)
    k = 0.002
    gross = 1 + 0.5 * (130 / 100 - 1)  # 1.15
    drift = 0.5 * 1.3 / gross  # the long's notional over equity at the exit
    e = 1 - 0.5 * k  # entering trades half the equity
    assert res.equity["strategy"].tolist() == pytest.approx([1.0, e * 1.10, e * 0.95, e * gross * (1 - k * drift)])
    assert res.trades["gross_return"].tolist() == pytest.approx([0.15])
    assert res.metrics["turnover"] == pytest.approx(0.5 + drift)
    assert res.equity["position"].tolist() == [0.5, 0.5, 0.5, 0.0]


def test_vol_target_size_is_fixed_at_entry_while_the_side_holds() -> None:
    rng = np.random.default_rng(11)
    prices = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))))
    res = one(frame(prices, [1e9] * 59), sizing="vol_target", target_vol=0.2, vol_window=10, max_leverage=5)
    pos = res.equity["position"].to_numpy()[:-1]
    assert (pos[:10] == 0).all() and pos[10] > 0 and (pos[10:] == pos[10]).all()
    assert res.metrics["trades"] == 1


def test_break_even_cost_is_where_the_return_reaches_zero() -> None:
    prices = [100.0, 100.2, 99.8, 99.5]
    df = frame(prices, [p * 0.9 for p in prices[:-1]])
    gross = 1 + (-1) * (99.5 / 100 - 1)
    d = (99.5 / 100) / gross
    # gross * (1 - k) * (1 - d k) = 1  ->  d k^2 - (1 + d) k + 1 - 1/gross = 0, the smaller root
    k = ((1 + d) - math.sqrt((1 + d) ** 2 - 4 * d * (1 - 1 / gross))) / (2 * d)
    res = one(df, fee_bps=10, slippage_bps=5)
    assert res.metrics["break_even_bps"] == pytest.approx(k * 1e4, rel=1e-9)
    at = one(df, fee_bps=k * 1e4, slippage_bps=0)
    assert at.metrics["total_return"] == pytest.approx(0.0, abs=1e-9)
    # losing before costs: 0; never trading: NaN
    loser = frame([100.0, 90.0, 80.0], [200.0, 200.0])
    assert one(loser).metrics["break_even_bps"] == 0.0
    assert math.isnan(one(frame([100.0, 90.0], [100.0], model="persistence")).metrics["break_even_bps"])


def test_vol_target_sizes_by_the_forecast_volatility() -> None:
    prices = [100.0, 101, 100, 102, 99]
    df = frame(prices, [200.0, 50.0, 200.0, 200.0]).assign(predicted_volatility=[0.01, 0.02, 0.005, 0.005])
    res = one(df, sizing="vol_target", target_vol=0.5, max_leverage=2, fee_bps=0, slippage_bps=0)
    annual = np.sqrt(365 * 24)  # hourly volatility to annual
    w = [0.5 / (0.01 * annual), -0.5 / (0.02 * annual), min(2.0, 0.5 / (0.005 * annual))]
    # the third forecast opens a long that the fourth (same side) holds at its entry size
    assert res.equity["position"].tolist() == pytest.approx([w[0], w[1], w[2], w[2], 0.0])
    assert res.metrics["total_return"] == pytest.approx(
        (1 + w[0] * 0.01) * (1 + w[1] * (100 / 101 - 1)) * (1 + w[2] * (99 / 100 - 1)) - 1
    )
    # the trailing source ignores the column (flat: fewer than vol_window past returns)
    trailing = one(df, sizing="vol_target", vol_source="trailing", fee_bps=0, slippage_bps=0)
    assert (trailing.equity["position"] == 0).all()
    with pytest.raises(InvalidRequest, match="vol_source"):
        BacktestConfig(vol_source="oracle")
