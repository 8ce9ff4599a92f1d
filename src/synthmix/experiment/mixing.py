"""Mixing plans: how much real and how much synthetic data each experiment cell trains on.

Every plan is a pair (real fraction, synthetic ratio) applied per class, where both are
fractions of that class's size in the full real training set:

| plan                        | real per class        | synthetic per class      |
|-----------------------------|-----------------------|--------------------------|
| real_only (learning curve)  | f * n_c (at least 1)  | 0                        |
| synthetic_only              | 0                     | n_c                      |
| half_and_half               | n_c / 2 (at least 1)  | n_c - real (same total)  |
| real_plus_equal             | n_c                   | n_c                      |
| small_real_plus_synthetic   | f * n_c (at least 1)  | r * n_c                  |
| small_real_plus_count       | f * n_c (at least 1)  | N (fixed per class)      |

Rounding is half-up. Where a source has fewer texts of a class than a cell asks for, all of
them are used and the shortfall is recorded with the cell's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from synthmix.data.labeled import (
    LABEL,
    LabeledData,
    round_half_up,
    sample_per_class,
)

REAL_ONLY = "real_only"
SYNTHETIC_ONLY = "synthetic_only"
HALF_AND_HALF = "half_and_half"
REAL_PLUS_EQUAL = "real_plus_equal"
SMALL_REAL_PLUS_SYNTHETIC = "small_real_plus_synthetic"
SMALL_REAL_PLUS_COUNT = "small_real_plus_count"
SMALL_REAL_PLANS = (SMALL_REAL_PLUS_SYNTHETIC, SMALL_REAL_PLUS_COUNT)
PLAN_TITLES = {
    REAL_ONLY: "real only",
    SYNTHETIC_ONLY: "synthetic only",
    HALF_AND_HALF: "half real + half synthetic",
    REAL_PLUS_EQUAL: "all real + equal synthetic",
    SMALL_REAL_PLUS_SYNTHETIC: "small real + synthetic",
    SMALL_REAL_PLUS_COUNT: "small real + N synthetic per class",
}
SOURCE_PLANS = (SYNTHETIC_ONLY, HALF_AND_HALF, REAL_PLUS_EQUAL, *SMALL_REAL_PLANS)
ORIGIN = "origin"
# Which real text a training row stems from: a real row is its own group, a per-cell
# augmentation (EDA) shares its parent's, a row of a source file is a group of its own. Tuning
# cross-validates by group, so no validation fold scores texts rewritten from its training rows.
GROUP = "group"
# Offsets the synthetic sampling seed so it is independent of the real sampling seed.
_SYNTHETIC_SEED_OFFSET = 10_007


@dataclass
class PlanConfig:
    """Which plans an experiment runs. Empty lists or False switch a plan off."""

    learning_curve: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.5, 1.0])
    synthetic_only: bool = True
    half_and_half: bool = True
    real_plus_equal: bool = True
    small_real_fraction: float = 0.1
    synthetic_ratios: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    # Fixed numbers of synthetic texts per class added to the small real fraction: the plan
    # for budgets ("+50 generated examples per class") and for small LLM sources.
    synthetic_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        fractions = [("learning_curve", f) for f in self.learning_curve]
        for key, value in [*fractions, ("small_real_fraction", self.small_real_fraction)]:
            if not 0 < value <= 1:
                raise ValueError(f"{key}: {value} is not a fraction of the real data in (0, 1]")
        for value in self.synthetic_ratios:
            if value <= 0:
                raise ValueError(f"synthetic_ratios: {value} must be > 0")
        for count in self.synthetic_counts:
            if count < 1:
                raise ValueError(f"synthetic_counts: {count} must be >= 1 text per class")


@dataclass(frozen=True)
class Cell:
    """One point of the grid; the seed is applied separately."""

    plan: str
    real_fraction: float
    synthetic_ratio: float = 0.0
    source: str | None = None
    synthetic_count: int = 0

    @property
    def key(self) -> str:
        amount = (
            f"n={self.synthetic_count}"
            if self.plan == SMALL_REAL_PLUS_COUNT
            else f"{self.synthetic_ratio:g}"
        )
        return f"{self.plan}|{self.source or '-'}|{self.real_fraction:g}|{amount}"

    @property
    def title(self) -> str:
        if self.plan == REAL_ONLY:
            return f"{self.real_fraction:.0%} real"
        if self.plan == SMALL_REAL_PLUS_SYNTHETIC:
            return f"{self.real_fraction:.0%} real + {self.synthetic_ratio:.0%} synthetic"
        if self.plan == SMALL_REAL_PLUS_COUNT:
            return f"{self.real_fraction:.0%} real + {self.synthetic_count} synthetic per class"
        return PLAN_TITLES[self.plan]

    def describe(self) -> dict[str, Any]:
        """The cell as a results record holds it."""
        return {
            "plan": self.plan,
            "real_fraction": self.real_fraction,
            "synthetic_ratio": self.synthetic_ratio,
            "synthetic_count": self.synthetic_count,
            "source": self.source,
            "title": self.title,
        }


def plan_cells(
    plans: PlanConfig,
    sources: list[str],
    source_plans: Mapping[str, Sequence[str] | None] | None = None,
) -> list[Cell]:
    """All cells of the grid. The real-only curve always contains 100% (the reference every
    mix is compared with) and the small real fraction (the zero-synthetic point of the
    small-real plans). `source_plans` limits a source to some plans (e.g. a small LLM
    source to `small_real_plus_count`); None means every plan."""
    fractions = set(plans.learning_curve) | {1.0}
    if (plans.synthetic_ratios or plans.synthetic_counts) and sources:
        fractions.add(plans.small_real_fraction)
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"real fractions must be in (0, 1], got {fraction}")
    cells = [Cell(REAL_ONLY, f) for f in sorted(fractions)]
    for source in sources:
        allowed = (source_plans or {}).get(source) or SOURCE_PLANS
        cells.extend(c for c in _source_cells(plans, source) if c.plan in allowed)
    return cells


def _source_cells(plans: PlanConfig, source: str) -> list[Cell]:
    small = plans.small_real_fraction
    cells = []
    if plans.synthetic_only:
        cells.append(Cell(SYNTHETIC_ONLY, 0.0, 1.0, source))
    if plans.half_and_half:
        cells.append(Cell(HALF_AND_HALF, 0.5, 0.5, source))
    if plans.real_plus_equal:
        cells.append(Cell(REAL_PLUS_EQUAL, 1.0, 1.0, source))
    cells.extend(
        Cell(SMALL_REAL_PLUS_SYNTHETIC, small, ratio, source)
        for ratio in sorted(plans.synthetic_ratios)
    )
    cells.extend(
        Cell(SMALL_REAL_PLUS_COUNT, small, 0.0, source, synthetic_count=count)
        for count in sorted(plans.synthetic_counts)
    )
    return cells


def planned_counts(
    cell: Cell, real_counts: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """(real, synthetic) examples per class that the cell asks for."""
    real: dict[str, int] = {}
    synthetic: dict[str, int] = {}
    for label, n in real_counts.items():
        real[label] = max(1, round_half_up(cell.real_fraction * n)) if cell.real_fraction > 0 else 0
        if cell.plan == HALF_AND_HALF:
            synthetic[label] = n - real[label]
        elif cell.plan == SMALL_REAL_PLUS_COUNT:
            synthetic[label] = cell.synthetic_count
        else:
            synthetic[label] = round_half_up(cell.synthetic_ratio * n)
    return real, synthetic


@dataclass(frozen=True)
class TrainingMix:
    data: LabeledData
    real_counts: dict[str, int]
    synthetic_counts: dict[str, int]
    shortfall: dict[str, int]
    # What a judged source dropped in this cell (see JudgingDeriver); None otherwise.
    judged: dict[str, Any] | None = None


class SyntheticDeriver(Protocol):
    """Makes synthetic texts from the real texts a cell may see (e.g. rule-based EDA)."""

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData: ...


@runtime_checkable
class JudgingDeriver(Protocol):
    """A deriver that drops some of its texts per cell (a classifier filter, label issues)
    and says what it dropped for the cell's record."""

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData: ...

    def drops(self, visible: LabeledData, seed: int) -> dict[str, Any]: ...


