"""Classification metrics for one run, and their mean with a confidence interval over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def evaluate(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, F1-macro, weighted F1, per-class precision/recall/F1/support and the
    confusion matrix (rows = true class, columns = predicted, in `classes` order).

    A class never predicted gets precision 0 (scikit-learn's zero_division=0), which is what a
    reader of a per-class table expects rather than a warning and NaN.
    """
    labels = list(classes)
    # Integer codes give scikit-learn's metrics the same answers as the strings, without
    # its checks sorting and comparing strings on every call (a tenth of a grid fit's CPU).
    true, pred, codes = _codes(y_true, y_pred, labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=codes, zero_division=0
    )
    macro = precision_recall_fscore_support(
        true, pred, labels=codes, average="macro", zero_division=0
    )
    weighted = precision_recall_fscore_support(
        true, pred, labels=codes, average="weighted", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "f1_macro": float(macro[2]),
        "f1_weighted": float(weighted[2]),
        "precision_macro": float(macro[0]),
        "recall_macro": float(macro[1]),
        "per_class": per_class(labels, precision, recall, f1, support),
        "confusion_matrix": confusion_matrix(true, pred, labels=codes).tolist(),
        "classes": labels,
    }


def _codes(
    y_true: Sequence[str], y_pred: Sequence[str], labels: list[str]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """`y_true`, `y_pred` and `labels` as integer codes: a label's index in `labels`, and
    codes after those for values outside `labels` (counted by accuracy, not per class)."""
    index = {label: i for i, label in enumerate(labels)}
    true = np.fromiter((index.setdefault(y, len(index)) for y in y_true), np.int64, len(y_true))
    pred = np.fromiter((index.setdefault(y, len(index)) for y in y_pred), np.int64, len(y_pred))
    return true, pred, list(range(len(labels)))


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds with a two-sided 95% Student-t confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    std: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def format(self, digits: int = 3) -> str:
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def per_class(
    labels: Sequence[str], precision: Any, recall: Any, f1: Any, support: Any
) -> dict[str, dict[str, float]]:
    """scikit-learn's per-class arrays (`precision_recall_fscore_support` without averaging)
    as one dict per class, in `labels` order."""
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """With one value the interval collapses to the point: there is no spread to estimate."""
    array = np.asarray(values, dtype=float)
    n = len(array)
    if n == 0:
        raise ValueError("no values")
    mean = float(array.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1, 0.0)
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, std)
