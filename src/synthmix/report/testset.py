"""The test labels of a finished run, for scoring stored predictions on resampled test texts.

Records keep each fit's test predictions but not the gold labels, which live in the run's test
file. The report reloads that file as the run did and checks it against the fingerprint in
run.json: a file edited or moved since the run cannot be used, and the report then compares
cells on their per-seed scores alone, saying why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from synthmix.core.errors import SynthmixError
from synthmix.data.labeled import LabeledData, load_labeled, split_train_test
from synthmix.data.multilabel import load_multilabel

SPLIT_SUFFIX = " (test split)"
# Why an old multi-label run's mixes are compared on per-seed scores only.
MULTI_LABEL_REASON = (
    "its multi-label records hold no per-text label predictions (seed-level only: written "
    "before they were stored)"
)


@dataclass(frozen=True)
class TestLabels:
    """Gold labels in test-set order (`labels` for a single-label run, `label_sets` for a
    multi-label one), or None with the reason they could not be had."""

    labels: list[str] | None
    reason: str = ""
    label_sets: list[tuple[str, ...]] | None = None


def load_test_labels(info: dict[str, Any]) -> TestLabels:
    described = (info.get("data") or {}).get("test")
    settings = (info.get("config") or {}).get("data") or {}
    if not isinstance(described, dict) or not described.get("source"):
        return TestLabels(None, "run.json does not describe the test set")
    expected = described.get("sha256_16")
    if not expected:
        return TestLabels(None, "run.json has no fingerprint of the test set to check it by")
    source = str(described["source"])
    split = source.endswith(SPLIT_SUFFIX)
    path = source.removesuffix(SPLIT_SUFFIX)
    if settings.get("task") == "multi_label":
        return _multilabel_test_labels(path, split, settings, str(expected))
    try:
        data = load_labeled(
            path,
            str(settings.get("text_column", "text")),
            str(settings.get("label_column", "label")),
            str(settings.get("encoding", "auto")),
            settings.get("text_pair_column"),
        )
        if data.pairs is not None:
            data = _joined(data)
        if split:
            _, data = split_train_test(
                data, float(settings.get("test_size", 0.2)), int(settings.get("split_seed", 0))
            )
    except SynthmixError as error:
        return TestLabels(None, f"the test set could not be reloaded ({error})")
    if fingerprint(data) != expected:
        return TestLabels(None, f"the test set {path} has changed since the run")
    return TestLabels(list(data.labels))


def _multilabel_test_labels(
    path: str, split: bool, settings: dict[str, Any], expected: str
) -> TestLabels:
    """A multi-label run's test label sets, reloaded as the multi-label runner loaded them
    and checked against its fingerprint."""
    from synthmix.experiment.multi_runner import _fingerprint, split_multilabel

    try:
        data = load_multilabel(
            path,
            str(settings.get("text_column", "text")),
            str(settings.get("labels_column", "labels")),
            settings.get("label_delimiter"),
            settings.get("text_pair_column"),
            encoding=str(settings.get("encoding", "auto")),
        )
        if split:
            _, data = split_multilabel(
                data, float(settings.get("test_size", 0.2)), int(settings.get("split_seed", 0))
            )
    except SynthmixError as error:
        return TestLabels(None, f"the test set could not be reloaded ({error})")
    if _fingerprint(data) != expected:
        return TestLabels(None, f"the test set {path} has changed since the run")
    return TestLabels(None, label_sets=data.label_sets)


def _joined(data: LabeledData) -> LabeledData:
    # As the runner fingerprinted it: text pairs as joined strings.
    from synthmix.data.pairs import join_pairs

    frame = data.frame.assign(text=join_pairs(data.texts, data.pairs or []))
    return LabeledData(frame, data.source, data.encoding)


def fingerprint(data: LabeledData) -> str:
    """The test set's fingerprint as the runner writes it to run.json."""
    digest = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]
