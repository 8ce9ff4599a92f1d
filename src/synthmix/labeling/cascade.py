"""The confidence cascade: cheap stages decide what they are sure of, the rest moves on.

Like a datatrove pipeline of steps, each stage sees only the texts no earlier stage
decided and counts what it decided itself; an expensive stage (an LLM) is asked only
about what the cheap ones (keywords, embeddings) could not settle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from synthmix.labeling.stages import LabelingStage
from synthmix.stats.intervals import Proportion, wilson

Fallback = Literal["last", "none"]


@dataclass
class StageReport:
    """What one stage did: texts that reached it, texts it decided and, with gold
    labels, how many of those it got right."""

    name: str
    threshold: float
    reached: int = 0
    decided: int = 0
    correct: int | None = None

    @property
    def coverage(self) -> Proportion:
        """Share of the texts reaching the stage that it decided."""
        return wilson(self.decided, self.reached)

    @property
    def accuracy(self) -> Proportion | None:
        """Precision of the stage's decisions (accuracy on the texts it decided)."""
        return None if self.correct is None else wilson(self.correct, self.decided)

    def to_dict(self) -> dict[str, Any]:
        accuracy = self.accuracy
        return {
            "name": self.name,
            # None for "never decides" (inf) and the fallback (nan): JSON has neither.
            "threshold": self.threshold if math.isfinite(self.threshold) else None,
            "reached": self.reached,
            "decided": self.decided,
            "coverage": self.coverage.to_dict(),
            "accuracy": None if accuracy is None else accuracy.to_dict(),
        }


@dataclass
class LabelDecision:
    """One text's outcome; `scores` holds the rows of every stage the text reached."""

    text: str
    label: str | None
    confidence: float
    stage: str | None
    decided: bool
    scores: dict[str, list[float]] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.label is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "stage": self.stage,
            "decided": self.decided,
            "scores": {k: [round(v, 6) for v in row] for k, row in self.scores.items()},
        }


@dataclass
class CascadeResult:
    classes: list[str]
    decisions: list[LabelDecision]
    stages: list[StageReport]
    fallback: StageReport  # texts no stage decided, labelled by the fallback
    gold: list[str] | None = None

    @property
    def coverage(self) -> Proportion:
        return wilson(sum(d.decided for d in self.decisions), len(self.decisions))

    def accuracy(self, decided_only: bool = True) -> Proportion | None:
        if self.gold is None:
            return None
        pairs = [
            (d.label, g)
            for d, g in zip(self.decisions, self.gold, strict=True)
            if d.decided or not decided_only
        ]
        return wilson(sum(p == g for p, g in pairs), len(pairs))

    @property
    def labels(self) -> list[str | None]:
        return [d.label for d in self.decisions]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([d.to_dict() for d in self.decisions])

    def summary(self) -> dict[str, Any]:
        decided_acc = self.accuracy(decided_only=True)
        all_acc = self.accuracy(decided_only=False)
        return {
            "texts": len(self.decisions),
            "coverage": self.coverage.to_dict(),
            "accuracy_decided": None if decided_acc is None else decided_acc.to_dict(),
            "accuracy_all": None if all_acc is None else all_acc.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "fallback": self.fallback.to_dict(),
        }

    def format(self) -> str:
        lines = [f"{len(self.decisions)} texts, coverage {self.coverage.format()}"]
        for report in [*self.stages, self.fallback]:
            threshold = "never" if math.isinf(report.threshold) else f"{report.threshold:.3f}"
            line = (
                f"  {report.name:<12} threshold {threshold}: reached {report.reached}, "
                f"decided {report.decided}"
            )
            if report.accuracy is not None:
                line += f", accuracy {report.accuracy.format()}"
            lines.append(line)
        return "\n".join(lines)

    def write_jsonl(self, path: str | Path) -> None:
        with Path(path).open("w", encoding="utf-8") as handle:
            for decision in self.decisions:
                handle.write(json.dumps(decision.to_dict(), ensure_ascii=False) + "\n")


class Cascade:
    """Stages in order; `fallback="last"` labels texts no stage decided with the last
    stage's argmax (decided=False), `"none"` leaves them unlabelled. `fixed` names the
    stages whose thresholds the user set: calibration keeps them (and says so)."""

    def __init__(
        self,
        stages: Sequence[LabelingStage],
        fallback: Fallback = "last",
        fixed: Collection[str] = (),
    ) -> None:
        if not stages:
            raise ValueError("a cascade needs at least one stage")
        classes = list(stages[0].classes)
        for stage in stages[1:]:
            if list(stage.classes) != classes:
                raise ValueError(f"stage {stage.name!r} has other classes than {stages[0].name!r}")
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must differ: {names}")
        if fallback not in ("last", "none"):
            raise ValueError(f"fallback must be 'last' or 'none', got {fallback!r}")
        self.stages = list(stages)
        self.classes = classes
        self.fallback: Fallback = fallback
        self.fixed = frozenset(fixed)

    def run(self, texts: Sequence[str], gold: Sequence[str] | None = None) -> CascadeResult:
        """Label `texts`; with `gold` labels (never shown to the stages) the reports count
        correct decisions."""
        if gold is not None and len(gold) != len(texts):
            raise ValueError("gold labels and texts differ in length")
        decisions = [LabelDecision(t, None, 0.0, None, False) for t in texts]
        pending = np.arange(len(texts))
        reports = []
        last_rows = np.zeros((len(texts), len(self.classes)))
        for stage in self.stages:
            report = StageReport(stage.name, stage.threshold, reached=len(pending))
            rows = (
                stage.score([texts[int(i)] for i in pending]) if len(pending) else np.zeros((0, 0))
            )
            decided_mask = np.zeros(len(pending), dtype=bool)
            for position, (index, row) in enumerate(zip(pending, rows, strict=True)):
                decisions[index].scores[stage.name] = [float(v) for v in row]
                last_rows[index] = row
                best = int(np.argmax(row))
                if float(row[best]) >= stage.threshold:
                    decided_mask[position] = True
                    self._decide(decisions[index], self.classes[best], float(row[best]), stage.name)
            report.decided = int(decided_mask.sum())
            report.correct = _count_correct(decisions, pending[decided_mask], gold)
            reports.append(report)
            pending = pending[~decided_mask]
        fallback = self._fall_back(decisions, pending, last_rows, gold)
        return CascadeResult(
            self.classes, decisions, reports, fallback, None if gold is None else list(gold)
        )

    @staticmethod
    def _decide(decision: LabelDecision, label: str, confidence: float, stage: str) -> None:
        decision.label, decision.confidence = label, confidence
        decision.stage, decision.decided = stage, True

    def _fall_back(
        self,
        decisions: list[LabelDecision],
        pending: np.ndarray,
        last_rows: np.ndarray,
        gold: Sequence[str] | None,
    ) -> StageReport:
        report = StageReport(f"fallback:{self.fallback}", float("nan"), reached=len(pending))
        for index in pending:
            row = last_rows[index]
            best = int(np.argmax(row))
            decision = decisions[index]
            decision.confidence = float(row[best])
            if self.fallback == "last" and row.any():
                decision.label, decision.stage = self.classes[best], self.stages[-1].name
        labelled = [int(i) for i in pending if decisions[i].label is not None]
        report.decided = len(labelled)
        report.correct = _count_correct(decisions, np.asarray(labelled, dtype=int), gold)
        return report


def _count_correct(
    decisions: list[LabelDecision], indices: np.ndarray, gold: Sequence[str] | None
) -> int | None:
    if gold is None:
        return None
    return int(sum(decisions[int(i)].label == gold[int(i)] for i in indices))
