"""Proportions with Wilson intervals, shared by the cascade, calibration and annotator reports."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Proportion:
    """k successes out of n with a Wilson score interval.

    Wilson rather than the normal approximation: the shares we report (precision of a
    stage that decided 12 texts, accuracy near 1.0) are exactly where the normal
    interval leaves [0, 1] or collapses to a point.
    """

    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else math.nan

    def format(self, digits: int = 3) -> str:
        if self.n == 0:
            return "n/a (0 texts)"
        return (
            f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"
        )

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "k": self.k,
            "n": self.n,
            "value": None if self.n == 0 else self.value,
            "low": None if self.n == 0 else self.low,
            "high": None if self.n == 0 else self.high,
        }


def wilson(k: int, n: int, z: float = Z95) -> Proportion:
    """Wilson score interval for k/n (scipy's `binomtest(...).proportion_ci`); (0, 1) when
    n == 0 (nothing is known)."""
    if n == 0:
        return Proportion(0, 0, 0.0, 1.0)
    from scipy.stats import binomtest, norm

    interval = binomtest(k, n).proportion_ci(
        confidence_level=float(1 - 2 * norm.sf(z)), method="wilson"
    )
    return Proportion(k, n, max(0.0, float(interval.low)), min(1.0, float(interval.high)))
