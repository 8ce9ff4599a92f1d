"""Inter-annotator agreement, computed by the libraries researchers cite: Cohen's kappa from
scikit-learn, Fleiss' kappa from statsmodels, Krippendorff's alpha from `krippendorff`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def cohen_kappa(a: Sequence[str | None], b: Sequence[str | None]) -> float:
    """Cohen's kappa of two annotators over the items both labelled (NaN when undefined: no
    common items, or both used one and the same label throughout with some disagreement)."""
    from sklearn.metrics import cohen_kappa_score

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        return float("nan")
    left, right = [x for x, _ in pairs], [y for _, y in pairs]
    if len(set(left) | set(right)) == 1:
        return 1.0  # one label throughout, full agreement; scikit-learn returns NaN here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(left, right))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an (items x categories) table of how many raters chose each
    category; every item needs the same number of raters (>= 2)."""
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    counts = np.asarray(counts, dtype=float)
    raters = counts.sum(axis=1)
    if len(counts) == 0 or not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters per item")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(statsmodels_fleiss(counts, method="fleiss"))


def krippendorff_alpha_nominal(units: Sequence[Sequence[str | None]]) -> float:
    """Krippendorff's alpha for nominal data; `units` holds each item's answers (None =
    missing). NaN when no item has two answers or only one value occurs."""
    import krippendorff

    values = sorted({v for unit in units for v in unit if v is not None})
    if not units or len(values) < 2:
        return float("nan")
    code = {v: float(i) for i, v in enumerate(values)}
    # krippendorff wants (raters x units) with NaN for missing answers.
    width = max(len(unit) for unit in units)
    matrix = np.full((width, len(units)), np.nan)
    for u, unit in enumerate(units):
        for r, value in enumerate(unit):
            if value is not None:
                matrix[r, u] = code[value]
    if not np.any(np.sum(~np.isnan(matrix), axis=0) >= 2):
        return float("nan")
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def count_table(rows: Sequence[Sequence[str | None]], categories: Sequence[str]) -> np.ndarray:
    """(items x categories) counts of the answers of each row (missing answers skipped)."""
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(rows), len(categories)), dtype=int)
    for r, row in enumerate(rows):
        for value in row:
            if value is not None:
                table[r, index[value]] += 1
    return table
