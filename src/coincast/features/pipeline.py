"""Klines (many symbols) -> one feature row per (symbol, open_time): indicators, ML features, targets.

The work per symbol is :func:`symbol_features`, the one function both engines call (the local
engine in a loop, Spark through ``groupBy("symbol").applyInPandas``). Cross-asset features need
the market symbol's close on every row, so :func:`attach_market` joins it in first.

Warm-up rows (where any indicator or feature has no value yet) are dropped, never back-filled.
The last rows, whose targets lie in the future, keep their features and have NaN targets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coincast.domain import InvalidRequest
from coincast.features import ml
from coincast.features.bars import OPTIONAL_COLUMNS, Bars
from coincast.features.klines import interval_ms_of, normalise_klines, to_utc_ms
from coincast.features.registry import BY_NAME, INDICATORS, OUTPUTS, Scale, compute_indicators
from coincast.features.targets import TARGET_PREFIX, Horizon, compute_targets, target_column

__all__ = [
    "FeaturePlan",
    "attach_market",
    "build_features",
    "feature_columns",
    "plan_features",
    "run_local",
    "symbol_features",
    "target_column",
]

log = logging.getLogger(__name__)

MARKET_SYMBOL = "BTCUSDT"
MARKET_COLUMN = "market_close"
KEY_COLUMNS: tuple[str, ...] = ("symbol", "open_time")


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    """What to compute, decided once for the whole input so every symbol yields the same columns.

    Attributes:
        indicators: registry names to compute (those whose input columns the data has).
        optional_columns: optional klines columns present (non-null on every row).
        horizons: target horizons that fit the data's interval.
        interval_ms: the data's candle interval.
        cross_asset: whether the market symbol is in the data (cross-asset features on).
        notes: what was skipped and why, for the user.
    """

    indicators: tuple[str, ...]
    optional_columns: tuple[str, ...]
    horizons: tuple[Horizon, ...]
    interval_ms: int
    cross_asset: bool
    notes: tuple[str, ...]

    @property
    def warmup(self) -> int:
        """Rows dropped at the start of each symbol (before the cross-asset adjustment)."""
        return max(ml.normalisation_warmup(self.indicators), ml.RETURN_WARMUP, ml.RANGE_WARMUP)


def plan_features(klines: pd.DataFrame, horizons: Sequence[str] = ("1h", "1d")) -> FeaturePlan:
    """Decide indicators, horizons and cross-asset features for ``klines`` (normalised or not).

    Raises:
        InvalidRequest: bad schema, unknown horizon, no usable horizon.
    """
    frame = normalise_klines(klines)
    notes: list[str] = []
    present: list[str] = []
    for col in OPTIONAL_COLUMNS:
        if col not in frame.columns or frame[col].isna().all():
            continue
        if frame[col].isna().any():
            notes.append(f"column {col} is null on some rows: indicators needing it are skipped")
            continue
        present.append(col)
    usable = set(("open", "high", "low", "close", "volume", *present))
    chosen: list[str] = []
    for ind in INDICATORS:
        missing = [c for c in ind.requires if c not in usable]
        if missing:
            notes.append(f"indicator {ind.name} skipped: the data has no {', '.join(missing)}")
        else:
            chosen.append(ind.name)
    interval_ms = interval_ms_of(frame)
    kept: list[Horizon] = []
    for text in horizons:
        h = Horizon.parse(text)
        if h.ms < interval_ms or h.ms % interval_ms:
            notes.append(
                f"horizon {h.label} skipped: not a whole number of {interval_ms // 60_000}-minute candles"
            )
        elif h not in kept:
            kept.append(h)
    if not kept:
        raise InvalidRequest(
            f"no usable horizon among {list(horizons)} for candles of {interval_ms // 60_000} min"
        )
    cross = bool((frame["symbol"] == MARKET_SYMBOL).any())
    if not cross:
        notes.append(f"cross-asset features skipped: {MARKET_SYMBOL} is not in the data")
    return FeaturePlan(tuple(chosen), tuple(present), tuple(kept), interval_ms, cross, tuple(notes))


def attach_market(klines: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """Add the market symbol's close (matched on open_time) as ``market_close`` to every row."""
    if not plan.cross_asset:
        return klines
    market = klines.loc[klines["symbol"] == MARKET_SYMBOL, ["open_time", "close"]]
    market = market.rename(columns={"close": MARKET_COLUMN})
    return klines.merge(market, on="open_time", how="left", validate="many_to_one")


