"""The forecasting seam: :class:`Forecast` values and the :class:`Forecaster` protocol.

Every model works on a *horizon frame* of one symbol (see :mod:`coincast.train.frames`): one row
per forecast origin, spaced exactly one horizon apart, with columns ``symbol``, ``open_ms``
(open time of the last bar whose close is known, integer ms UTC), ``close`` (that close),
``high``, ``low``, ``volume``, the feature columns, and, in training frames only, ``target``:
the forward log return ``log(close[t + horizon] / close[t])`` (NaN where not yet known).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DEFAULT_LEVEL = 0.9
# Coverages of the extra bands every forecast carries for the calibration table.
BAND_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)


def band_columns(level: float) -> tuple[str, str]:
    """``0.8 -> ('lower_80', 'upper_80')``: the predictions-file columns of a band."""
    pct = f"{level * 100:g}".replace(".", "_")
    return f"lower_{pct}", f"upper_{pct}"


@dataclass(frozen=True, slots=True, eq=False)
class Forecast:
    """Forecasts of one symbol at one horizon, as parallel numpy arrays (one entry per origin).

    Prices are in quote currency (USDT). ``volatility`` is the predicted standard deviation of the
    forward log return. ``lower``/``upper`` bound the price at ``target_ms`` with nominal coverage
    ``level``. ``origin_ms`` is the open time of the last bar whose close (``origin_price``) the
    forecast knows; ``target_ms = origin_ms + horizon``. ``bands`` holds ``(level, lower, upper)``
    for each of :data:`BAND_LEVELS`, from the same residual pool as the main interval.
    """

    symbol: str
    model: str
    horizon: str
    level: float
    origin_ms: I64
    target_ms: I64
    origin_price: F64
    predicted_price: F64
    lower: F64
    upper: F64
    prob_up: F64
    volatility: F64
    bands: tuple[tuple[float, F64, F64], ...] = ()

    def __len__(self) -> int:
        return int(self.origin_ms.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per forecast with UTC timestamps (the predictions-file layout)."""
        frame = pd.DataFrame(
            {
                "symbol": self.symbol,
                "model": self.model,
                "horizon": self.horizon,
                "origin_time": pd.to_datetime(self.origin_ms, unit="ms", utc=True),
                "target_time": pd.to_datetime(self.target_ms, unit="ms", utc=True),
                "origin_price": self.origin_price,
                "predicted_price": self.predicted_price,
                "lower": self.lower,
                "upper": self.upper,
                "prob_up": self.prob_up,
                "predicted_volatility": self.volatility,
                "level": self.level,
            }
        )
        for level, lower, upper in self.bands:
            lo, hi = band_columns(level)
            frame[lo], frame[hi] = lower, upper
        return frame


class Forecaster(Protocol):
    """A model that learns from a training frame and forecasts one horizon ahead with an interval.

    Implementations never look ahead: the forecast for origin ``t`` depends only on rows of
    ``history`` with ``open_ms <= t`` (and on what ``fit`` saw).
    """

    name: str

    def fit(self, train: pd.DataFrame) -> Self:
        """Fit on a horizon frame whose ``target`` is known only where the target time was visible."""
        ...

    def predict(self, history: pd.DataFrame, *, start_ms: int | None = None) -> Forecast:
        """Forecast every origin of ``history`` with ``open_ms >= start_ms`` (default: the last row).

        ``history`` holds the rows before the first origin too (context for windows, volatility
        and interval calibration); a ``target`` column, if present, is ignored.
        """
        ...

    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` (created if needed)."""
        ...

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model written by :meth:`save`."""
        ...
