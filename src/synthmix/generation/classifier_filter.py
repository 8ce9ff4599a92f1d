"""Keep a synthetic text only when a classifier trained on real texts agrees with its label.

A weak generator (the bundled Gemma-3-270M, many small open models) often writes a text of
another class than the one it was asked for. LAMBADA (Anaby-Tavor et al. 2020), ZeroGen's
"correctness" and SuperGen's selection all answer it the same way: train a classifier on
the real texts and keep a generated text only when that classifier gives its intended
label a high probability (`min_probability`) or ranks it among its `top_k` classes.

`ClassifierJudge` is the fitted classifier and its rule; `ClassifierFilter` is the stage of
the generation engine's filter chain that asks it, one candidate at a time, and counts
what it dropped per class and which class the classifier saw instead. The experiment fits
a judge inside each cell on the real texts that cell may see (experiment.filtered).
"""

from __future__ import annotations

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


@dataclass
class ClassifierFilterConfig:
    """Which classifier judges (a name of the classifier registry and its params) and the
    rule: keep a text whose intended label gets probability >= `min_probability`, or is
    among the classifier's `top_k` most probable classes; neither set means
    min_probability 0.5."""

    classifier: str = "tfidf_logreg"
    params: dict[str, Any] = field(default_factory=dict)
    min_probability: float | None = None
    top_k: int | None = None

    def __post_init__(self) -> None:
        # ValueError, not ConfigError: the YAML edge turns it into "file: key: problem".
        if self.min_probability is not None and self.top_k is not None:
            raise ValueError("set min_probability or top_k, not both")
        if self.min_probability is None and self.top_k is None:
            self.min_probability = DEFAULT_MIN_PROBABILITY
        if self.min_probability is not None and not 0 <= self.min_probability <= 1:
            raise ValueError(f"min_probability must be in [0, 1], got {self.min_probability}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")

    @property
    def classifier_config(self) -> ClassifierConfig:
        return ClassifierConfig(name=self.classifier, params=dict(self.params))

    def check(self, where: str, key: str = "filter") -> None:
        """The classifier's name and params, checked before anything is fitted; errors name
        `where` and the config `key` holding this filter."""
        try:
            check_classifier(self.classifier_config)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None

    @property
    def rule(self) -> str:
        if self.top_k is not None:
            return f"intended label in the top {self.top_k}"
        return f"p(intended label) >= {self.min_probability:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "params": dict(self.params),
            "min_probability": self.min_probability,
            "top_k": self.top_k,
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
        else:
            keep = known & (probability >= float(self.config.min_probability or 0.0))
        return Judgement(keep, probability, predicted)


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
        self.judge = judge
        self.counts = FilterCounts()

    def keep(self, candidate: Candidate) -> Verdict:
        label = candidate.label or ""
        judgement = self.judge.judge([candidate.text], [label])
        self.counts.add([label], judgement)
        return bool(judgement.keep[0])
