"""Registry entry types and builders: an indicator's name, family, parameters, outputs, warm-up.

TA-Lib entries take their warm-up from TA-Lib's own lookback for the given parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import talib
from talib import abstract

from coincast.features.bars import F64, Bars


class Family(StrEnum):
    TREND = "trend"
    MOMENTUM = "momentum"
    VOLATILITY = "volatility"
    VOLUME = "volume"


class Scale(StrEnum):
    """How an output is made scale-free for the models (see :mod:`coincast.features.ml`)."""

    FREE = "free"  # already scale-free (oscillators, ratios, percentages): used as is
    PRICE = "price"  # a price level: becomes value / close - 1
    PRICE_DELTA = "price_delta"  # a price difference: becomes value / close
    VOLUME_DELTA = "volume_delta"  # in volume units: becomes value / rolling mean volume
    ZSCORE = "zscore"  # a running total or unbounded level: becomes a rolling z-score


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    scale: Scale


@dataclass(frozen=True, slots=True)
class Indicator:
    """One registry entry.

    Attributes:
        name: unique key (equal to the column name for single-output indicators).
        warmup: rows at the start of a series without a value (the first value is at index
            ``warmup``).
        requires: klines columns it reads.
        compute: returns one array per output, same length as the input, NaN during warm-up.
        source: ``"TA-Lib"`` or ``"coincast"`` (hand-written in :mod:`coincast.features.custom`).
    """

    name: str
    family: Family
    params: tuple[tuple[str, float], ...]
    outputs: tuple[Output, ...]
    warmup: int
    requires: tuple[str, ...]
    compute: Callable[[Bars], tuple[F64, ...]]
    source: str
    description: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def params_text(self) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in self.params) or "-"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def lookback(function: str, **params: Any) -> int:
    """TA-Lib's own warm-up for ``function`` with ``params``."""
    return int(abstract.Function(function, **params).lookback)  # type: ignore[attr-defined]


def _ta_call(function: str, inputs: tuple[str, ...], params: Mapping[str, Any], bars: Bars) -> tuple[F64, ...]:
    result = getattr(talib, function)(*(bars.column(c) for c in inputs), **params)
    return tuple(result) if isinstance(result, tuple) else (result,)


def talib_indicator(
    name: str,
    family: Family,
    function: str,
    outputs: tuple[tuple[str, Scale], ...],
    description: str,
    inputs: tuple[str, ...] = ("close",),
    **params: Any,
) -> Indicator:
    return Indicator(
        name=name,
        family=family,
        params=tuple((k, float(v)) for k, v in params.items()),
        outputs=tuple(Output(n, s) for n, s in outputs),
        warmup=lookback(function, **params),
        requires=inputs,
        compute=partial(_ta_call, function, inputs, dict(params)),
        source="TA-Lib",
        description=description,
    )


def coincast_indicator(
    name: str,
    family: Family,
    compute: Callable[[Bars], tuple[F64, ...]],
    outputs: tuple[tuple[str, Scale], ...],
    warmup: int,
    requires: tuple[str, ...],
    description: str,
    **params: float,
) -> Indicator:
    return Indicator(
        name=name,
        family=family,
        params=tuple((k, float(v)) for k, v in params.items()),
        outputs=tuple(Output(n, s) for n, s in outputs),
        warmup=warmup,
        requires=requires,
        compute=compute,
        source="coincast",
        description=description,
    )
