"""Per-symbol id bookkeeping: find gaps in Binance's contiguous trade ids, drop duplicates.

Binance numbers aggregate trades (``a``) and trades (``t``) contiguously per symbol, so a jump
in ids *is* a gap, found exactly, and the missing ids are exactly what REST must return. A
rotation overlap or a REST page that meets the live stream delivers some ids twice: those are
dropped here (the candle aggregator would drop them too, but there is no point sending them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(slots=True)
class IdTracker:
    """Which ids of one symbol have been delivered.

    ``high`` is the highest id delivered (None before the first); ``missing`` holds the
    inclusive ranges below ``high`` that were skipped and not yet filled, sorted and disjoint.
    """

    high: int | None = None
    missing: list[tuple[int, int]] = field(default_factory=list)

    def accept(self, ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], list[tuple[int, int]]]:
        """Mark ``ids`` delivered; return which are new and the gaps they opened.

        The common case (the next contiguous run) is checked with numpy in O(1) Python steps.
        """
        n = int(ids.shape[0])
        if n == 0:
            return np.zeros(0, np.bool_), []
        contiguous = n == 1 or bool(np.all(np.diff(ids) == 1))
        if self.high is not None and int(ids[0]) == self.high + 1 and not self.missing and contiguous:
            self.high = int(ids[-1])
            return np.ones(n, np.bool_), []
        mask = np.zeros(n, np.bool_)
        gaps: list[tuple[int, int]] = []
        for k in range(n):
            i = int(ids[k])
            if self.high is None or i == self.high + 1:
                self.high = i
                mask[k] = True
            elif i > self.high + 1:
                gap = (self.high + 1, i - 1)
                self.missing.append(gap)
                gaps.append(gap)
                self.high = i
                mask[k] = True
            else:
                mask[k] = self._fill(i)
        return mask, gaps

    def _fill(self, i: int) -> bool:
        pos = bisect.bisect_right(self.missing, (i, 1 << 62)) - 1
        if pos < 0:
            return False
        lo, hi = self.missing[pos]
        if not lo <= i <= hi:
            return False
        pieces = [r for r in ((lo, i - 1), (i + 1, hi)) if r[0] <= r[1]]
        self.missing[pos : pos + 1] = pieces
        return True

    def is_missing(self, lo: int, hi: int) -> bool:
        """True while any id of ``lo..hi`` is still missing."""
        return any(a <= hi and lo <= b for a, b in self.missing)

    def forget(self, lo: int, hi: int) -> int:
        """Give up on ``lo..hi`` (REST could not supply it); return how many ids were dropped."""
        kept: list[tuple[int, int]] = []
        dropped = 0
        for a, b in self.missing:
            if b < lo or a > hi:
                kept.append((a, b))
                continue
            dropped += min(b, hi) - max(a, lo) + 1
            kept.extend(r for r in ((a, lo - 1), (hi + 1, b)) if r[0] <= r[1])
        self.missing = kept
        return dropped
