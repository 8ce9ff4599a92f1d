"""One measured value and its interval: percentile bootstrap or re-centred half-samples.

See `synthmix.quality.measure` for when each is used and why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PERCENTILE = "percentile bootstrap"
HALF_SAMPLE = "half-sample, re-centred"


@dataclass(frozen=True)
class Measured:
    value: float | None
    low: float | None
    high: float | None
    n: int
    n_boot: int
    ci: str
    sizes: dict[str, int] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        sizes = out.pop("sizes")
        if out["reason"] is None:
            del out["reason"]
        return {**out, **sizes}


def undefined(reason: str, n: int = 0, **sizes: int) -> Measured:
    return Measured(None, None, None, n, 0, "none", dict(sizes), reason)


Statistic = Callable[..., float]


@dataclass(frozen=True)
class Bootstrap:
    """Draws index samples and turns a statistic's draws into an interval."""

    n_boot: int
    confidence: float
    seed: int

    def measure(
        self,
        statistic: Statistic,
        sizes: Sequence[int],
        how: str = PERCENTILE,
        bounds: tuple[float, float] = (-np.inf, np.inf),
        **extra: int,
    ) -> Measured:
        """`statistic(*index_arrays)` gets one index array per sample (sizes[i] long for
        the point estimate). `bounds`: the metric's range, which a re-centred interval could
        otherwise leave (MAUVE above 1)."""
        point = float(statistic(*(np.arange(n) for n in sizes)))
        draws = self._draws(statistic, sizes, how)
        low, high = self._interval(point, draws, how)
        if low is not None and high is not None:
            low, high = float(np.clip(low, *bounds)), float(np.clip(high, *bounds))
        n = int(sizes[0])
        return Measured(_clean(point), low, high, n, self.n_boot, how, dict(extra))

    def _draws(self, statistic: Statistic, sizes: Sequence[int], how: str) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        draws = np.full(self.n_boot, np.nan)
        for b in range(self.n_boot):
            if how == HALF_SAMPLE:
                index = [np.sort(rng.choice(n, size=max(1, n // 2), replace=False)) for n in sizes]
            else:
                index = [rng.integers(0, n, size=n) for n in sizes]
            draws[b] = statistic(*index)
        return draws

    def _interval(self, point: float, draws: np.ndarray, how: str) -> tuple[float | None, ...]:
        finite = draws[np.isfinite(draws)]
        if len(finite) < 2 or not np.isfinite(point):
            return None, None
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.percentile(finite, [tail, 100 - tail])
        if how == HALF_SAMPLE:
            shift = point - float(np.median(finite))
            low, high = low + shift, high + shift
        return float(low), float(high)


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
