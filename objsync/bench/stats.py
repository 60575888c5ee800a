"""Summary statistics of repeated runs (pure)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Spread:
    """Median of the repeats, with the smallest and largest value."""

    median: float
    low: float
    high: float
    n: int


def spread(values: Iterable[float | None]) -> Spread | None:
    """Median and min-max of the values that are known; None when none is."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    return Spread(statistics.median(known), known[0], known[-1], len(known))


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs (below 1: ours is smaller), or None when either is unknown or theirs is zero."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def rate(amount: float, seconds: float | None) -> float | None:
    """amount per second, or None when nothing was moved or no time is known."""
    if not amount or not seconds:
        return None
    return amount / seconds
