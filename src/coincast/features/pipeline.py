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
    "DataProfile",
    "FeaturePlan",
    "attach_market",
    "build_features",
    "empty_features",
    "feature_columns",
    "plan_features",
    "plan_from_profile",
    "profile_frame",
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


@dataclass(frozen=True, slots=True)
class DataProfile:
    """What a klines input offers, gathered by either engine before planning.

    Attributes:
        null_counts: for each optional column in the data, how many rows are null.
        rows: number of rows.
        interval_ms: the candle interval.
        has_market: whether the market symbol has rows.
    """

    null_counts: dict[str, int]
    rows: int
    interval_ms: int
    has_market: bool


def profile_frame(frame: pd.DataFrame) -> DataProfile:
    """Profile a normalised klines frame (see :func:`coincast.features.klines.normalise_klines`)."""
    nulls = {c: int(frame[c].isna().sum()) for c in OPTIONAL_COLUMNS if c in frame.columns}
    market = bool((frame["symbol"] == MARKET_SYMBOL).any())
    return DataProfile(nulls, len(frame), interval_ms_of(frame), market)


def plan_features(klines: pd.DataFrame, horizons: Sequence[str] = ("1h", "1d")) -> FeaturePlan:
    """Decide indicators, horizons and cross-asset features for ``klines`` (normalised or not).

    Raises:
        InvalidRequest: bad schema, unknown horizon, no usable horizon.
    """
    return plan_from_profile(profile_frame(normalise_klines(klines)), horizons)


def plan_from_profile(profile: DataProfile, horizons: Sequence[str]) -> FeaturePlan:
    """The plan for data with this profile (shared by both engines).

    Raises:
        InvalidRequest: unknown horizon, or none fits the candle interval.
    """
    notes: list[str] = []
    present: list[str] = []
    for col in OPTIONAL_COLUMNS:
        nulls = profile.null_counts.get(col, profile.rows)
        if nulls == profile.rows:
            continue
        if nulls:
            notes.append(f"column {col} is null on {nulls} of {profile.rows} rows: indicators needing it are skipped")
            continue
        present.append(col)
    usable = {"open", "high", "low", "close", "volume", *present}
    chosen: list[str] = []
    for ind in INDICATORS:
        missing = [c for c in ind.requires if c not in usable]
        if missing:
            notes.append(f"indicator {ind.name} skipped: the data has no {', '.join(missing)}")
        else:
            chosen.append(ind.name)
    interval_ms = profile.interval_ms
    minutes = interval_ms // 60_000
    kept: list[Horizon] = []
    for text in horizons:
        h = Horizon.parse(text)
        if h.ms < interval_ms or h.ms % interval_ms:
            notes.append(f"horizon {h.label} skipped: not a whole number of {minutes}-minute candles")
        elif h not in kept:
            kept.append(h)
    if not kept:
        raise InvalidRequest(f"no usable horizon among {list(horizons)} for candles of {minutes} min")
    if not profile.has_market:
        notes.append(f"cross-asset features skipped: {MARKET_SYMBOL} is not in the data")
    return FeaturePlan(tuple(chosen), tuple(present), tuple(kept), interval_ms, profile.has_market, tuple(notes))


def empty_features(plan: FeaturePlan) -> pd.DataFrame:
    """A frame with no rows and exactly the columns and dtypes :func:`symbol_features` returns."""
    one = pd.DataFrame(
        {
            "symbol": pd.Series([MARKET_SYMBOL], dtype="str"),
            "open_time": pd.Series([0], dtype="datetime64[ms, UTC]"),
            **{c: [1.0] for c in ("open", "high", "low", "close", "volume", MARKET_COLUMN)},
            **{c: [1.0] for c in plan.optional_columns},
        }
    )
    return symbol_features(one, plan).iloc[:0]


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
    out.insert(0, "open_time", open_time.iloc[start:].reset_index(drop=True))
    out.insert(0, "symbol", pd.Series(frame["symbol"].iloc[start:].to_numpy(), dtype="str"))
    return out


def run_local(
    klines: pd.DataFrame,
    plan: FeaturePlan,
    *,
    symbols: Sequence[str] | None = None,
    on_symbol: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The local engine: :func:`symbol_features` per symbol, concatenated, sorted by (symbol, open_time).

    Args:
        klines: normalised klines (see :func:`coincast.features.klines.normalise_klines`).
        plan: from :func:`plan_features` on the same data.
        symbols: output only these (the market symbol may be in ``klines`` just for the join).
        on_symbol: called with each symbol when it is done (progress bars).
    """
    joined = attach_market(klines, plan)
    if symbols:
        joined = joined[joined["symbol"].isin(list(symbols))]
    parts: list[pd.DataFrame] = []
    for symbol, group in joined.groupby("symbol", sort=True):
        parts.append(symbol_features(group, plan))
        if on_symbol is not None:
            on_symbol(str(symbol))
    return pd.concat(parts, ignore_index=True) if parts else empty_features(plan)


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
