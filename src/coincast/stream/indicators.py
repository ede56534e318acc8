"""Incremental indicators for the live stream, equal to the batch (TA-Lib) values.

Each indicator folds one candle at a time: ``update(candle) -> float | None`` (None during the
warm-up) and ``ready``. A closed candle advances the state; a candle still open (``closed`` is
False) gives the provisional value without changing the state, so the live chart can show the
forming bar. A closed candle that is not newer than the last one (a replay or a duplicate) is
ignored and the current value returned, so replays do not double-count.

The seeds follow TA-Lib exactly (EMAs start from the SMA of their first n inputs, Wilder
averages from the mean of the first n, MACD's fast EMA is aligned on the slow one), which is
what makes the stream and the batch layer agree to the last digits. Work per candle is O(1)
(Bollinger: O(20) for an exact two-pass variance of its window, independent of history).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from coincast.domain import Candle, Interval

__all__ = ["ATR", "EMA", "MACD", "RSI", "SMA", "Bollinger", "LiveIndicators"]


class _Incremental(ABC):
    """Candle bookkeeping shared by the indicators; subclasses implement ``_step`` and the state."""

    columns: tuple[str, ...] = ()
    _state_fields: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._last_open_ms: int | None = None
        self._values: dict[str, float | None] = dict.fromkeys(self.columns)

    @property
    def ready(self) -> bool:
        """True once every output has a value."""
        return all(v is not None for v in self._values.values())

    @property
    def values(self) -> dict[str, float | None]:
        """The outputs after the last closed candle, keyed by registry column name."""
        return dict(self._values)

    def update(self, candle: Candle) -> float | None:
        """Fold one candle; returns the first output (see the module doc for open candles)."""
        return self.update_all(candle)[self.columns[0]]

    def update_all(self, candle: Candle) -> dict[str, float | None]:
        """Like :meth:`update`, returning every output."""
        if not candle.closed:
            saved = self._save()
            try:
                return self._step(candle)
            finally:
                self._restore(saved)
        if self._last_open_ms is not None and candle.open_ms <= self._last_open_ms:
            return dict(self._values)
        self._values = self._step(candle)
        self._last_open_ms = candle.open_ms
        return dict(self._values)

    @abstractmethod
    def _step(self, candle: Candle) -> dict[str, float | None]:
        """Implemented by each subclass."""

    def _save(self) -> tuple[Any, ...]:
        return tuple(_copy(getattr(self, f)) for f in self._state_fields)

    def _restore(self, saved: tuple[Any, ...]) -> None:
        for f, v in zip(self._state_fields, saved, strict=True):
            setattr(self, f, v)


def _copy(v: Any) -> Any:
    if isinstance(v, deque):
        return deque(v, maxlen=v.maxlen)
    if isinstance(v, _Ema):
        return _Ema(v.n, v.skip, v.count, v.total, v.value)
    return v


class _Ema:
    """TA-Lib EMA core on floats: ignores the first ``skip`` inputs, then seeds with an SMA of n."""

    __slots__ = ("count", "k", "n", "skip", "total", "value")

    def __init__(self, n: int, skip: int = 0, count: int = 0, total: float = 0.0, value: float | None = None):
        self.n, self.skip, self.count, self.total, self.value = n, skip, count, total, value
        self.k = 2.0 / (n + 1)

    def push(self, x: float) -> float | None:
        self.count += 1
        if self.count <= self.skip:
            return None
        if self.value is None:
            self.total += x
            if self.count - self.skip == self.n:
                self.value = self.total / self.n
            return self.value
        self.value = self.value + self.k * (x - self.value)
        return self.value


class EMA(_Incremental):
    """Exponential moving average of the close (TA-Lib ``EMA``)."""

    _state_fields = ("_ema",)

    def __init__(self, n: int) -> None:
        self.columns = (f"ema_{n}",)
        super().__init__()
        self._ema = _Ema(n)

    def _step(self, candle: Candle) -> dict[str, float | None]:
        return {self.columns[0]: self._ema.push(candle.close)}


class SMA(_Incremental):
    """Simple moving average of the close (TA-Lib ``SMA``).

    A running sum, re-added exactly from the window each time the window has turned over so
    rounding never accumulates over a long-running stream (amortised O(1)).
    """

    _state_fields = ("_window", "_sum", "_since_resum")

    def __init__(self, n: int) -> None:
        self.columns = (f"sma_{n}",)
        super().__init__()
        self._n = n
        self._window: deque[float] = deque(maxlen=n)
        self._sum = 0.0
        self._since_resum = 0

    def _step(self, candle: Candle) -> dict[str, float | None]:
        x = candle.close
        if len(self._window) == self._n:
            self._sum -= self._window[0]
        self._window.append(x)
        self._sum += x
        self._since_resum += 1
        if self._since_resum >= self._n:
            self._sum, self._since_resum = math.fsum(self._window), 0
        value = self._sum / self._n if len(self._window) == self._n else None
        return {self.columns[0]: value}


class Bollinger(_Incremental):
    """Bollinger bands (TA-Lib ``BBANDS``: SMA middle, population standard deviation)."""

    _state_fields = ("_window",)

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.columns = (f"bb_middle_{n}", f"bb_upper_{n}", f"bb_lower_{n}")
        super().__init__()
        self._n, self._k = n, k
        self._window: deque[float] = deque(maxlen=n)

    def _step(self, candle: Candle) -> dict[str, float | None]:
        self._window.append(candle.close)
        if len(self._window) < self._n:
            return dict.fromkeys(self.columns)
        mean = math.fsum(self._window) / self._n
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in self._window) / self._n)
        mid, up, lo = self.columns
        return {mid: mean, up: mean + self._k * sd, lo: mean - self._k * sd}


class RSI(_Incremental):
    """Relative strength index with Wilder smoothing (TA-Lib ``RSI``)."""

    _state_fields = ("_prev", "_count", "_gain", "_loss")

    def __init__(self, n: int = 14) -> None:
        self.columns = (f"rsi_{n}",)
        super().__init__()
        self._n = n
        self._prev: float | None = None
        self._count = 0
        self._gain = self._loss = 0.0

    def _step(self, candle: Candle) -> dict[str, float | None]:
        x, prev, n = candle.close, self._prev, self._n
        self._prev = x
        if prev is None:
            return {self.columns[0]: None}
        d = x - prev
        gain, loss = (d, 0.0) if d > 0 else (0.0, -d)
        self._count += 1
        if self._count < n:
            self._gain += gain
            self._loss += loss
            return {self.columns[0]: None}
        if self._count == n:
            self._gain = (self._gain + gain) / n
            self._loss = (self._loss + loss) / n
        else:
            self._gain = (self._gain * (n - 1) + gain) / n
            self._loss = (self._loss * (n - 1) + loss) / n
        total = self._gain + self._loss
        return {self.columns[0]: 100.0 * self._gain / total if total != 0 else 0.0}


class MACD(_Incremental):
    """MACD line, signal and histogram (TA-Lib ``MACD``: the fast EMA is seeded on the slow
    EMA's window, so both start at the same candle; values from candle slow + signal - 1)."""

    _state_fields = ("_fast", "_slow", "_signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.columns = ("macd", "macd_signal", "macd_hist")
        super().__init__()
        self._fast = _Ema(fast, skip=slow - fast)
        self._slow = _Ema(slow)
        self._signal = _Ema(signal)

    def _step(self, candle: Candle) -> dict[str, float | None]:
        f, s = self._fast.push(candle.close), self._slow.push(candle.close)
        if f is None or s is None:
            return dict.fromkeys(self.columns)
        line = f - s
        sig = self._signal.push(line)
        if sig is None:
            return dict.fromkeys(self.columns)
        return {"macd": line, "macd_signal": sig, "macd_hist": line - sig}


class ATR(_Incremental):
    """Average true range with Wilder smoothing (TA-Lib ``ATR``)."""

    _state_fields = ("_prev_close", "_count", "_atr")

    def __init__(self, n: int = 14) -> None:
        self.columns = (f"atr_{n}",)
        super().__init__()
        self._n = n
        self._prev_close: float | None = None
        self._count = 0
        self._atr = 0.0

    def _step(self, candle: Candle) -> dict[str, float | None]:
        prev, n = self._prev_close, self._n
        self._prev_close = candle.close
        if prev is None:
            return {self.columns[0]: None}
        tr = max(candle.high - candle.low, abs(candle.high - prev), abs(candle.low - prev))
        self._count += 1
        if self._count < n:
            self._atr += tr
            return {self.columns[0]: None}
        self._atr = (self._atr + tr) / n if self._count == n else (self._atr * (n - 1) + tr) / n
        return {self.columns[0]: self._atr}


class LiveIndicators:
    """The live set for one (symbol, interval): EMA 20/50, SMA 20, Bollinger 20/2, RSI 14,
    MACD 12/26/9, ATR 14, keyed by the batch registry's column names.

    Raises:
        ValueError: from :meth:`update` when a candle of another symbol or interval arrives.
    """

    def __init__(self, symbol: str, interval: Interval) -> None:
        self.symbol, self.interval = symbol, interval
        self._parts: tuple[_Incremental, ...] = (
            EMA(20),
            EMA(50),
            SMA(20),
            Bollinger(20, 2.0),
            RSI(14),
            MACD(),
            ATR(14),
        )

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for p in self._parts for c in p.columns)

    @property
    def ready(self) -> bool:
        return all(p.ready for p in self._parts)

    @property
    def values(self) -> dict[str, float | None]:
        """Values after the last closed candle."""
        return {c: v for p in self._parts for c, v in p.values.items()}

    def update(self, candle: Candle) -> dict[str, float | None]:
        """Fold one candle into every indicator (provisionally if it is still open)."""
        if candle.symbol != self.symbol or candle.interval != self.interval:
            raise ValueError(
                f"candle {candle.symbol} {candle.interval} given to the indicators of {self.symbol} {self.interval}"
            )
        out: dict[str, float | None] = {}
        for part in self._parts:
            out.update(part.update_all(candle))
        return out
