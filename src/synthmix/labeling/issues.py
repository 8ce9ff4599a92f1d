"""Suspected label errors by confident learning (cleanlab; Northcutt et al. 2021).

Out-of-fold class probabilities come from a cheap classifier of the registry (TF-IDF +
logistic regression by default) over scikit-learn's StratifiedKFold, so no text is
scored by a model that saw it; `cleanlab.filter.find_label_issues` then flags the texts
whose given label the probabilities contradict. Real and synthetic texts are scored
together: a synthetic text of the wrong class stands out against the real ones, and the
flagged real texts go to a human (the review file), while flagged synthetic ones can
simply be dropped (the experiment's `drop_label_issues`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthmix.classifiers.registry import ClassifierConfig, build_classifier, check_classifier
from synthmix.core.errors import ConfigError, DataError
from synthmix.core.files import sidecar
from synthmix.data.labeled import LABEL, TEXT, LabeledData

REAL = "real"
SYNTHETIC = "synthetic"
# cleanlab's ways of choosing how many texts are issues (`filter_by`).
FILTER_BY = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
)


@dataclass
class IssueConfig:
    """The classifier whose out-of-fold probabilities cleanlab reads, the folds, and
    cleanlab's `filter_by` rule."""

    classifier: str = "tfidf_logreg"
    params: dict[str, Any] = field(default_factory=dict)
    folds: int = 5
    filter_by: str = "prune_by_noise_rate"
    seed: int = 0

    def check(self) -> None:
        if self.filter_by not in FILTER_BY:
            raise ConfigError(
                f"filter_by must be one of {', '.join(FILTER_BY)}, got {self.filter_by!r}"
            )
        if self.folds < 2:
            raise ConfigError(f"folds must be >= 2, got {self.folds}")
        check_classifier(ClassifierConfig(self.classifier, dict(self.params)))


@dataclass(frozen=True)
class LabelIssues:
    """Per text of the scored union (real rows first, then synthetic): its origin, its row
    in its own data, given label, out-of-fold probabilities, and whether cleanlab flags it."""

    texts: list[str]
    labels: list[str]
    origins: np.ndarray
    rows: np.ndarray
    classes: list[str]
    probabilities: np.ndarray
    flagged: np.ndarray
    quality: np.ndarray
    folds: int

    @property
    def suggested(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.probabilities.argmax(axis=1)]

    def flagged_rows(self, origin: str) -> np.ndarray:
        """Rows (0-based, in that data) of `origin`'s texts that cleanlab flags."""
        mine = self.origins == origin
        return np.asarray(self.rows[mine & self.flagged], dtype=int)

    def counts(self) -> dict[str, Any]:
        """Flagged texts per origin and, for each, per given label."""
        summary: dict[str, Any] = {}
        for origin in (REAL, SYNTHETIC):
            mine = self.origins == origin
            if not mine.any():
                continue
            labels = pd.Series(np.asarray(self.labels, dtype=object)[mine & self.flagged])
            summary[origin] = {
                "texts": int(mine.sum()),
                "flagged": int((mine & self.flagged).sum()),
                "by_label": {str(k): int(v) for k, v in sorted(labels.value_counts().items())},
            }
        return summary

    def review_frame(self) -> pd.DataFrame:
        """The flagged texts, the worst label quality first: what a reviewer should see."""
        order = np.flatnonzero(self.flagged)
        order = order[np.argsort(self.quality[order], kind="stable")]
        labels = np.asarray(self.labels, dtype=object)
        given_p = self.probabilities[np.arange(len(labels)), self._columns()]
        return pd.DataFrame(
            {
                TEXT: np.asarray(self.texts, dtype=object)[order],
                LABEL: labels[order],
                "suggested_label": self.suggested[order],
                "label_quality": np.round(self.quality[order], 4),
                "p_given": np.round(given_p[order], 4),
                "p_suggested": np.round(self.probabilities[order].max(axis=1), 4),
                "origin": self.origins[order],
                # As the data files count rows: from 1, header excluded.
                "row": self.rows[order] + 1,
            }
        )

    def _columns(self) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.classes)}
        return np.array([index[label] for label in self.labels], dtype=int)


