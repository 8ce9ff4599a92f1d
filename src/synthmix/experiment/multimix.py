"""Mixing plans for multi-label data: the plans of `mixing` with per-label targets.

A text counts for every label it carries, so "f of each class" becomes "f of each label's
texts". The real sample of a fraction is drawn by iterative stratification (Sechidis et al.
2011, the `iterstrat` package), which keeps every label's share close to f; a label the draw
left out gets one of its texts added, so rare labels never vanish from a small-real cell (the
multi-label form of "every class keeps at least one example").

Synthetic texts are drawn to per-label targets by a greedy equivalent: the label furthest
from its target relative to what the source has goes first, and among its texts one whose
other labels still need texts is preferred, so frequent companions (neutral) overshoot less.
A target the source cannot meet is recorded as a shortfall, as in single-label mixing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from synthmix.data.multilabel import LABELS, MultiLabelData
from synthmix.experiment.mixing import ORIGIN, Cell, planned_counts

# A mix's column naming the real text each row is, or rewrites (EDA's parent): rows of one
# group stay in one fold when a classifier tunes thresholds by cross-validation, or a real
# text's variant in the other folds would make its out-of-fold score look sure.
GROUP = "group"
# As in mixing: the synthetic draw's seed is independent of the real draw's.
_SYNTHETIC_SEED_OFFSET = 10_007
# How many of a label's next texts the greedy draw looks through for one that overshoots no
# other label.
_LOOKAHEAD = 25


def stratified_multilabel_fraction(
    data: MultiLabelData, fraction: float, seed: int
) -> MultiLabelData:
    """About `fraction` of the rows, each label's share kept (iterative stratification);
    every label of `data` has at least one text in the result. Rows keep their order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1 or len(data) < 2:
        return data
    classes = data.classes
    matrix = data.indicator(classes)
    size = max(1, math.floor(fraction * len(data) + 0.5))
    if size >= len(data):
        return data
    splitter = MultilabelStratifiedShuffleSplit(
        n_splits=1, train_size=size, test_size=len(data) - size, random_state=seed
    )
    chosen, _ = next(splitter.split(np.zeros(len(data)), matrix))
    picked = np.zeros(len(data), dtype=bool)
    picked[chosen] = True
    rng = np.random.default_rng(seed)
    for j in range(len(classes)):
        if not matrix[picked, j].any():
            picked[rng.choice(np.flatnonzero(matrix[:, j]))] = True
    return data.subset(np.flatnonzero(picked))


def sample_per_label(data: MultiLabelData, targets: Mapping[str, int], seed: int) -> MultiLabelData:
    """Texts drawn until each label has `targets[label]` texts or its texts run out (see the
    module docstring). Texts with none of the targeted labels are never drawn."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    sets = data.label_sets
    need = {label: int(n) for label, n in targets.items() if n > 0}
    pools: dict[str, list[int]] = {label: [] for label in need}
    for row in order:
        for label in sets[row]:
            if label in pools:
                pools[label].append(int(row))
    cursor = dict.fromkeys(need, 0)
    used = np.zeros(len(data), dtype=bool)
    chosen: list[int] = []

    def left(label: str) -> int:
        pool = pools[label]
        while cursor[label] < len(pool) and used[pool[cursor[label]]]:
            cursor[label] += 1
        return len(pool) - cursor[label]

    while True:
        open_labels = [label for label, n in need.items() if n > 0 and left(label) > 0]
        if not open_labels:
            break
        # The label with the fewest texts left per text it still needs goes first.
        label = min(open_labels, key=lambda lb: (left(lb) / need[lb], lb))
        pool = pools[label]
        candidates = [r for r in pool[cursor[label] : cursor[label] + _LOOKAHEAD] if not used[r]]
        row = next(
            (r for r in candidates if all(need.get(other, 0) > 0 for other in sets[r])),
            candidates[0],
        )
        used[row] = True
        chosen.append(row)
        for other in sets[row]:
            if other in need:
                need[other] -= 1
    return data.subset(sorted(chosen))


def planned_label_counts(
    cell: Cell, real_counts: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """(real, synthetic) texts per label the cell asks for: `mixing.planned_counts` with
    labels for classes."""
    return planned_counts(cell, real_counts)


class MultiLabelDeriver(Protocol):
    """Makes synthetic multi-label texts from the real texts a cell may see."""

    def __call__(
        self, visible: MultiLabelData, per_label: Mapping[str, int], seed: int
    ) -> MultiLabelData: ...


@dataclass(frozen=True)
class MultiLabelMix:
    data: MultiLabelData
    real_counts: dict[str, int]
    synthetic_counts: dict[str, int]
    shortfall: dict[str, int]


def compose_multilabel(
    cell: Cell,
    real: MultiLabelData,
    synthetic: MultiLabelData | MultiLabelDeriver | None,
    seed: int,
) -> MultiLabelMix:
    """The training set of one cell for one seed (see `mixing.compose`): the real sample of
    a fraction and seed is the same in every cell, and a deriver sees only that sample."""
    _, want_synthetic = planned_label_counts(cell, real.label_counts())
    real_part = (
        stratified_multilabel_fraction(real, cell.real_fraction, seed)
        if cell.real_fraction > 0
        else None
    )
    columns = [c for c in real.frame.columns if c in ("text", LABELS, "text_pair")]
    parts: list[pd.DataFrame] = []
    if real_part is not None:
        parts.append(real_part.frame[columns].assign(**{ORIGIN: "real", GROUP: real_part.texts}))
    got: dict[str, int] = {}
    shortfall: dict[str, int] = {}
    if any(want_synthetic.values()):
        if synthetic is None:
            raise ValueError(f"cell {cell.key} needs a synthetic source")
        if not isinstance(synthetic, MultiLabelData):
            visible = real_part if real_part is not None else real
            synthetic = synthetic(visible, want_synthetic, seed)
        drawn = sample_per_label(synthetic, want_synthetic, seed + _SYNTHETIC_SEED_OFFSET)
        got = drawn.label_counts()
        shortfall = {
            label: want - got.get(label, 0)
            for label, want in want_synthetic.items()
            if want > got.get(label, 0)
        }
        parts.append(
            drawn.frame[[c for c in columns if c in drawn.frame]].assign(**{ORIGIN: "synthetic"})
        )
    frame = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(frame))
    mixed = MultiLabelData(frame.iloc[order].reset_index(drop=True), f"mix {cell.key}")
    return MultiLabelMix(
        data=mixed,
        real_counts=real_part.label_counts() if real_part is not None else {},
        synthetic_counts=got,
        shortfall=shortfall,
    )
