"""Label consistency (classifiers trained on one side, scored on the other) and novelty (how
close synthetic texts come to real ones)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmix.data.labeled import LabeledData
from synthmix.quality.diversity import tokens

Runs = dict[str, tuple[np.ndarray, np.ndarray] | str]


def codes(values: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[v] for v in values], dtype=np.int64)


def macro_f1(true: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Macro F1 over the classes present in `true` (classes only ever predicted count
    against precision of nobody, as in scikit-learn with labels=true classes)."""
    confusion = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    denominator = support + predicted_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    present = support > 0
    return float(f1[present].mean()) if present.any() else float("nan")


def cross_predict(
    train: LabeledData, test: LabeledData, seed: int
) -> tuple[np.ndarray | None, str | None]:
    """Predictions of a TF-IDF + LR classifier trained on `train` for `test`'s texts."""
    from synthmix.classifiers.tfidf import TfidfLogReg

    if len(train.classes) < 2:
        return None, f"{train.source}: one class only, no classifier can be trained"
    model = TfidfLogReg(random_state=seed).fit(train.texts, train.labels)
    return np.asarray(model.predict(test.texts), dtype=object), None


def consistency_runs(synth: LabeledData, real: LabeledData, seed: int, classes: list[str]) -> Runs:
    runs: Runs = {}
    for direction, train, test in (("real_to_synth", real, synth), ("synth_to_real", synth, real)):
        predicted, problem = cross_predict(train, test, seed)
        if predicted is None:
            runs[direction] = problem or "no classifier"
            continue
        runs[direction] = (codes(test.labels, classes), codes(list(predicted), classes))
    return runs


def nn_similarity(synthetic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each synthetic row's max cosine to any reference row (rows are unit vectors)."""
    if len(reference) == 0:
        return np.full(len(synthetic), np.nan)
    best = np.full(len(synthetic), -np.inf)
    for start in range(0, len(reference), 4096):
        block = synthetic @ reference[start : start + 4096].T
        best = np.maximum(best, block.max(axis=1))
    return best


def normalised(text: str) -> str:
    """The form the exact-copy check compares: lowercased word tokens."""
    return " ".join(tokens(text))