def find_label_issues(
    real: LabeledData, synthetic: LabeledData | None = None, config: IssueConfig | None = None
) -> LabelIssues:
    """Score `real` and `synthetic` together; every synthetic label must be a real class."""
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    config = config or IssueConfig()
    config.check()
    real.require_classes(2)
    classes = real.classes
    parts = [real] if synthetic is None else [real, synthetic]
    if synthetic is not None:
        unknown = sorted(set(synthetic.classes) - set(classes))
        if unknown:
            first = synthetic.labels.index(unknown[0]) + 1
            raise DataError(
                synthetic.source,
                f"label '{unknown[0]}' does not occur in the real data ({real.source})",
                row=first,
            )
    texts = [text for part in parts for text in part.texts]
    labels = [label for part in parts for label in part.labels]
    origins = np.array([REAL] * len(real) + [SYNTHETIC] * (len(texts) - len(real)), dtype=object)
    rows = np.concatenate([np.arange(len(part)) for part in parts])
    counts = pd.Series(labels).value_counts()
    smallest = str(counts.idxmin())
    if counts.min() < 2:
        raise DataError(
            real.source,
            f"class '{smallest}' has one text; out-of-fold probabilities need at least 2 per class",
        )
    folds = int(min(config.folds, counts.min()))
    probabilities = out_of_fold_probabilities(texts, labels, classes, config, folds)
    index = {label: i for i, label in enumerate(classes)}
    encoded = np.array([index[label] for label in labels], dtype=int)
    flagged = cleanlab_issues(encoded, probabilities, filter_by=config.filter_by)
    quality = get_label_quality_scores(encoded, probabilities)
    return LabelIssues(
        texts=texts,
        labels=labels,
        origins=origins,
        rows=rows,
        classes=classes,
        probabilities=np.asarray(probabilities, dtype=float),
        flagged=np.asarray(flagged, dtype=bool),
        quality=np.asarray(quality, dtype=float),
        folds=folds,
    )


def out_of_fold_probabilities(
    texts: list[str], labels: list[str], classes: list[str], config: IssueConfig, folds: int
) -> np.ndarray:
    """Per text, class probabilities (columns in `classes` order) from a model fitted on the
    other folds. A loop over scikit-learn's StratifiedKFold rather than cross_val_predict:
    that one hands the estimator integer-coded labels, and registry classifiers take the
    string labels (and need not be clonable)."""
    from sklearn.model_selection import StratifiedKFold

    spec = ClassifierConfig(config.classifier, dict(config.params))
    text_array = np.asarray(texts, dtype=object)
    label_array = np.asarray(labels, dtype=object)
    column = {label: i for i, label in enumerate(classes)}
    probabilities = np.zeros((len(texts), len(classes)))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    for train, held_out in split.split(text_array, label_array):
        model = build_classifier(spec, config.seed)
        model.fit(text_array[train].tolist(), label_array[train].tolist())
        proba = np.asarray(model.predict_proba(text_array[held_out].tolist()), dtype=float)
        columns = [column[str(c)] for c in model.classes_]
        probabilities[np.ix_(held_out, columns)] = proba
    return probabilities


def write_issues(
    issues: LabelIssues,
    out: str | Path,
    sources: dict[str, str],
    label_studio: str | Path | None = None,
) -> Path:
    """The review CSV of flagged texts (the annotators' format: UTF-8 with BOM and an empty
    `human_label` column), and `<out stem>.report.json` beside it with the counts; with
    `label_studio`, the same texts as Label Studio tasks (the given label in `data.label`
    and as the `final` prediction, cleanlab's suggestion as another), which `synthmix
    review-import` reads back."""
    import json

    from synthmix.labeling.annotators import (
        export_label_studio,
        export_review_csv,
        label_studio_tasks,
    )

    out = Path(out)
    frame = issues.review_frame()
    frame.insert(list(frame.columns).index("row"), "file", frame["origin"].map(sources))
    export_review_csv(frame, out)
    if label_studio is not None:
        given = frame[LABEL].tolist()
        predictions = {"suggested": frame["suggested_label"].tolist(), "final": given}
        data = {key: frame[key].tolist() for key in (LABEL, "origin", "file", "row")}
        data["row"] = [int(r) for r in data["row"]]
        export_label_studio(
            label_studio_tasks(frame[TEXT].tolist(), predictions, data=data), label_studio
        )
    report = sidecar(out)
    summary = {
        "classes": issues.classes,
        "folds": issues.folds,
        "files": sources,
        "counts": issues.counts(),
    }
    report.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report