def symbol_features(frame: pd.DataFrame, plan: FeaturePlan) -> pd.DataFrame:
    """All features and targets of ONE symbol (the function both engines run).

    Args:
        frame: that symbol's klines (any row order), with ``market_close`` when
            ``plan.cross_asset``; ``open_time`` as a datetime (any unit, UTC or naive UTC).
        plan: from :func:`plan_features` on the whole input.

    Returns:
        Rows after the warm-up in time order: ``symbol``, ``open_time`` (datetime64[ms, UTC]),
        indicator outputs, ML features, targets (float64; NaN where the future is unknown).
    """
    frame = frame.sort_values("open_time", kind="stable")
    open_time = to_utc_ms(frame["open_time"])
    open_ms = open_time.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    bars = Bars.from_frame(frame, plan.optional_columns)
    indicators = tuple(BY_NAME[n] for n in plan.indicators)
    values = compute_indicators(bars, indicators)
    cols: dict[str, np.ndarray] = dict(values)
    cols.update(ml.normalised_indicators(values, bars))
    cols.update(ml.return_features(bars))
    cols.update(ml.range_features(bars))
    cols.update(ml.calendar_features(open_ms))
    warmup = plan.warmup
    if plan.cross_asset:
        market = frame[MARKET_COLUMN].to_numpy(dtype=np.float64, na_value=np.nan)
        cross, cross_warmup = ml.cross_asset_features(bars.close, market)
        cols.update(cross)
        warmup = max(warmup, cross_warmup)
    for h in plan.horizons:
        cols.update(compute_targets(open_ms, bars.close, h))
    n = len(frame)
    start = min(warmup, n)
    out = pd.DataFrame({name: arr[start:] for name, arr in cols.items()})
    out.insert(0, "open_time", open_time.iloc[start:].to_numpy())
    out.insert(0, "symbol", pd.Series(frame["symbol"].iloc[start:].to_numpy(), dtype="str"))
    return out


def run_local(
    klines: pd.DataFrame,
    plan: FeaturePlan,
    *,
    on_symbol: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The local engine: :func:`symbol_features` per symbol, concatenated, sorted by (symbol, open_time)."""
    joined = attach_market(klines, plan)
    parts: list[pd.DataFrame] = []
    for symbol, group in joined.groupby("symbol", sort=True):
        parts.append(symbol_features(group, plan))
        if on_symbol is not None:
            on_symbol(str(symbol))
    return pd.concat(parts, ignore_index=True) if parts else symbol_features(joined.iloc[:0], plan)


def build_features(klines: pd.DataFrame, *, horizons: Sequence[str] = ("1h", "1d")) -> pd.DataFrame:
    """Features and targets for every symbol in ``klines`` (local engine).

    Args:
        klines: the schema of ``klines_1h.parquet`` (many symbols, one interval).
        horizons: target horizons such as ``"1h"``, ``"1d"``; those shorter than (or not a
            multiple of) the candle interval are skipped with a note.

    Returns:
        One row per (symbol, open_time) after warm-up; the notes on what was skipped are in
        ``result.attrs["notes"]`` (and logged).

    Raises:
        InvalidRequest: wrong schema, duplicate rows, unknown horizon.
    """
    frame = normalise_klines(klines)
    plan = plan_features(frame, horizons)
    for note in plan.notes:
        log.info("features: %s", note)
    out = run_local(frame, plan)
    out.attrs["notes"] = list(plan.notes)
    return out


def feature_columns(df: pd.DataFrame | Iterable[str]) -> list[str]:
    """The scale-free model inputs among the columns of a feature frame.

    Excluded: the keys (symbol, open_time), the targets, and indicator outputs in price or
    volume units (their scale-free ``_rel`` / ``_z`` versions are included instead).
    """
    names = list(df.columns) if isinstance(df, pd.DataFrame) else list(df)
    out: list[str] = []
    for name in names:
        if name in KEY_COLUMNS or name.startswith(TARGET_PREFIX):
            continue
        spec = OUTPUTS.get(name)
        if spec is not None and spec.scale is not Scale.FREE:
            continue
        out.append(name)
    return out
