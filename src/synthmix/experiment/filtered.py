"""A file source judged inside each cell: a classifier filter and cleanlab's label issues,
fitted on the real texts the cell may see.

A filter fitted once on the whole training set would carry the other 90% of the real data
into a "10% real" cell: its choice of which synthetic texts to keep is information from
texts that cell may not train on. So, like the rule-based source (sources.DerivedSource),
the judged source is a `SyntheticDeriver`: `compose` hands it the cell's real sample (all
real data for synthetic-only cells) and it returns the source's texts that a classifier
fitted on that sample confirms, without the ones cleanlab flags in the union of that
sample and the source. Cells sharing a real sample and seed share one judgement.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthmix.core.errors import ConfigError, DataError
from synthmix.data.labeled import LabeledData
from synthmix.experiment.sources import SourceConfig
from synthmix.generation.classifier_filter import (
    ClassifierFilterConfig,
    ClassifierJudge,
    FilterCounts,
    filter_config,
)
from synthmix.labeling.issues import SYNTHETIC, IssueConfig, find_label_issues

log = logging.getLogger("synthmix")


@dataclass(frozen=True)
class _Judged:
    keep: np.ndarray
    report: dict[str, Any]


class JudgedSource:
    """`data` (a file source), reduced per cell to what the judges keep."""

    def __init__(
        self,
        name: str,
        data: LabeledData,
        classifier: ClassifierFilterConfig | None = None,
        drop_label_issues: bool = False,
    ) -> None:
        self.name = name
        self.data = data
        self.classifier = classifier
        self.drop_label_issues = drop_label_issues
        self._judged: dict[tuple[str, int], _Judged] = {}
        if classifier is not None:
            classifier.check(f"source {name!r}")

    def settings(self) -> dict[str, Any]:
        """What the run records: the rules, not the per-cell outcomes."""
        return {
            "filter": self.classifier.to_dict() if self.classifier is not None else None,
            "drop_label_issues": self.drop_label_issues,
        }

    def __call__(self, visible: LabeledData, per_class: Any, seed: int) -> LabeledData:
        """The source's texts the judges fitted on `visible` keep (all classes: `compose`
        samples per class from them, recording any shortfall)."""
        return self.data.subset(np.flatnonzero(self._judge(visible, seed).keep))

    def drops(self, visible: LabeledData, seed: int) -> dict[str, Any]:
        """What the judges of this cell dropped, per class (for the cell's record)."""
        return self._judge(visible, seed).report

    def _judge(self, visible: LabeledData, seed: int) -> _Judged:
        key = (_digest(visible), seed)
        judged = self._judged.get(key)
        if judged is None:
            judged = self._judged[key] = self._run(visible, seed)
        return judged

    def _run(self, visible: LabeledData, seed: int) -> _Judged:
        keep = np.ones(len(self.data), dtype=bool)
        report: dict[str, Any] = {"texts": len(self.data)}
        if self.classifier is not None:
            judge = ClassifierJudge.fit(self.classifier, visible, seed)
            judgement = judge.judge(self.data.texts, self.data.labels)
            counts = FilterCounts()
            counts.add(self.data.labels, judgement)
            keep &= judgement.keep
            report["classifier"] = {"rule": self.classifier.rule, **counts.to_dict()}
        if self.drop_label_issues:
            rest = self.data.subset(np.flatnonzero(keep))
            try:
                issues = find_label_issues(visible, rest, IssueConfig(seed=seed))
            except DataError as exc:
                # A class with one text in this cell has no out-of-fold probability; the
                # cell keeps its texts rather than the whole grid stopping.
                log.warning("source %r: label issues skipped in a cell: %s", self.name, exc)
                report["label_issues"] = {"dropped": {}, "skipped": exc.problem}
                return self._finish(keep, report)
            flagged = np.flatnonzero(keep)[issues.flagged_rows(SYNTHETIC)]
            keep[flagged] = False
            counts_by_origin = issues.counts()
            report["label_issues"] = {
                "dropped": counts_by_origin.get(SYNTHETIC, {}).get("by_label", {}),
                # Flagged real texts stay in the cell: they are for a human to look at.
                "real_flagged": counts_by_origin.get("real", {}).get("flagged", 0),
            }
        return self._finish(keep, report)

    def _finish(self, keep: np.ndarray, report: dict[str, Any]) -> _Judged:
        labels = np.asarray(self.data.labels, dtype=object)
        dropped = labels[~keep]
        report["dropped"] = {str(c): int((dropped == c).sum()) for c in sorted(set(dropped))}
        report["kept"] = int(keep.sum())
        return _Judged(keep, report)


def _digest(data: LabeledData) -> str:
    digest = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def source_base_name(config: SourceConfig) -> str:
    if config.name or config.path:
        return config.name or Path(str(config.path)).stem
    return "tuned" if config.tune is not None else "eda"


def judged_sources(
    configs: list[SourceConfig], files: dict[str, LabeledData]
) -> dict[str, LabeledData | JudgedSource]:
    """File sources with a `filter` or `drop_label_issues` wrapped in a JudgedSource (each
    part of a split file judged alone); the rest as they are."""
    judged: dict[str, LabeledData | JudgedSource] = dict(files)
    for config in configs:
        if config.filter is None and not config.drop_label_issues:
            continue
        base = source_base_name(config)
        if config.augment is not None or config.tune is not None:
            raise ConfigError(
                f"source {base!r}: 'filter' and 'drop_label_issues' apply to file sources"
            )
        classifier = filter_config(config.filter) if config.filter is not None else None
        for name, data in files.items():
            if name == base or name.startswith(f"{base}:"):
                judged[name] = JudgedSource(name, data, classifier, config.drop_label_issues)
    return judged
