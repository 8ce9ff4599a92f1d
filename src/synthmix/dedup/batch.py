"""Batch use: deduplicate a whole LabeledData at once, with the removed rows and their reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthmix.data.labeled import LabeledData
from synthmix.dedup.base import EXAMPLES, DedupStage, StageResult
from synthmix.dedup.config import DedupConfig, build_stages, texts_of
from synthmix.dedup.leak import RealLeakCheck
from synthmix.dedup.resolve import resolve

_REMOVED_COLUMNS = ("stage", "duplicate_of", "duplicate_label", "score")


@dataclass
class DedupResult:
    """Kept rows, per-stage counts and examples, and the removed rows with their reasons."""

    data: LabeledData
    removed: pd.DataFrame  # the removed rows plus stage, duplicate_of, score, label_of_match
    stages: list[StageResult]
    total: int
    across_labels: bool
    contradictions: int  # removed texts whose match carries another label

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": len(self.data),
            "removed": self.total - len(self.data),
            "across_labels": self.across_labels,
            "contradictions": self.contradictions,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    def summary(self) -> str:
        scope = "across labels" if self.across_labels else "within each label"
        lines = [
            f"dedup ({scope}): {self.total} texts in, {len(self.data)} kept, "
            f"{self.total - len(self.data)} removed"
        ]
        for stage in self.stages:
            verb = f"removed {stage.removed}" if stage.removed or stage.flagged == 0 else ""
            extra = f"flagged {stage.flagged}" if stage.flagged != stage.removed else ""
            counts = ", ".join(part for part in (verb, extra) if part)
            lines.append(f"  {stage.name}: {counts} of {stage.checked}")
            for dup in stage.duplicates[:EXAMPLES]:
                lines.append(
                    f"    {_clip(dup.text)!r} ~ {_clip(dup.match.text)!r} ({dup.match.score:.2f})"
                )
        if self.contradictions:
            lines.append(
                f"  {self.contradictions} removed texts duplicate a kept text with another "
                "label (contradictions; the first label was kept)"
            )
        return "\n".join(lines)


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Deduplicator:
    """Runs stages over LabeledData: across all labels (a text repeated under another label
    is a contradiction: the first is kept and the case counted) or within each label."""

    def __init__(self, stages: Sequence[DedupStage], across_labels: bool = True) -> None:
        self.stages = list(stages)
        self.across_labels = across_labels

    def run(self, data: LabeledData) -> DedupResult:
        texts = data.texts
        labels = np.asarray(data.labels, dtype=object)
        groups = [np.ones(len(texts), dtype=bool)]
        if not self.across_labels:
            groups = [labels == label for label in data.classes]
        parts = [resolve(self.stages, texts, group) for group in groups]
        keep = np.logical_or.reduce([part[0] for part in parts])
        stages = [_merge([part[1][n] for part in parts]) for n in range(len(self.stages))]
        return DedupResult(
            data=data.subset(np.flatnonzero(keep)),
            removed=_removed_frame(data, stages, labels),
            stages=stages,
            total=len(texts),
            across_labels=self.across_labels,
            contradictions=_contradictions(stages, labels),
        )


def _merge(results: list[StageResult]) -> StageResult:
    if len(results) == 1:
        return results[0]
    duplicates = sorted((d for r in results for d in r.duplicates), key=lambda d: d.position)
    return StageResult(
        name=results[0].name,
        checked=sum(r.checked for r in results),
        removed=sum(r.removed for r in results),
        flagged=sum(r.flagged for r in results),
        duplicates=duplicates,
        keep=np.logical_or.reduce([r.keep for r in results]),
    )


def _contradictions(stages: list[StageResult], labels: np.ndarray) -> int:
    return sum(
        1
        for stage in stages
        for d in stage.duplicates
        if d.match.position is not None and labels[d.match.position] != labels[d.position]
    )


def _removed_frame(
    data: LabeledData, stages: list[StageResult], labels: np.ndarray
) -> pd.DataFrame:
    rows: dict[int, dict[str, Any]] = {}
    for stage in stages:
        for d in stage.duplicates:
            if d.position in rows or stage.keep[d.position]:
                continue  # a flag-only stage does not remove
            rows[d.position] = {
                "stage": stage.name,
                "duplicate_of": d.match.text,
                "duplicate_label": None if d.match.position is None else labels[d.match.position],
                "score": d.match.score,
            }
    positions = sorted(rows)
    frame = data.frame.iloc[positions].reset_index(drop=True)
    extra = pd.DataFrame([rows[p] for p in positions], columns=list(_REMOVED_COLUMNS))
    return pd.concat([frame, extra], axis=1)


def deduplicate(
    data: LabeledData,
    stages: Sequence[DedupStage] | None = None,
    real: LabeledData | Sequence[str] | None = None,
    across_labels: bool = True,
) -> DedupResult:
    """Deduplicate `data` with `stages` (default: build_stages(DedupConfig(), real)). Given
    `real` and stages without a RealLeakCheck, a default leak check runs first."""
    if stages is None:
        stages = build_stages(DedupConfig(across_labels=across_labels), real)
    elif real is not None and not any(isinstance(s, RealLeakCheck) for s in stages):
        stages = [RealLeakCheck(texts_of(real)), *stages]
    return Deduplicator(stages, across_labels=across_labels).run(data)
