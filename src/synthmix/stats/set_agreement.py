"""Agreement between annotators who give each item a *set* of labels (multi-label tasks).

Three views, each computed by a library researchers cite:

- per label, Cohen's kappa (scikit-learn) of the yes/no decisions "does the item carry
  this label", for each pair of annotators, and Fleiss' kappa (statsmodels) of all of them;
- Krippendorff's alpha over the label sets with a set distance (nltk's `AnnotationTask`):
  MASI (Passonneau 2006: partial overlap counts as partial agreement, a subset more than a
  mere overlap) or Jaccard; items with one answer are left out, as alpha prescribes;
- exact-set agreement: the share of items whose answers are all the same set.

An item an annotator did not answer (an unparseable answer) is `None`; the empty set is an
answer ("none of the labels").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Literal

import numpy as np

from synthmix.stats.agreement import cohen_kappa, fleiss_kappa

LabelSet = frozenset[str] | tuple[str, ...] | list[str] | set[str]
SetDistance = Literal["masi", "jaccard"]


def _distance(name: SetDistance) -> Callable[[frozenset[str], frozenset[str]], float]:
    from nltk.metrics.distance import jaccard_distance, masi_distance

    base = {"masi": masi_distance, "jaccard": jaccard_distance}[name]

    def distance(a: frozenset[str], b: frozenset[str]) -> float:
        # nltk divides by the union's size: two empty sets (full agreement) would be 0/0.
        return 0.0 if a == b else float(base(a, b))

    return distance


def krippendorff_alpha_sets(
    units: Sequence[Sequence[LabelSet | None]], distance: SetDistance = "masi"
) -> float:
    """Krippendorff's alpha of label sets; `units` holds each item's answers in annotator
    order (None = missing). NaN when no item has two answers; 1.0 when a single set occurs
    throughout (nltk's convention: no disagreement is possible)."""
    from nltk.metrics.agreement import AnnotationTask

    data = [
        (str(coder), str(item), frozenset(answer))
        for item, answers in enumerate(units)
        for coder, answer in enumerate(answers)
        if answer is not None
    ]
    pairable = sum(sum(a is not None for a in answers) >= 2 for answers in units)
    if not pairable:
        return float("nan")
    task = AnnotationTask(data=data, distance=_distance(distance))
    return float(task.alpha())


def indicator(sets: Sequence[LabelSet | None], label: str) -> list[str | None]:
    """Per item "yes"/"no" for `label` (None stays None): the binary view kappa reads."""
    return [None if s is None else ("yes" if label in s else "no") for s in sets]


def per_label_kappa(
    a: Sequence[LabelSet | None], b: Sequence[LabelSet | None], classes: Sequence[str]
) -> dict[str, float]:
    """Cohen's kappa of the two annotators' yes/no decisions, per label (items both
    answered)."""
    return {label: cohen_kappa(indicator(a, label), indicator(b, label)) for label in classes}


def per_label_fleiss(
    units: Sequence[Sequence[LabelSet | None]], classes: Sequence[str]
) -> dict[str, float]:
    """Fleiss' kappa per label over the items every annotator answered (NaN where no item
    qualifies or a label is never, or always, chosen: kappa is undefined there)."""
    complete = [u for u in units if all(a is not None for a in u) and len(u) >= 2]
    out: dict[str, float] = {}
    for label in classes:
        if not complete:
            out[label] = float("nan")
            continue
        yes = np.array([sum(label in a for a in u if a is not None) for u in complete])
        table = np.column_stack([yes, len(complete[0]) - yes])
        marginals = table.sum(axis=0)
        out[label] = float("nan") if (marginals == 0).any() else fleiss_kappa(table)
    return out


def exact_set_agreement(units: Sequence[Sequence[LabelSet | None]]) -> tuple[int, int]:
    """(items whose answers are all one set, items with two or more answers)."""
    agree = total = 0
    for answers in units:
        given = [frozenset(a) for a in answers if a is not None]
        if len(given) < 2:
            continue
        total += 1
        agree += len(set(given)) == 1
    return agree, total


def pairwise_per_label_kappa(
    columns: dict[str, Sequence[LabelSet | None]], classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """`per_label_kappa` for every pair of annotators, keyed "a~b"."""
    return {
        f"{x}~{y}": per_label_kappa(columns[x], columns[y], classes)
        for x, y in combinations(columns, 2)
    }
