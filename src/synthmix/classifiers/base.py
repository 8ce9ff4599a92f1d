"""Classifiers behind one small, scikit-learn-compatible protocol.

Every classifier takes a list of texts and string labels, does no work in `__init__`, learns in
`fit` (returning self) and exposes `classes_`, so the experiment grid treats them alike and users
can drop them into their own scikit-learn code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

IMBALANCE_OPTIONS = ("none", "class_weight", "oversample")


@runtime_checkable
class TextClassifier(Protocol):
    classes_: np.ndarray

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TextClassifier: ...

    def predict(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def oversample_indices(labels: Sequence[str] | np.ndarray, seed: int) -> np.ndarray:
    """Row indices after random oversampling of minority classes to the majority size."""
    from imblearn.over_sampling import RandomOverSampler

    positions = np.arange(len(labels)).reshape(-1, 1)
    sampler = RandomOverSampler(random_state=seed)
    resampled, _ = sampler.fit_resample(positions, np.asarray(labels))
    return np.asarray(resampled).ravel()
