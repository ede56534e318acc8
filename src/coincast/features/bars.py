"""Columns of one symbol's klines as float64 numpy arrays, the input of every indicator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

F64 = npt.NDArray[np.float64]

#: Columns every klines frame must have (the schema of ``klines_1h.parquet``).
REQUIRED_COLUMNS: tuple[str, ...] = ("symbol", "open_time", "open", "high", "low", "close", "volume")
#: Columns some sources fill and others leave null; indicators needing them are skipped when absent.
OPTIONAL_COLUMNS: tuple[str, ...] = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """One symbol's candles in time order; optional columns are None when the source lacks them."""

    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    quote_volume: F64 | None = None
    trades: F64 | None = None
    taker_buy_base: F64 | None = None
    taker_buy_quote: F64 | None = None

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def column(self, name: str) -> F64:
        """The named column; raises KeyError when an optional column is absent."""
        value: F64 | None = getattr(self, name)
        if value is None:
            raise KeyError(f"column {name!r} is not available for this data")
        return value

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, optional: tuple[str, ...] = ()) -> Bars:
        """Arrays from a frame already sorted by time; ``optional`` names the optional columns to use."""

        def arr(name: str) -> F64:
            return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64, na_value=np.nan))

        extra = {name: arr(name) for name in optional}
        return cls(arr("open"), arr("high"), arr("low"), arr("close"), arr("volume"), **extra)
