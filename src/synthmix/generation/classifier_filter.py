"""Keep a synthetic text only when a classifier trained on real texts agrees with its label.

A weak generator (the bundled Gemma-3-270M, many small open models) often writes a text of
another class than the one it was asked for. LAMBADA (Anaby-Tavor et al. 2020), ZeroGen's
"correctness" and SuperGen's selection all answer it the same way: train a classifier on
the real texts and keep a generated text only when that classifier gives its intended
label a high probability (`min_probability`) or ranks it among its `top_k` classes; over a
whole source, `keep_share` keeps each class's texts with the highest such probability, so a
class the classifier knows badly (a small one) is not emptied.

`ClassifierJudge` is the fitted classifier and its rule; `ClassifierFilter` is the stage of
the generation engine's filter chain that asks it, one candidate at a time, and counts
what it dropped per class and which class the classifier saw instead. The experiment fits
a judge inside each cell on the real texts that cell may see (experiment.filtered).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthmix.classifiers.base import TextClassifier
from synthmix.classifiers.registry import ClassifierConfig, build_classifier, check_classifier
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.generation.filters import Candidate, Verdict

DEFAULT_MIN_PROBABILITY = 0.5
_STREAMING = (
    "keep_share ranks a whole source, and generation judges one text at a time: use "
    "min_probability or top_k there (keep_share in an experiment's source filter)"
)


@dataclass
class ClassifierFilterConfig:
    """Which classifier judges (a name of the classifier registry and its params) and the
    rule: keep a text whose intended label gets probability >= `min_probability`, or is
    among the classifier's `top_k` most probable classes, or (judging a whole source at
    once) is among the `keep_share` of its class's texts with the highest probability of
    that label; none set means min_probability 0.5."""

    classifier: str = "tfidf_logreg"
    params: dict[str, Any] = field(default_factory=dict)
    min_probability: float | None = None
    top_k: int | None = None
    keep_share: float | None = None

    def __post_init__(self) -> None:
        # ValueError, not ConfigError: the YAML edge turns it into "file: key: problem".
        rules = [self.min_probability, self.top_k, self.keep_share]
        if sum(rule is not None for rule in rules) > 1:
            raise ValueError("set one of min_probability, top_k and keep_share")
        if all(rule is None for rule in rules):
            self.min_probability = DEFAULT_MIN_PROBABILITY
        if self.keep_share is not None and not 0 < self.keep_share <= 1:
            raise ValueError(f"keep_share must be in (0, 1], got {self.keep_share}")
        if self.min_probability is not None and not 0 <= self.min_probability <= 1:
            raise ValueError(f"min_probability must be in [0, 1], got {self.min_probability}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")

    @property
    def classifier_config(self) -> ClassifierConfig:
        return ClassifierConfig(name=self.classifier, params=dict(self.params))

    def check(self, where: str, key: str = "filter", streaming: bool = False) -> None:
        """The classifier's name and params, checked before anything is fitted; errors name
        `where` and the config `key` holding this filter. `streaming`: texts are judged one
        at a time (generation), where a share of a whole source means nothing."""
        if streaming and self.keep_share is not None:
            raise ConfigError(f"{where}: {key}: {_STREAMING}")
        try:
            check_classifier(self.classifier_config)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None

    @property
    def rule(self) -> str:
        if self.top_k is not None:
            return f"intended label in the top {self.top_k}"
        if self.keep_share is not None:
            return f"the {self.keep_share:.0%} of each class most likely of its label"
        return f"p(intended label) >= {self.min_probability:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "params": dict(self.params),
            "min_probability": self.min_probability,
            "top_k": self.top_k,
            "keep_share": self.keep_share,
        }


def filter_config(value: ClassifierFilterConfig | dict[str, Any]) -> ClassifierFilterConfig:
    """A config, also from a mapping (YAML, a report read back)."""
    if isinstance(value, ClassifierFilterConfig):
        return value
    try:
        return ClassifierFilterConfig(**value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"classifier filter: {exc}") from None


@dataclass(frozen=True)
class Judgement:
    """Per text: kept or not, the probability of its intended label, the class the
    classifier found most probable."""

    keep: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray


class ClassifierJudge:
    """A classifier fitted on real texts, judging texts by their intended labels."""

    def __init__(self, config: ClassifierFilterConfig, model: TextClassifier) -> None:
        self.config = config
        self.model = model
        self.classes = [str(c) for c in model.classes_]
        self._column = {label: i for i, label in enumerate(self.classes)}

    @classmethod
    def fit(cls, config: ClassifierFilterConfig, real: LabeledData, seed: int) -> ClassifierJudge:
        """Fitted on `real` alone: the texts the caller may use, nothing else."""
        real.require_classes(2)
        model = build_classifier(config.classifier_config, seed)
        model.fit(real.texts, real.labels)
        return cls(config, model)

    def judge(self, texts: Sequence[str], labels: Sequence[str]) -> Judgement:
        n = len(texts)
        if n == 0:
            empty = np.zeros(0)
            return Judgement(empty.astype(bool), empty, empty.astype(object))
        proba = np.asarray(self.model.predict_proba(list(texts)), dtype=float)
        predicted = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
        # A label the classifier never saw gets probability 0: nothing vouches for it.
        columns = np.array([self._column.get(label, -1) for label in labels])
        known = columns >= 0
        probability = np.zeros(n)
        probability[known] = proba[np.flatnonzero(known), columns[known]]
        if self.config.top_k is not None:
            # Rank = classes strictly more probable than the intended one.
            higher = (proba > probability[:, None]).sum(axis=1)
            keep = known & (higher < self.config.top_k)
        elif self.config.keep_share is not None:
            keep = known & _top_share(probability, labels, self.config.keep_share)
        else:
            keep = known & (probability >= float(self.config.min_probability or 0.0))
        return Judgement(keep, probability, predicted)


def _top_share(probability: np.ndarray, labels: Sequence[str], share: float) -> np.ndarray:
    """Per label, its ceil(share x n) texts of the highest probability (earlier first on
    ties)."""
    keep = np.zeros(len(probability), dtype=bool)
    labels_arr = np.asarray(labels, dtype=object)
    for label in dict.fromkeys(labels):
        rows = np.flatnonzero(labels_arr == label)
        order = rows[np.argsort(-probability[rows], kind="stable")]
        keep[order[: math.ceil(share * len(rows))]] = True
    return keep


@dataclass
class FilterCounts:
    """What a judge dropped, per intended class, and which class it saw in those texts."""

    judged: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    predicted_as: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, labels: Sequence[str], judgement: Judgement) -> None:
        for label, keep, predicted in zip(labels, judgement.keep, judgement.predicted, strict=True):
            self.judged[label] += 1
            if not keep:
                self.dropped[label] += 1
                self.predicted_as.setdefault(label, Counter())[str(predicted)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "judged": dict(sorted(self.judged.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "predicted_as": {
                label: dict(counts.most_common())
                for label, counts in sorted(self.predicted_as.items())
            },
        }


class ClassifierFilter:
    """The filter chain's stage: drops a candidate whose label the judge does not confirm.
    Placed after the dedup stages, it judges only texts that would otherwise be kept."""

    name = "classifier"

    def __init__(self, judge: ClassifierJudge) -> None:
        if judge.config.keep_share is not None:
            raise ConfigError(f"classifier filter: {_STREAMING}")
        self.judge = judge
        self.counts = FilterCounts()

    def keep(self, candidate: Candidate) -> Verdict:
        label = candidate.label or ""
        judgement = self.judge.judge([candidate.text], [label])
        self.counts.add([label], judgement)
        return bool(judgement.keep[0])
