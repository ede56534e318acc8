"""Vectorised backtest of forecast-driven strategies on a predictions frame.

Rules (the same for :mod:`coincast.backtest.paper`):

* **Periods.** A position opened at ``origin_time`` is held to ``target_time`` and earns
  ``actual_price / origin_price - 1``. Overlapping forecasts are **skipped**: the next position
  is taken from the first forecast whose origin is at or after the current one's target (with a
  horizon equal to the bar this keeps every forecast). Between two periods that do not touch the
  account is flat.
* **Signals** use only what was known at the origin: the forecast itself and past origin prices.
  ``long_only`` / ``long_short`` trade the sign of ``predicted_price / origin_price - 1``;
  ``prob`` goes long when ``prob_up > prob_long`` and short when ``prob_up < prob_short``.
  ``confident_only`` keeps a position only when the interval excludes the origin price
  (``lower > origin_price`` for a long, ``upper < origin_price`` for a short).
* **Sizing.** ``fixed``: the weight is ``fraction``; ``vol_target``: ``target_vol`` divided by the
  annualised volatility expected at the origin, capped at ``max_leverage``. With ``vol_source``
  ``forecast`` (the default) that is the forecast's own ``predicted_volatility`` (the volatility
  model behind every forecaster: log-HAR-RV), annualised by ``sqrt(year / horizon)``; with
  ``trailing``, or for predictions without that column, the trailing volatility of bar returns up
  to the origin (flat while fewer than ``vol_window`` past returns exist).
* **Holding.** A position is held between signals: consecutive joined periods with the same side
  are one trade whose units are fixed at entry (size: the entry period's target weight), so its
  value follows the price (a short from 0.594 to 0.276 earns +53.5 %, not the product of
  per-period rebalanced returns) and nothing is traded, or charged, until the side changes, the
  signal goes flat or a gap opens.
* **Costs.** Every trade costs ``|Δw| × (fee_bps + slippage_bps) / 10 000`` of equity at the
  time it is made: opening (the entry weight), closing (the weight the position has drifted to)
  and both legs of a flip. ``break_even_bps`` is the cost per unit traded at which the strategy's
  total return is zero (0 when it loses before costs).
* **Benchmarks.** Buy-and-hold of the same symbol over the same span, cost free: its equity is
  ``price / first origin price``. A model that never trades (persistence: predicted return 0)
  is the zero line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from coincast.analytics.risk import annualised_vol, max_drawdown, sharpe, sortino
from coincast.backtest.held import HeldPath, held_path
from coincast.domain import ConfigError, InvalidRequest

STRATEGIES = ("long_only", "long_short", "prob")
SIZINGS = ("fixed", "vol_target")
REQUIRED = (
    "symbol",
    "model",
    "horizon",
    "origin_time",
    "target_time",
    "origin_price",
    "predicted_price",
    "actual_price",
)
OPTIONAL = ("lower", "upper", "prob_up", "predicted_volatility")
VOL_SOURCES = ("forecast", "trailing")
YEAR_MS = 365 * 86_400_000


class InvalidPredictions(InvalidRequest):
    code = "invalid_predictions"


class UnknownStrategy(InvalidRequest):
    code = "unknown_strategy"


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Strategy, sizing and costs; raises :class:`InvalidRequest` on a bad value."""

    strategy: str = "long_short"
    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    prob_long: float = 0.55
    prob_short: float = 0.45
    confident_only: bool = False
    sizing: str = "fixed"
    fraction: float = 1.0
    target_vol: float = 0.5
    vol_window: int = 24
    max_leverage: float = 1.0
    vol_source: str = "forecast"

    def __post_init__(self) -> None:
        if self.vol_source not in VOL_SOURCES:
            raise InvalidRequest(f"unknown vol_source {self.vol_source!r}; expected one of {', '.join(VOL_SOURCES)}")
        if self.strategy not in STRATEGIES:
            raise UnknownStrategy(f"unknown strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if self.sizing not in SIZINGS:
            raise InvalidRequest(f"unknown sizing {self.sizing!r}; expected one of {', '.join(SIZINGS)}")
        for name in ("fee_bps", "slippage_bps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= 1000):
                raise InvalidRequest(f"{name} must be between 0 and 1000 basis points, got {v}")
        if not (0 <= self.prob_short <= self.prob_long <= 1):
            raise InvalidRequest(f"need 0 <= prob_short <= prob_long <= 1, got {self.prob_short}, {self.prob_long}")
        if not (0 < self.fraction <= 10 and 0 < self.max_leverage <= 10):
            raise InvalidRequest("fraction and max_leverage must be in (0, 10]")
        if not (0 < self.target_vol <= 10) or self.vol_window < 2:
            raise InvalidRequest("target_vol must be in (0, 10] and vol_window >= 2")

    @property
    def cost_rate(self) -> float:
        return (self.fee_bps + self.slippage_bps) / 10_000.0


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """One (symbol, model, horizon): metrics of the strategy and of buy-and-hold, curves, trades.

    ``equity`` has columns time, strategy, buy_and_hold, position, drawdown (first row: the start,
    1.0); ``trades`` has entry_time, exit_time, side, weight, entry_price, exit_price, periods,
    gross_return, net_return.
    """

    symbol: str
    model: str
    horizon: str
    metrics: dict[str, float]
    buy_and_hold: dict[str, float]
    equity: pd.DataFrame
    trades: pd.DataFrame
    config: BacktestConfig = field(default_factory=BacktestConfig)


def validate_predictions(df: pd.DataFrame) -> pd.DataFrame:
    """Check the columns of a predictions frame; times become UTC timestamps, prices floats.

    Raises:
        InvalidPredictions: a missing column, or no usable row.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InvalidPredictions(
            f"predictions lack column(s) {', '.join(missing)}; expected the output of coincast evaluate --predictions"
        )
    out = df.loc[:, [c for c in (*REQUIRED, *OPTIONAL) if c in df.columns]].copy()
    for c in OPTIONAL:
        if c not in out.columns:
            out[c] = np.nan
    for c in ("origin_time", "target_time"):
        out[c] = pd.to_datetime(out[c], utc=True)
    for c in ("origin_price", "predicted_price", "actual_price", *OPTIONAL):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    out["horizon"] = out["horizon"].astype(str)
    out = out[out["origin_price"].gt(0) & out["actual_price"].gt(0) & out["target_time"].gt(out["origin_time"])]
    if out.empty:
        raise InvalidPredictions("no scored prediction (actual_price) to backtest")
    return out


def times_ms(s: pd.Series) -> npt.NDArray[np.int64]:
    """UTC timestamps as integer epoch ms."""
    out: npt.NDArray[np.int64] = s.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return out


def select_periods(origin_ms: np.ndarray, target_ms: np.ndarray) -> np.ndarray:
    """Indices (into time-sorted arrays) of the non-overlapping periods, taken greedily."""
    # A sequential scan: each choice depends on the previous one, which numpy cannot express;
    # it is one pass over at most a few ten thousand rows.
    keep: list[int] = []
    free_at = np.iinfo(np.int64).min
    for i, (o, t) in enumerate(zip(origin_ms.tolist(), target_ms.tolist(), strict=True)):
        if o >= free_at:
            keep.append(i)
            free_at = t
    return np.asarray(keep, dtype=np.int64)


def trailing_vol(origin_ms: np.ndarray, origin_price: np.ndarray, window: int) -> pd.Series:
    """Annualised volatility of bar log returns over the ``window`` returns up to each origin."""
    bars = pd.Series(origin_price, index=origin_ms).groupby(level=0).last().sort_index()
    if len(bars) < 2:
        return pd.Series(np.nan, index=bars.index)
    bar_ms = float(np.median(np.diff(bars.index.to_numpy())))
    rets = np.log(bars).diff()
    return rets.rolling(window, min_periods=window).std() * math.sqrt(YEAR_MS / bar_ms)


def uses_forecast_vol(g: pd.DataFrame, cfg: BacktestConfig) -> bool:
    """Whether vol-targeted sizing reads the forecasts' own volatility (else the trailing one)."""
    return (
        cfg.vol_source == "forecast"
        and "predicted_volatility" in g.columns
        and bool(np.isfinite(g["predicted_volatility"].to_numpy(float)).any())
    )


def positions(g: pd.DataFrame, cfg: BacktestConfig, vol: pd.Series | None = None) -> np.ndarray:
    """Target weight per row of ``g`` (one symbol and model), from forecasts known at the origin."""
    origin = g["origin_price"].to_numpy(float)
    pred_ret = g["predicted_price"].to_numpy(float) / origin - 1.0
    if cfg.strategy == "prob":
        p = g["prob_up"].to_numpy(float)
        side = np.where(p > cfg.prob_long, 1.0, np.where(p < cfg.prob_short, -1.0, 0.0))
    else:
        side = np.nan_to_num(np.sign(pred_ret))
        if cfg.strategy == "long_only":
            side = np.maximum(side, 0.0)
    if cfg.confident_only:
        lower, upper = g["lower"].to_numpy(float), g["upper"].to_numpy(float)
        sure = np.where(side > 0, lower > origin, np.where(side < 0, upper < origin, False))
        side = np.where(sure, side, 0.0)
    if cfg.sizing == "fixed":
        return side * cfg.fraction
    if uses_forecast_vol(g, cfg):
        horizon_ms = (times_ms(g["target_time"]) - times_ms(g["origin_time"])).astype(float)
        v = g["predicted_volatility"].to_numpy(float) * np.sqrt(YEAR_MS / horizon_ms)
    else:
        if vol is None:
            vol = trailing_vol(times_ms(g["origin_time"]), origin, cfg.vol_window)
        v = vol.reindex(times_ms(g["origin_time"])).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.minimum(cfg.max_leverage, cfg.target_vol / v)
    out: npt.NDArray[np.float64] = side * np.nan_to_num(size, nan=0.0, posinf=0.0)
    return out


def backtest_group(g: pd.DataFrame, cfg: BacktestConfig) -> BacktestResult:
    """Backtest one (symbol, model, horizon) group of a validated predictions frame."""
    g = g.sort_values("origin_time", kind="stable").drop_duplicates("origin_time", keep="last")
    vol = (
        trailing_vol(times_ms(g["origin_time"]), g["origin_price"].to_numpy(float), cfg.vol_window)
        if cfg.sizing == "vol_target" and not uses_forecast_vol(g, cfg)
        else None
    )
    sel = g.iloc[select_periods(times_ms(g["origin_time"]), times_ms(g["target_time"]))]
    o_ms, t_ms = times_ms(sel["origin_time"]), times_ms(sel["target_time"])
    p0, p1 = sel["origin_price"].to_numpy(float), sel["actual_price"].to_numpy(float)
    n = len(sel)
    joined = np.zeros(n, dtype=bool)  # the period starts where the previous one ended
    joined[1:] = o_ms[1:] == t_ms[:-1]
    path = held_path(positions(sel, cfg, vol), joined, p0, p1)
    w, d_in, d_out = path.weight, path.d_in, path.d_out
    k = cfg.cost_rate
    growth = path.growth(k)
    net = growth - 1.0
    eq = np.cumprod(growth)
    eq_before = np.concatenate([[1.0], eq[:-1]])
    at_exit = eq_before * (1.0 - d_in * k) * path.gross
    cost_money = eq_before * d_in * k + at_exit * d_out * k
    fee_share = cfg.fee_bps / (cfg.fee_bps + cfg.slippage_bps) if k > 0 else 0.0

    start_ms, end_ms = int(o_ms[0]), int(t_ms[-1])
    span_ms = max(end_ms - start_ms, 1)
    horizon_ms = float(np.median(t_ms - o_ms))
    ppy = YEAR_MS / horizon_ms
    bh = p1 / p0[0]  # buy and hold marks at every period end (the price moves through gaps too)
    bh_curve = np.concatenate([[1.0], bh])
    bh_ret = bh_curve[1:] / bh_curve[:-1] - 1.0
    curve = np.concatenate([[1.0], eq])

    trades = _trades(sel, path, net)
    held_ms = float(np.sum((t_ms - o_ms)[w != 0]))
    metrics = _metrics(net, curve, span_ms, ppy) | {
        "trades": float(len(trades)),
        "hit_rate": float((trades["net_return"] > 0).mean()) if len(trades) else math.nan,
        "turnover": float(d_in.sum() + d_out.sum()),
        "exposure": held_ms / span_ms,
        "fees_paid": float(cost_money.sum() * fee_share),
        "slippage_paid": float(cost_money.sum() * (1.0 - fee_share)),
        "periods": float(n),
        "break_even_bps": path.break_even_bps(),
    }
    times = pd.to_datetime(np.concatenate([[start_ms], t_ms]), unit="ms", utc=True)
    equity = pd.DataFrame(
        {
            "time": times,
            "strategy": curve,
            "buy_and_hold": bh_curve,
            "position": np.concatenate([w, [0.0]]),  # weight held from this time on
            "drawdown": curve / np.maximum.accumulate(curve) - 1.0,
            "buy_and_hold_drawdown": bh_curve / np.maximum.accumulate(bh_curve) - 1.0,
        }
    )
    first = sel.iloc[0]
    return BacktestResult(
        str(first["symbol"]),
        str(first["model"]),
        str(first["horizon"]),
        metrics,
        _metrics(bh_ret, bh_curve, span_ms, ppy),
        equity,
        trades,
        cfg,
    )


def _metrics(net: np.ndarray, curve: np.ndarray, span_ms: int, ppy: float) -> dict[str, float]:
    final = float(curve[-1])
    with np.errstate(over="ignore"):  # a short span annualises to inf, reported as null
        ann = float(np.power(final, YEAR_MS / span_ms)) - 1.0 if final > 0 else -1.0
    return {
        "total_return": final - 1.0,
        "annual_return": ann,
        "annual_volatility": annualised_vol(net, ppy),
        "sharpe": sharpe(net, ppy),
        "sortino": sortino(net, ppy),
        "max_drawdown": max_drawdown(curve).depth,
    }


def _trades(sel: pd.DataFrame, path: HeldPath, net: np.ndarray) -> pd.DataFrame:
    """Each held run is one trade: entry at its first origin, exit at its last target."""
    w = path.weight
    run = np.where(w != 0, np.cumsum(path.start), 0)
    frame = pd.DataFrame(
        {
            "run": run,
            "entry_time": sel["origin_time"].to_numpy(),
            "exit_time": sel["target_time"].to_numpy(),
            "side": np.where(w > 0, "long", "short"),
            "weight": w,
            "entry_price": sel["origin_price"].to_numpy(float),
            "exit_price": sel["actual_price"].to_numpy(float),
            "gross": path.gross,
            "net": 1.0 + net,
        }
    )
    frame = frame[frame["run"] > 0]
    cols = [
        "entry_time",
        "exit_time",
        "side",
        "weight",
        "entry_price",
        "exit_price",
        "periods",
        "gross_return",
        "net_return",
    ]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    agg = frame.groupby("run", sort=True).agg(
        entry_time=("entry_time", "first"),
        exit_time=("exit_time", "last"),
        side=("side", "first"),
        weight=("weight", "first"),
        entry_price=("entry_price", "first"),
        exit_price=("exit_price", "last"),
        periods=("gross", "size"),
        gross_return=("gross", "prod"),
        net_return=("net", "prod"),
    )
    agg["gross_return"] -= 1.0
    agg["net_return"] -= 1.0
    return agg.reset_index(drop=True).loc[:, cols]


def run_backtest(
    predictions: pd.DataFrame,
    cfg: BacktestConfig,
    *,
    models: list[str] | None = None,
    symbols: list[str] | None = None,
) -> list[BacktestResult]:
    """Backtest every (symbol, model, horizon) of a predictions frame (optionally filtered).

    Raises:
        InvalidPredictions: wrong schema or nothing scored.
        InvalidRequest: a requested model or symbol absent from the frame (naming those present).
    """
    df = validate_predictions(predictions)
    for name, wanted in (("model", models), ("symbol", symbols)):
        if wanted:
            present = sorted(df[name].astype(str).unique())
            bad = [x for x in wanted if x not in present]
            if bad:
                raise InvalidRequest(f"unknown {name} {', '.join(bad)}; the predictions have {', '.join(present)}")
            df = df[df[name].isin(wanted)]
    return [backtest_group(g, cfg) for _, g in df.groupby(["symbol", "model", "horizon"], sort=True)]


def result_payload(
    res: BacktestResult, *, max_trades: int | None = 500, max_points: int | None = 5000
) -> dict[str, Any]:
    """JSON-ready: metrics, both equity curves (thinned to ``max_points``), the last ``max_trades`` trades."""
    eq = res.equity
    if max_points is not None and len(eq) > max_points:
        idx = np.unique(np.linspace(0, len(eq) - 1, max_points).round().astype(int))
        eq = eq.iloc[idx]
    trades = res.trades if max_trades is None else res.trades.tail(max_trades)

    def iso(s: pd.Series) -> list[str]:
        return [t.isoformat() for t in pd.to_datetime(s, utc=True)]

    def clean(d: dict[str, float]) -> dict[str, float | None]:
        return {k: (v if math.isfinite(v) else None) for k, v in d.items()}

    return {
        "symbol": res.symbol,
        "model": res.model,
        "horizon": res.horizon,
        "metrics": clean(res.metrics),
        "buy_and_hold": clean(res.buy_and_hold),
        "equity": {
            "time": iso(eq["time"]),
            "strategy": eq["strategy"].round(8).tolist(),
            "buy_and_hold": eq["buy_and_hold"].round(8).tolist(),
            "drawdown": eq["drawdown"].round(8).tolist(),
            "buy_and_hold_drawdown": eq["buy_and_hold_drawdown"].round(8).tolist(),
        },
        "trades": [
            {
                **{k: v for k, v in row.items() if k not in ("entry_time", "exit_time")},
                "entry_time": pd.Timestamp(row["entry_time"]).isoformat(),
                "exit_time": pd.Timestamp(row["exit_time"]).isoformat(),
            }
            for row in trades.to_dict("records")
        ],
        "trades_total": len(res.trades),
    }


def load_predictions(path: Path) -> pd.DataFrame:
    """Read a predictions parquet (``coincast evaluate --predictions``).

    Raises:
        ConfigError: missing or unreadable file.
        InvalidPredictions: wrong schema.
    """
    if not path.is_file():
        raise ConfigError(f"predictions file {str(path)!r} not found")
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {str(path)!r} as parquet: {exc}") from None
    return validate_predictions(df)


def equity_frame(results: list[BacktestResult]) -> pd.DataFrame:
    """Every result's equity curve, long format with symbol, model, horizon columns."""
    return pd.concat(
        [r.equity.assign(symbol=r.symbol, model=r.model, horizon=r.horizon) for r in results], ignore_index=True
    )
