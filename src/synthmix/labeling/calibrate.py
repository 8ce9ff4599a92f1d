"""Threshold calibration: per stage, the lowest threshold whose precision is high enough.

Stages are calibrated in cascade order on the gold texts that reach them (those the
calibrated earlier stages left undecided), because that is the population a stage will
see in use. Among thresholds meeting the precision target the lowest is taken: it
decides the most texts. Two criteria:

- "wilson" (default): the Wilson 95% lower bound of the precision must reach the target.
  Conservative: with few gold texts nothing qualifies and the stage decides nothing
  (threshold = inf) rather than trusting 5/5 correct.
- "point": the observed precision must reach the target, on at least `min_decided`
  texts. Decides more; the held-out check then shows how far off it is.

`calibrate` keeps a stratified held-out part of the gold set out of the choice and runs
the calibrated cascade on it, so the reported precision is not the one that was tuned.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthmix.data.labeled import LabeledData, split_train_test
from synthmix.labeling.cascade import Cascade, CascadeResult
from synthmix.stats.intervals import Proportion, wilson

Criterion = Literal["wilson", "point"]


@dataclass
class StageCalibration:
    name: str
    threshold: float  # inf: no threshold met the target; the stage decides nothing
    reached: int
    precision: Proportion  # on the calibration texts it decides at `threshold`

    @property
    def coverage(self) -> Proportion:
        return wilson(self.precision.n, self.reached)

    @property
    def achieved(self) -> bool:
        return math.isfinite(self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold if self.achieved else None,
            "reached": self.reached,
            "precision": self.precision.to_dict(),
            "coverage": self.coverage.to_dict(),
        }


@dataclass
class CalibrationReport:
    target_precision: float
    criterion: Criterion
    stages: list[StageCalibration]
    cascade: Cascade  # a copy of the input cascade with the calibrated thresholds
    holdout: CascadeResult | None  # the calibrated cascade run on the held-out gold

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_precision": self.target_precision,
            "criterion": self.criterion,
            "calibration": [s.to_dict() for s in self.stages],
            "holdout": None if self.holdout is None else self.holdout.summary(),
        }

    def format(self) -> str:
        lines = [f"target precision {self.target_precision} ({self.criterion})"]
        for s in self.stages:
            threshold = f"{s.threshold:.3f}" if s.achieved else "never"
            lines.append(
                f"  {s.name:<12} threshold {threshold}: precision {s.precision.format()}, "
                f"coverage {s.coverage.format()}"
            )
        if self.holdout is not None:
            lines.append("held-out check:")
            lines.append(self.holdout.format())
        return "\n".join(lines)


def choose_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    target: float,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
) -> tuple[float, Proportion]:
    """Lowest positive threshold t whose decisions (confidence >= t) meet the target;
    (inf, 0/0) when none does. A threshold of 0 is never chosen: it would "decide" texts
    the stage has no evidence for."""
    order = np.argsort(-confidence, kind="stable")
    conf_sorted = confidence[order]
    hits = np.cumsum(correct[order].astype(int))
    best: tuple[float, Proportion] = (math.inf, wilson(0, 0))
    for position, value in enumerate(conf_sorted):
        last_tie = position + 1 == len(conf_sorted) or conf_sorted[position + 1] < value
        if value <= 0 or not last_tie:
            continue  # ties decide together: evaluate a threshold after its last tie
        n = position + 1
        proportion = wilson(int(hits[position]), n)
        if _meets(proportion, target, criterion, min_decided):
            best = (float(value), proportion)
    return best


def _meets(p: Proportion, target: float, criterion: Criterion, min_decided: int) -> bool:
    if criterion == "wilson":
        return p.low >= target
    return p.n >= min_decided and p.value >= target


def calibrate_on(
    cascade: Cascade,
    texts: Sequence[str],
    gold: Sequence[str],
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
) -> tuple[Cascade, list[StageCalibration]]:
    """Calibrate every stage on all of `texts` (no held-out part); returns a new cascade
    (stage copies, so the input keeps its thresholds; loaded models are shared)."""
    stages = [copy.copy(s) for s in cascade.stages]
    gold_array = np.asarray(gold)
    pending = np.arange(len(texts))
    reports = []
    for stage in stages:
        if not len(pending):
            # Nothing reaches the stage: no evidence to move its threshold either way.
            reports.append(StageCalibration(stage.name, stage.threshold, 0, wilson(0, 0)))
            continue
        rows = stage.score([texts[int(i)] for i in pending])
        confidence = rows.max(axis=1)
        predicted = np.asarray(cascade.classes)[rows.argmax(axis=1)]
        correct = predicted == gold_array[pending]
        threshold, precision = choose_threshold(
            confidence, correct, target_precision, criterion, min_decided
        )
        stage.threshold = threshold
        reports.append(StageCalibration(stage.name, threshold, len(pending), precision))
        pending = pending[~(confidence >= threshold)]
    return Cascade(stages, fallback=cascade.fallback), reports


def calibrate(
    cascade: Cascade,
    gold: LabeledData,
    target_precision: float = 0.9,
    holdout: float = 0.3,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
    seed: int = 0,
) -> CalibrationReport:
    """Calibrate on a stratified (1 - holdout) part of `gold`, check on the rest.
    `holdout=0` calibrates on everything and reports no check."""
    if not 0 < target_precision <= 1:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    if holdout > 0:
        fit, check = split_train_test(gold, holdout, seed)
    else:
        fit, check = gold, None
    calibrated, reports = calibrate_on(
        cascade, fit.texts, fit.labels, target_precision, criterion, min_decided
    )
    result = None if check is None else calibrated.run(check.texts, gold=check.labels)
    return CalibrationReport(target_precision, criterion, reports, calibrated, result)