def compose(
    cell: Cell,
    real: LabeledData,
    synthetic: LabeledData | SyntheticDeriver | None,
    seed: int,
) -> TrainingMix:
    """Build the training set of one cell for one seed. The real sample for a fraction is
    the same in every cell with that fraction and seed, so mixes differ only in what is
    added. A deriver sees only the cell's real sample (all real data for synthetic-only)."""
    want_real, want_synthetic = planned_counts(cell, real.class_counts())
    parts: list[pd.DataFrame] = []
    real_part = sample_per_class(real, want_real, seed) if any(want_real.values()) else None
    n_real = len(real_part) if real_part is not None else 0
    if real_part is not None:
        part = real_part.frame[["text", LABEL]].assign(**{ORIGIN: "real"})
        part[GROUP] = np.arange(n_real)
        parts.append(part)
    shortfall: dict[str, int] = {}
    got_synthetic: dict[str, int] = {}
    judged: dict[str, Any] | None = None
    if any(want_synthetic.values()):
        if synthetic is None:
            raise ValueError(f"cell {cell.key} needs a synthetic source")
        derived = not isinstance(synthetic, LabeledData)
        if not isinstance(synthetic, LabeledData):
            visible = real_part if real_part is not None else real
            if isinstance(synthetic, JudgingDeriver):
                judged = synthetic.drops(visible, seed)
            # Per class: a half-and-half cell needs few texts of a small class.
            synthetic = synthetic(visible, want_synthetic, seed)
        synthetic_part = sample_per_class(synthetic, want_synthetic, seed + _SYNTHETIC_SEED_OFFSET)
        got_synthetic = synthetic_part.class_counts()
        shortfall = {
            label: want - got_synthetic.get(label, 0)
            for label, want in want_synthetic.items()
            if want > got_synthetic.get(label, 0)
        }
        parents = synthetic_part.frame.get("parent_row")
        if derived and parents is not None:
            # 1-based rows of the real texts the deriver saw: this cell's real sample.
            groups = parents.to_numpy(dtype=np.int64) - 1
        else:
            groups = n_real + np.arange(len(synthetic_part))
        part = synthetic_part.frame[["text", LABEL]].assign(**{ORIGIN: "synthetic"})
        part[GROUP] = groups
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    # Shuffle so that order-sensitive learners (SGD, transformers) see classes interleaved.
    order = np.random.default_rng(seed).permutation(len(frame))
    mixed = LabeledData(frame.iloc[order].reset_index(drop=True), f"mix {cell.key}")
    return TrainingMix(
        data=mixed,
        real_counts=real_part.class_counts() if real_part is not None else {},
        synthetic_counts=got_synthetic,
        shortfall=shortfall,
        judged=judged,
    )
