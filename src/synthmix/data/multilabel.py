"""Multi-label texts: each row carries a set of labels (a JSON list, or a delimited string),
optionally with a second text (a text pair).

A row may carry no label at all (an empty list): such rows are kept, counted and reported,
since "none of the classes" is a real answer in many multi-label guides.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthmix.core.errors import DataError
from synthmix.data.labeled import TEXT, TEXT_PAIR, _label_str, from_frame, read_frame

LABELS = "labels"
MULTI_LABEL = "multi_label"
SINGLE_LABEL = "single_label"
TASK_TYPES = (SINGLE_LABEL, MULTI_LABEL)


@dataclass(frozen=True)
class MultiLabelData:
    """Texts with label sets. `frame` has `text`, `labels` (a tuple of label names, sorted,
    possibly empty), `text_pair` when the task has two texts, and any extra columns."""

    frame: pd.DataFrame
    source: str
    encoding: str = "utf-8"

    @property
    def texts(self) -> list[str]:
        return self.frame[TEXT].tolist()

    @property
    def label_sets(self) -> list[tuple[str, ...]]:
        return self.frame[LABELS].tolist()

    @property
    def pairs(self) -> list[str] | None:
        return self.frame[TEXT_PAIR].tolist() if TEXT_PAIR in self.frame.columns else None

    @property
    def classes(self) -> list[str]:
        return sorted({label for labels in self.label_sets for label in labels})

    def __len__(self) -> int:
        return len(self.frame)

    def label_counts(self) -> dict[str, int]:
        """Texts per label: a text counts once for every label it carries."""
        counts = Counter(label for labels in self.label_sets for label in labels)
        return {label: counts[label] for label in sorted(counts)}

    # Mixing and reports ask every dataset for its class counts.
    class_counts = label_counts

    def no_label_rows(self) -> list[int]:
        """1-based rows with an empty label list."""
        return [i + 1 for i, labels in enumerate(self.label_sets) if not labels]

    def cooccurrence(self) -> dict[tuple[str, str], int]:
        """Texts per unordered pair of labels seen together, most frequent first."""
        counts: Counter[tuple[str, str]] = Counter()
        for labels in self.label_sets:
            counts.update(itertools.combinations(sorted(labels), 2))
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def indicator(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """The 0/1 matrix rows x `classes` (default: this data's classes); labels outside
        `classes` are ignored."""
        classes = list(classes) if classes is not None else self.classes
        column = {label: j for j, label in enumerate(classes)}
        matrix = np.zeros((len(self), len(classes)), dtype=np.int8)
        for i, labels in enumerate(self.label_sets):
            for label in labels:
                if label in column:
                    matrix[i, column[label]] = 1
        return matrix

    def subset(self, positions: np.ndarray | list[int]) -> MultiLabelData:
        frame = self.frame.iloc[np.asarray(positions, dtype=int)].reset_index(drop=True)
        return MultiLabelData(frame=frame, source=self.source, encoding=self.encoding)

    def require_classes(self, minimum: int = 2) -> None:
        if len(self.classes) < minimum:
            raise DataError(
                self.source, f"{len(self.classes)} label(s); a classifier needs at least {minimum}"
            )

    def summary(self, top_pairs: int = 10) -> dict[str, Any]:
        """What card init and data validation report: rows, per-label counts, how many
        rows carry no label and several labels, and the most frequent co-occurrences."""
        sizes = [len(labels) for labels in self.label_sets]
        pairs = list(self.cooccurrence().items())[:top_pairs]
        return {
            "rows": len(self),
            "labels": len(self.classes),
            "label_counts": self.label_counts(),
            "rows_without_label": sum(size == 0 for size in sizes),
            "rows_with_several_labels": sum(size > 1 for size in sizes),
            "mean_labels_per_row": float(np.mean(sizes)) if sizes else 0.0,
            "cooccurrence": [{"labels": list(pair), "texts": n} for pair, n in pairs],
        }


def summary_lines(data: MultiLabelData, top_pairs: int = 10) -> list[str]:
    """The summary as lines for a person (card headers, logs)."""
    summary = data.summary(top_pairs)
    lines = [
        f"{summary['rows']} rows, {summary['labels']} labels, "
        f"{summary['rows_with_several_labels']} rows with two or more labels, "
        f"{summary['rows_without_label']} rows with no label, "
        f"{summary['mean_labels_per_row']:.2f} labels per row",
        "texts per label:",
        *(f"  {label}: {n}" for label, n in summary["label_counts"].items()),
    ]
    if summary["cooccurrence"]:
        lines.append("most frequent label pairs:")
        lines.extend(
            f"  {' + '.join(item['labels'])}: {item['texts']}" for item in summary["cooccurrence"]
        )
    return lines


def load_multilabel(
    path: str | Path,
    text_column: str = TEXT,
    labels_column: str = LABELS,
    delimiter: str | None = None,
    text_pair_column: str | None = None,
    encoding: str = "auto",
) -> MultiLabelData:
    """Read a data file whose `labels_column` holds a JSON list of labels per row (or, with
    `delimiter`, labels joined by it: "joy|surprise") and validate it."""
    frame, used = read_frame(path, encoding)
    return multilabel_from_frame(
        frame, text_column, labels_column, delimiter, text_pair_column, str(path), used
    )


def multilabel_from_frame(
    frame: Any,
    text_column: str = TEXT,
    labels_column: str = LABELS,
    delimiter: str | None = None,
    text_pair_column: str | None = None,
    source: str = "<DataFrame>",
    encoding: str = "utf-8",
) -> MultiLabelData:
    """Validate a DataFrame (or `datasets.Dataset`) of multi-label texts. Label lists may be
    JSON strings, delimited strings or, from JSONL and Parquet, lists."""
    if not isinstance(frame, pd.DataFrame) and hasattr(frame, "to_pandas"):
        frame = frame.to_pandas()
    if isinstance(frame, pd.DataFrame) and labels_column in frame.columns:
        # The single-label checks (texts, pair texts, columns) run with a placeholder label
        # column, so an empty label list is not reported as a missing label.
        raw_labels = frame[labels_column].reset_index(drop=True)
        frame = frame.assign(**{labels_column: "-"})
    else:
        raw_labels = None
    data = from_frame(frame, text_column, labels_column, source, encoding, text_pair_column)
    assert raw_labels is not None  # from_frame refused a frame without the column
    parsed = []
    for position, value in enumerate(raw_labels):
        try:
            parsed.append(parse_label_list(value, delimiter))
        except ValueError as exc:
            raise DataError(source, f"column '{labels_column}': {exc}", row=position + 1) from None
    out = data.frame.drop(columns=["label"])
    out.insert(1, LABELS, pd.Series(parsed, dtype=object))
    return MultiLabelData(frame=out, source=source, encoding=encoding)


def parse_label_list(value: Any, delimiter: str | None = None) -> tuple[str, ...]:
    """One row's label set, sorted and without repeats. ValueError says what is wrong."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif value is None or (isinstance(value, float) and np.isnan(value)):
        raise ValueError("missing label list (write [] for a text with no label)")
    elif delimiter is not None:
        text = str(value).strip()
        items = [part for part in (p.strip() for p in text.split(delimiter)) if part]
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("missing label list (write [] for a text with no label)")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(
                f"not a JSON list of labels: {_quote(text)} "
                '(write ["joy", "surprise"], or set the label delimiter)'
            ) from None
        if not isinstance(loaded, list):
            raise ValueError(f"not a JSON list of labels: {_quote(text)}")
        items = loaded
    labels = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"a label must be a string, got {json.dumps(item, default=str)}")
        label = _label_str(item)
        if not label:
            raise ValueError("an empty label in the list")
        labels.append(label)
    return tuple(sorted(set(labels)))


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def check_test_labels(train: MultiLabelData, test: MultiLabelData) -> None:
    """Every test label must occur in training data: a classifier cannot predict it."""
    known = set(train.classes)
    for position, labels in enumerate(test.label_sets):
        unknown = sorted(set(labels) - known)
        if unknown:
            raise DataError(
                test.source,
                f"label '{unknown[0]}' does not occur in the training data ({train.source})",
                row=position + 1,
            )
