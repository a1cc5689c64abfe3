"""How sure a comparison is: a bootstrap interval over panoramas, and a verdict that says when the data cannot decide.

    c = evidence.compare(a, b)                 # a, b: per-panorama items of two methods (item k: seed k in both)
    c.estimate, c.low, c.high, c.n             # statistic(a) - statistic(b) and its 95% interval, n panoramas
    evidence.verdict(c, expect="lower")        # "holds" | "reversed" | "inconclusive"

The panorama is the independent unit (its seed), not the tile: items are resampled whole, so a statistic of a
panorama's tile features (e.g. the FID of the concatenated tiles) is resampled with its panorama. Paired, item k of
`a` and of `b` share a seed and are resampled together; unpaired, each side is resampled on its own. The interval is
the bias-corrected and accelerated bootstrap (BCa; Efron 1987, Efron & Tibshirani 1993 ch. 14), whose coverage at
small n is closer to nominal than the percentile interval's; where the acceleration is undefined (a constant
jackknife) it is the percentile interval. tests/eval/test_evidence.py checks the coverage (A/A tests) and the power.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

from ..engine.checks import finite_number, positive_int

VERDICTS = ("holds", "reversed", "inconclusive")
EXPECT = ("lower", "higher")
DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOT = 2000
MIN_ITEMS = 2   # a bootstrap of one item has no spread


@dataclass(frozen=True)
class Comparison:
    """statistic(a) - statistic(b) with its bootstrap interval [low, high] at `confidence`, from n items a side."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    paired: bool
    method: str          # "BCa" or "percentile"

    def text(self, digits: int = 3) -> str:
        """'-1.23 [-2.01, -0.45], 95% CI, n = 21 paired' (the book's claim lines)."""
        f = f"{{:.{digits}g}}"
        kind = "paired" if self.paired else "unpaired"
        return (f"{f.format(self.estimate)} [{f.format(self.low)}, {f.format(self.high)}], "
                f"{self.confidence:.0%} CI, n = {self.n} {kind}")


def _mean(items: Sequence) -> float:
    return float(np.mean(np.asarray(items, dtype=float)))


def _items(x, name: str) -> list:
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__"):
        raise ValueError(f"{name} must be a sequence of per-panorama items, got {type(x).__name__}")
    items = list(x)
    if len(items) < MIN_ITEMS:
        raise ValueError(f"{name} must hold at least {MIN_ITEMS} items (panoramas), got {len(items)}")
    return items


def _difference(statistic: Callable, a: list, b: list, ia, ib) -> float:
    return float(statistic([a[i] for i in ia])) - float(statistic([b[i] for i in ib]))


def compare(a, b, statistic: Callable | None = None, paired: bool = True, confidence: float = DEFAULT_CONFIDENCE,
            n_boot: int = DEFAULT_BOOT, seed: int = 0) -> Comparison:
    """statistic(a) - statistic(b) and its BCa bootstrap interval over items (panoramas), paired or not."""
    a, b = _items(a, "a"), _items(b, "b")
    if not isinstance(paired, bool):
        raise ValueError(f"paired must be True or False, got {paired!r}")
    if paired and len(a) != len(b):
        raise ValueError(f"paired=True needs as many items in a as in b (one per seed), got {len(a)} and {len(b)}")
    confidence = finite_number(confidence, "confidence")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_boot = positive_int(n_boot, "n_boot")
    statistic = _mean if statistic is None else statistic
    if not callable(statistic):
        raise ValueError(f"statistic must be None (the mean) or a callable, got {type(statistic).__name__}")
    na, nb = len(a), len(b)
    rng = np.random.default_rng(seed)
    estimate = _difference(statistic, a, b, range(na), range(nb))
    if paired:
        draws = rng.integers(0, na, (n_boot, na))
        boot = np.array([_difference(statistic, a, b, d, d) for d in draws])
        jack = np.array([_difference(statistic, a, b, keep, keep) for keep in _leave_one_out(na)])
        jacks = [jack]
    else:
        da, db = rng.integers(0, na, (n_boot, na)), rng.integers(0, nb, (n_boot, nb))
        boot = np.array([_difference(statistic, a, b, x, y) for x, y in zip(da, db)])
        all_b, all_a = range(nb), range(na)
        jacks = [np.array([_difference(statistic, a, b, keep, all_b) for keep in _leave_one_out(na)]),
                 np.array([_difference(statistic, a, b, all_a, keep) for keep in _leave_one_out(nb)])]
    low, high, method = _bca(boot, estimate, jacks, confidence)
    return Comparison(estimate, low, high, na, confidence, paired, method)


def _leave_one_out(n: int) -> list[list[int]]:
    return [[j for j in range(n) if j != i] for i in range(n)]


def _bca(boot: np.ndarray, estimate: float, jacks: list[np.ndarray], confidence: float) -> tuple[float, float, str]:
    """The BCa interval of a bootstrap distribution (Efron & Tibshirani 1993, Eq. 14.9-14.15); percentile where the
    bias correction or the acceleration is undefined."""
    normal = NormalDist()
    alpha = (1 - confidence) / 2
    finite = boot[np.isfinite(boot)]
    below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / max(len(finite), 1)
    num = sum(float(np.sum((j.mean() - j) ** 3)) for j in jacks)
    den = 6.0 * sum(float(np.sum((j.mean() - j) ** 2)) for j in jacks) ** 1.5
    if not 0 < below < 1 or den == 0 or not math.isfinite(num / den):
        lo, hi = np.quantile(finite, [alpha, 1 - alpha])
        return float(lo), float(hi), "percentile"
    z0, acc = normal.inv_cdf(below), num / den
    levels = []
    for q in (alpha, 1 - alpha):
        z = normal.inv_cdf(q)
        levels.append(normal.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z))))
    lo, hi = np.quantile(finite, levels)
    return float(lo), float(hi), "BCa"


def verdict(comparison: Comparison, expect: str = "lower") -> str:
    """'holds' when the whole interval lies on the expected side of zero (expect='lower': statistic(a) <
    statistic(b)), 'reversed' when it lies on the other side, 'inconclusive' otherwise (zero inside)."""
    if expect not in EXPECT:
        raise ValueError(f"expect must be one of {EXPECT}, got {expect!r}")
    if not isinstance(comparison, Comparison):
        raise ValueError(f"comparison must be an evidence.Comparison, got {type(comparison).__name__}")
    below, above = comparison.high < 0, comparison.low > 0
    if not (below or above):
        return "inconclusive"
    return "holds" if below == (expect == "lower") else "reversed"


def power(effect: float, sd: float, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The chance that an interval of a mean difference excludes zero on the effect's side, at n items whose
    differences have standard deviation sd (normal approximation: Phi(|effect| sqrt(n) / sd - z))."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return NormalDist().cdf(abs(effect) * math.sqrt(n) / sd - z) if sd > 0 else float(effect != 0)


def needed_n(effect: float, sd: float, target: float = 0.8, confidence: float = DEFAULT_CONFIDENCE) -> int | None:
    """The smallest n at which power(effect, sd, n) reaches target; None for a zero effect (no n decides it)."""
    if effect == 0:
        return None
    if sd == 0:
        return MIN_ITEMS
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2) + NormalDist().inv_cdf(target)
    return max(MIN_ITEMS, math.ceil((z * sd / abs(effect)) ** 2))
