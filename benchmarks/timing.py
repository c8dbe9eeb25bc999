"""Timing shared by the benchmarks: the best of several runs (the least disturbed by other load)."""

from __future__ import annotations

import time
from typing import Callable, List, Tuple, TypeVar

__all__ = ["timed", "best_of", "alternately"]

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> Tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(repeat: int, fn: Callable[[], T]) -> Tuple[float, T]:
    """The shortest wall time of `repeat` calls of `fn` (at least one), and the last call's result."""
    runs = [timed(fn) for _ in range(max(repeat, 1))]
    return min(seconds for seconds, _ in runs), runs[-1][1]


def alternately(
    runs: int, a: Callable[[], object], b: Callable[[], object]
) -> Tuple[List[float], List[float]]:
    """Sorted wall times of `a` and `b` run in turn, so that a change of load affects both."""
    times_a: List[float] = []
    times_b: List[float] = []
    for _ in range(runs):
        times_a.append(timed(a)[0])
        times_b.append(timed(b)[0])
    return sorted(times_a), sorted(times_b)
