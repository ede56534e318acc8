"""Market analytics from klines: per-coin statistics, weekly/monthly returns, correlations, portfolios.

Every table is a pandas DataFrame the API can serve as records and the CLI can write as CSV.
Risk measures use daily simple returns (the last close of each UTC day), annualised with 365
days; prices, volumes and drawdowns use the candles as given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coincast.analytics import portfolio, risk
from coincast.domain import InvalidRequest
from coincast.features.klines import normalise_klines

DAYS_PER_YEAR = 365.0
_PERIOD = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")


@dataclass(frozen=True, slots=True)
class AnalyticsReport:
    """The analytics tables for one period of data."""

    period: str
    start: pd.Timestamp
    end: pd.Timestamp
    summary: pd.DataFrame
    weekly: pd.DataFrame
    monthly: pd.DataFrame
    correlation: pd.DataFrame
    portfolios: pd.DataFrame
    weights: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name -> table (the correlation matrix with its symbol index as the first column)."""
        return {
            "summary": self.summary,
            "weekly": self.weekly,
            "monthly": self.monthly,
            "correlation": self.correlation.rename_axis("symbol").reset_index(),
            "portfolios": self.portfolios,
            "weights": self.weights,
        }

    def to_records(self) -> dict[str, list[dict[str, object]]]:
        """Every table as JSON-ready records (timestamps as ISO 8601 strings, NaN as None)."""
        out: dict[str, list[dict[str, object]]] = {}
        for name, table in self.tables().items():
            frame = table.copy()
            for col in frame.columns:
                if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                    frame[col] = frame[col].map(lambda t: t.isoformat())
            frame = frame.astype(object).where(frame.notna(), None)
            out[name] = [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        return out

    def to_csv(self, target: str | Path) -> list[Path]:
        """Write every table as CSV and return the paths.

        A directory (existing, or a path without ``.csv``) gets ``<table>.csv`` files; a
        ``something.csv`` path gets the summary, with the other tables beside it as
        ``something_<table>.csv``.
        """
        target = Path(target)
        written: list[Path] = []
        if target.suffix.lower() == ".csv":
            target.parent.mkdir(parents=True, exist_ok=True)
            for name, table in self.tables().items():
                path = target if name == "summary" else target.with_name(f"{target.stem}_{name}.csv")
                table.to_csv(path, index=False)
                written.append(path)
            return written
        target.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables().items():
            path = target / f"{name}.csv"
            table.to_csv(path, index=False)
            written.append(path)
        return written


def _plain(value: object) -> object:
    """numpy scalars as Python numbers (for JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def period_start(end: pd.Timestamp, period: str) -> pd.Timestamp | None:
    """Start of the trailing ``period`` ending at ``end`` (None for ``all``).

    Periods: ``all``, ``<n>d`` days, ``<n>w`` weeks, ``<n>m`` calendar months, ``<n>y`` years.

    Raises:
        InvalidRequest: anything else.
    """
    if period.strip().lower() == "all":
        return None
    match = _PERIOD.match(period.lower())
    if match is None or int(match.group(1)) == 0:
        raise InvalidRequest(f"unknown period {period!r}; expected all or a count and d/w/m/y, e.g. 30d, 12w, 6m, 1y")
    n, unit = int(match.group(1)), match.group(2)
    offset = {
        "d": pd.DateOffset(days=n),
        "w": pd.DateOffset(weeks=n),
        "m": pd.DateOffset(months=n),
        "y": pd.DateOffset(years=n),
    }[unit]
    return end - offset


def daily_closes(frame: pd.DataFrame) -> pd.DataFrame:
    """Last close of each UTC day, dates × symbols (NaN where a symbol has no candle that day)."""
    day = frame["open_time"].dt.floor("D")
    last = frame.assign(day=day).groupby(["day", "symbol"], sort=True)["close"].last()
    return last.unstack("symbol").sort_index()


def _coin_row(symbol: str, candles: pd.DataFrame, daily: pd.Series, risk_free: float) -> dict[str, object]:
    close = candles["close"].to_numpy(dtype=float)
    returns = daily.pct_change().dropna().to_numpy(dtype=float)
    dd = risk.max_drawdown(close)
    times = candles["open_time"]
    row: dict[str, object] = {
        "symbol": symbol,
        "start": times.iloc[0],
        "end": times.iloc[-1],
        "candles": len(candles),
        "last_price": close[-1],
        "avg_price": float(close.mean()),
        "min_price": float(candles["low"].min()),
        "max_price": float(candles["high"].max()),
        "avg_volume": float(candles["volume"].mean()),
        "total_volume": float(candles["volume"].sum()),
        "period_return": close[-1] / candles["open"].iloc[0] - 1.0,
    }
    end = times.iloc[-1]
    for label, days in (("7d", 7), ("30d", 30)):
        window = candles[times > end - pd.Timedelta(days=days)]
        row[f"return_{label}"] = window["close"].iloc[-1] / window["open"].iloc[0] - 1.0
        elapsed = (window["open_time"] - window["open_time"].iloc[0]).dt.total_seconds().to_numpy() / 86_400
        fit = risk.trend(elapsed, np.log(window["close"].to_numpy(dtype=float)))
        row[f"trend_{label}"] = fit.label
        row[f"trend_slope_{label}_per_day"] = fit.slope_per_day
    row.update(
        {
            "ann_volatility": risk.annualised_vol(returns, DAYS_PER_YEAR),
            "max_drawdown": dd.depth,
            "drawdown_peak": times.iloc[dd.peak],
            "drawdown_trough": times.iloc[dd.trough],
            "var_95_hist": risk.var_historical(returns),
            "cvar_95_hist": risk.cvar_historical(returns),
            "var_95_param": risk.var_parametric(returns),
            "cvar_95_param": risk.cvar_parametric(returns),
            "sharpe": risk.sharpe(returns, DAYS_PER_YEAR, risk_free),
            "sortino": risk.sortino(returns, DAYS_PER_YEAR, risk_free),
            "daily_returns": len(returns),
        }
    )
    return row


def period_returns(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Return of each symbol per calendar week (``"W"``, Monday start) or month (``"M"``), UTC.

    Columns: symbol, period (start date), open, close, return (close / open - 1), direction.
    The first and last periods may be partial (the ``candles`` column says how many candles).
    """
    naive = frame["open_time"].dt.tz_convert("UTC").dt.tz_localize(None)
    periods = naive.dt.to_period(freq).dt.start_time
    grouped = frame.assign(period=periods).groupby(["symbol", "period"], sort=True)
    out = grouped.agg(open=("open", "first"), close=("close", "last"), candles=("close", "size")).reset_index()
    out["period"] = out["period"].dt.tz_localize("UTC")
    out["return"] = out["close"] / out["open"] - 1.0
    out["direction"] = np.where(out["return"] > 0, "up", np.where(out["return"] < 0, "down", "flat"))
    return out


def build_report(
    klines: pd.DataFrame,
    *,
    period: str = "all",
    symbols: Sequence[str] | None = None,
    risk_free: float = 0.0,
    on_symbol: Callable[[str], None] | None = None,
) -> AnalyticsReport:
    """All analytics tables for the trailing ``period`` of ``klines``.

    Args:
        klines: the schema of ``klines_1h.parquet`` (any interval up to 1 day).
        period: ``all`` or a trailing window like ``30d``, ``12w``, ``6m``, ``1y`` ending at the
            last candle.
        symbols: restrict to these symbols.
        risk_free: annual risk-free rate for Sharpe, Sortino and the max-Sharpe portfolio.
        on_symbol: called with each symbol when its statistics are done (progress bars).

    Raises:
        InvalidRequest: bad schema, unknown period or symbols, no data in the period.
    """
    frame = normalise_klines(klines)
    if symbols:
        from coincast.features.klines import select_symbols

        frame = select_symbols(frame, symbols)
    end = frame["open_time"].max()
    start = period_start(end, period)
    if start is not None:
        frame = frame[frame["open_time"] > start].reset_index(drop=True)
    if frame.empty:
        raise InvalidRequest(f"no candles in the period {period!r}")
    notes: list[str] = []
    daily = daily_closes(frame)
    rows = []
    for sym, group in frame.groupby("symbol", sort=True):
        rows.append(_coin_row(str(sym), group, daily[sym].dropna(), risk_free))
        if on_symbol is not None:
            on_symbol(str(sym))
    summary = pd.DataFrame(rows)
    returns = daily.pct_change(fill_method=None).iloc[1:]
    correlation = returns.corr(min_periods=3)
    portfolios, weights = _portfolios(returns, risk_free, notes)
    return AnalyticsReport(
        period=period,
        start=frame["open_time"].min(),
        end=end,
        summary=summary,
        weekly=period_returns(frame, "W"),
        monthly=period_returns(frame, "M"),
        correlation=correlation,
        portfolios=portfolios,
        weights=weights,
        notes=tuple(notes),
    )


def _portfolios(returns: pd.DataFrame, risk_free: float, notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    aligned = returns.dropna(how="any")
    cols = ["strategy", "expected_return", "volatility", "sharpe", "days"]
    wcols = ["strategy", "symbol", "weight", "risk_contribution"]
    if aligned.shape[1] < 2 or len(aligned) < aligned.shape[1] + 2:
        notes.append(f"portfolios skipped: need >= 2 coins and more common days than coins (have {aligned.shape})")
        return pd.DataFrame(columns=cols), pd.DataFrame(columns=wcols)
    mu = aligned.mean().to_numpy() * DAYS_PER_YEAR
    cov = aligned.cov().to_numpy() * DAYS_PER_YEAR
    symbols = [str(s) for s in aligned.columns]
    suggestions = portfolio.suggest(symbols, mu, cov, risk_free)
    summary = pd.DataFrame(
        [
            {
                "strategy": p.strategy,
                "expected_return": p.expected_return,
                "volatility": p.volatility,
                "sharpe": p.sharpe,
                "days": len(aligned),
            }
            for p in suggestions
        ]
    )
    weights = pd.DataFrame(
        [
            {"strategy": p.strategy, "symbol": s, "weight": float(w), "risk_contribution": float(rc)}
            for p in suggestions
            for s, w, rc in zip(p.symbols, p.weights, p.risk_contributions, strict=True)
        ]
    )
    if not math.isfinite(float(summary["sharpe"].max())):
        notes.append("Sharpe undefined for some portfolio (zero volatility)")
    return summary, weights
