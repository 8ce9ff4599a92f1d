"""Multi-label classification metrics (scikit-learn), shaped like `evaluate`'s so the report
reads both: `f1_macro`, `f1_weighted`, `accuracy` (here subset accuracy) and `per_class`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support

from synthmix.stats.classification import per_class


def evaluate_multilabel(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Micro, macro, weighted and samples F1 (and P/R), per-label precision/recall/F1/support,
    subset accuracy (every label of a text right) and Hamming loss (share of wrong
    text-label decisions), for 0/1 matrices texts x `classes`.

    A label never predicted, or a text with no gold and no predicted label, scores 0 rather
    than a warning (zero_division=0), as in `evaluate`.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    labels = list(classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, zero_division=0
    )
    averaged = {
        average: precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        for average in ("micro", "macro", "weighted", "samples")
    }
    subset = float(accuracy_score(y_true, y_pred))
    return {
        "task": "multi_label",
        "accuracy": subset,
        "subset_accuracy": subset,
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        **{f"f1_{average}": float(scores[2]) for average, scores in averaged.items()},
        **{f"precision_{average}": float(scores[0]) for average, scores in averaged.items()},
        **{f"recall_{average}": float(scores[1]) for average, scores in averaged.items()},
        "per_class": per_class(labels, precision, recall, f1, support),
        "classes": labels,
    }
