"""The results store of an experiment run, and per-cell summaries over seeds.

A run directory (`RunDir`) holds `run.json` (the resolved config, data fingerprints, package
versions) and `results.jsonl`, one line per finished (cell, seed, classifier) fit, appended and
fsynced as soon as it finishes. A killed run leaves at most a torn last line, which is ignored;
rerunning skips every fit already present.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.experiment.run_dir import RunDir
from synthmix.stats.classification import mean_ci

SUMMARY_METRICS = ("f1_macro", "f1_weighted", "accuracy")


class ResultsStore:
    def __init__(self, run_dir: str | Path | RunDir) -> None:
        self.path = RunDir.of(run_dir).results_file

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a kill mid-write; that cell simply reruns
        return records

    def finished_keys(self) -> set[str]:
        """`fit_key` of every finished fit. Derived from the record's fields rather than its
        stored key, so records written before runs compared classifiers (whose key has no
        classifier part) still count as done."""
        return {
            fit_key(record["cell_key"], record["seed"], record_classifier(record))
            for record in self.records()
        }

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            if handle.tell() > 0 and not self._ends_with_newline():
                handle.write("\n")  # isolate a torn line left by a previous kill
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"


def fit_key(cell_key: str, seed: int, classifier: str) -> str:
    """The identity of one fit: which cell, which seed, which classifier (by label)."""
    return f"{cell_key}|seed={seed}|classifier={classifier}"


def encode_predictions(predictions: Sequence[str], classes: Sequence[str]) -> list[int]:
    """A fit's test predictions as indices into `classes` (the record's `metrics.classes`):
    compact enough to keep for every fit."""
    index = {label: i for i, label in enumerate(classes)}
    return [index[label] for label in predictions]


def record_predictions(record: dict[str, Any]) -> list[str] | None:
    """The test predictions stored in a record, as labels; None for records written before
    predictions were kept."""
    stored = record.get("predictions")
    classes = record.get("metrics", {}).get("classes")
    if not isinstance(stored, list) or not isinstance(classes, list):
        return None
    return [classes[i] for i in stored]


def record_classifier(record: dict[str, Any]) -> str:
    """The label of the classifier a record was fitted with. Records from before classifiers
    had labels name only the classifier, which was then also its label."""
    classifier = record.get("classifier")
    if not isinstance(classifier, dict):
        return ""
    return str(classifier.get("label") or classifier.get("name") or "")


def classifier_labels(info: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Every classifier of a run, the primary one first: the order of run.json's
    `classifiers` (the current config's order), then any others found in the results."""
    labels: list[str] = []
    listed = info.get("classifiers")
    if isinstance(listed, list):
        labels.extend(str(c["label"]) for c in listed if isinstance(c, dict) and "label" in c)
    elif isinstance(info.get("classifier"), dict):
        labels.append(str(info["classifier"].get("name", "")))
    present = list(dict.fromkeys(record_classifier(record) for record in records))
    ordered = [label for label in labels if label in present]
    return ordered + [label for label in present if label not in ordered]


def summarize(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (classifier, cell): mean and 95% CI over seeds of F1-macro, weighted F1 and
    accuracy (columns `<metric>`, `<metric>_low`, `<metric>_high`), plus mean per-class F1
    (columns `f1[<class>]`), the number of seeds, the classifier's label (`classifier`) and its
    mean fit time in seconds (`fit_s`)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record_classifier(record), record["cell_key"]].append(record)
    rows = []
    for (classifier, cell_key), group in groups.items():
        cell = group[0]["cell"]
        row: dict[str, Any] = {
            "classifier": classifier,
            "cell_key": cell_key,
            "plan": cell["plan"],
            "source": cell["source"],
            "real_fraction": cell["real_fraction"],
            "synthetic_ratio": cell["synthetic_ratio"],
            "synthetic_count": cell.get("synthetic_count", 0),
            "title": cell["title"],
            "seeds": len(group),
            "train_size": sum(r["train_size"] for r in group) / len(group),
            "shortfall": max(sum(r["shortfall"].values()) for r in group),
            "fit_s": sum(r.get("timings", {}).get("fit_s", 0.0) for r in group) / len(group),
        }
        for metric in SUMMARY_METRICS:
            estimate = mean_ci([r["metrics"][metric] for r in group])
            row[metric] = estimate.mean
            row[f"{metric}_low"] = estimate.low
            row[f"{metric}_high"] = estimate.high
        for label in group[0]["metrics"]["classes"]:
            row[f"f1[{label}]"] = sum(r["metrics"]["per_class"][label]["f1"] for r in group) / len(
                group
            )
        rows.append(row)
    return pd.DataFrame(rows)
