"""How many of n requests a fault firing with probability p may hit (exact binomial bounds)."""

from __future__ import annotations

import math


def interval(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """The central ``confidence`` interval [low, high] of a Binomial(n, p) count.

    ``interval(200, 0.5)`` is the range of 500s that 200 requests at a 50 % abort can show
    without the fault being wrong (at 99.9 %, a false alarm once in a thousand runs).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be within [0, 1], got {p}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2.0
    if p in (0.0, 1.0):
        return (0, 0) if p == 0.0 else (n, n)
    pmf = [math.exp(_log_pmf(n, k, p)) for k in range(n + 1)]
    low, below = 0, 0.0
    while low < n and below + pmf[low] <= tail:
        below += pmf[low]
        low += 1
    high, above = n, 0.0
    while high > 0 and above + pmf[high] <= tail:
        above += pmf[high]
        high -= 1
    return low, high


def _log_pmf(n: int, k: int, p: float) -> float:
    log_comb = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_comb + k * math.log(p) + (n - k) * math.log1p(-p)
