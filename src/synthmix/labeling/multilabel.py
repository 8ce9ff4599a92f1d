"""The confidence cascade for multi-label tasks: each stage returns a label *set*.

Stages built with `multi_label=True` score every label on its own (see `stages`). Each
stage has one threshold per label; a stage decides a text when at least one label reaches
its threshold, and the text's set is every label that does. Texts with no label passing go
on to the next stage, as in the single-label cascade, so a later stage never sees what an
earlier one decided: a label only the later stage would have found is missed there (the
report's label recall on decided texts shows how much).

Calibration is the single-label machinery (`calibrate.walk`, its scorers and
`choose_threshold`) with a per-label rule: on the labeled texts reaching a stage, each
label gets the lowest threshold at which the texts scoring above it carry the label with
the target precision (Wilson lower bound by default). Reported per stage: the thresholds,
the precision of the asserted labels (micro over labels), per-label precision, and the
exact-set rate (decided texts whose set is the gold set), each with a Wilson interval.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold, MultilabelStratifiedShuffleSplit
from sklearn.model_selection import KFold

from synthmix.data.multilabel import MultiLabelData
from synthmix.labeling.calibrate import (
    CalibrationReport,
    Criterion,
    Method,
    Rule,
    Scorer,
    StageCalibration,
    StageChoice,
    _check_target,
    choose_threshold,
    examples_needed,
    gold_scorer,
    out_of_fold_scorer,
    walk,
)
from synthmix.labeling.cascade import Cascade, Fallback, StageReport
from synthmix.labeling.stages import LabelingStage
from synthmix.stats.intervals import Proportion, wilson

LabelSet = tuple[str, ...]


@dataclass
class LabelSetDecision:
    """One text's outcome: `labels` (sorted; None = no label set), each label's confidence
    from the stage that decided it, and the rows of every stage the text reached."""

    text: str
    labels: LabelSet | None
    confidence: dict[str, float]
    stage: str | None
    decided: bool
    scores: dict[str, list[float]] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "labels": None if self.labels is None else list(self.labels),
            "confidence": {k: round(v, 6) for k, v in self.confidence.items()},
            "stage": self.stage,
            "decided": self.decided,
            "scores": {k: [round(v, 6) for v in row] for k, row in self.scores.items()},
        }


def _label_counts(pairs: Sequence[tuple[LabelSet, LabelSet]]) -> tuple[int, int, int, int]:
    """(correct asserted labels, asserted labels, gold labels, exact sets)."""
    hits = sum(len(set(p) & set(g)) for p, g in pairs)
    asserted = sum(len(p) for p, _ in pairs)
    wanted = sum(len(g) for _, g in pairs)
    exact = sum(set(p) == set(g) for p, g in pairs)
    return hits, asserted, wanted, exact


@dataclass
class MultiLabelResult:
    classes: list[str]
    decisions: list[LabelSetDecision]
    stages: list[StageReport]
    fallback: StageReport
    gold: list[LabelSet] | None = None

    def _pairs(self, decided_only: bool) -> list[tuple[LabelSet, LabelSet]]:
        assert self.gold is not None
        return [
            (d.labels, tuple(g))
            for d, g in zip(self.decisions, self.gold, strict=True)
            if d.labels is not None and (d.decided or not decided_only)
        ]

    @property
    def coverage(self) -> Proportion:
        return wilson(sum(d.decided for d in self.decisions), len(self.decisions))

    def accuracy(self, decided_only: bool = True) -> Proportion | None:
        """Precision of the asserted labels (micro over labels), with gold."""
        if self.gold is None:
            return None
        hits, asserted, _, _ = _label_counts(self._pairs(decided_only))
        return wilson(hits, asserted)

    def exact_sets(self, decided_only: bool = True) -> Proportion | None:
        """Share of labelled texts whose set is exactly the gold set."""
        if self.gold is None:
            return None
        pairs = self._pairs(decided_only)
        return wilson(_label_counts(pairs)[3], len(pairs))

    def recall(self, decided_only: bool = True) -> Proportion | None:
        """Share of the gold labels of labelled texts that their sets hold."""
        if self.gold is None:
            return None
        hits, _, wanted, _ = _label_counts(self._pairs(decided_only))
        return wilson(hits, wanted)

    @property
    def label_sets(self) -> list[LabelSet | None]:
        return [d.labels for d in self.decisions]

    def summary(self) -> dict[str, Any]:
        def to_dict(p: Proportion | None) -> dict[str, Any] | None:
            return None if p is None else p.to_dict()

        return {
            "task": "multi_label",
            "texts": len(self.decisions),
            "coverage": self.coverage.to_dict(),
            "accuracy_decided": to_dict(self.accuracy(True)),
            "accuracy_all": to_dict(self.accuracy(False)),
            "exact_sets_decided": to_dict(self.exact_sets(True)),
            "label_recall_decided": to_dict(self.recall(True)),
            "labels_per_decided_text": _mean_size(self.decisions),
            "stages": [s.to_dict() for s in self.stages],
            "fallback": self.fallback.to_dict(),
        }

    def format(self) -> str:
        lines = [
            f"{len(self.decisions)} texts, coverage {self.coverage.format()}, "
            f"{_mean_size(self.decisions):.2f} labels per decided text"
        ]
        for report in [*self.stages, self.fallback]:
            line = f"  {report.name:<12} reached {report.reached}, decided {report.decided}"
            if report.accuracy is not None:
                line += f", all labels right {report.accuracy.format()}"
            lines.append(line)
        exact, recall = self.exact_sets(True), self.recall(True)
        if exact is not None and recall is not None:
            lines.append(
                f"  decided texts: exact set {exact.format()}, label recall {recall.format()}"
            )
        return "\n".join(lines)


def _mean_size(decisions: Sequence[LabelSetDecision]) -> float:
    sizes = [len(d.labels) for d in decisions if d.decided and d.labels is not None]
    return float(np.mean(sizes)) if sizes else 0.0


class MultiLabelCascade(Cascade):
    """Stages in order, with one threshold per label each (`thresholds[stage]`; a stage
    without an entry uses its own `threshold` for every label: inf until calibrated).
    `fallback="last"` gives texts no stage decided the last stage's best label
    (decided=False)."""

    def __init__(
        self,
        stages: Sequence[LabelingStage],
        fallback: Fallback = "last",
        fixed: Collection[str] = (),
        thresholds: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(stages, fallback, fixed)
        self.thresholds = {
            s.name: np.asarray(
                (thresholds or {}).get(s.name, np.full(len(self.classes), s.threshold)),
                dtype=float,
            )
            for s in self.stages
        }

    def run(self, texts: Sequence[str], gold: Sequence[str] | None = None) -> Any:
        raise TypeError("a multi-label cascade labels with run_sets (label sets, not labels)")

    def with_thresholds(self, thresholds: Sequence[np.ndarray]) -> MultiLabelCascade:
        stages = [copy.copy(s) for s in self.stages]  # loaded models are shared
        for stage, row in zip(stages, thresholds, strict=True):
            finite = row[np.isfinite(row)]
            stage.threshold = float(finite.min()) if len(finite) else math.inf
        named = {
            s.name: np.asarray(t, dtype=float) for s, t in zip(stages, thresholds, strict=True)
        }
        return MultiLabelCascade(stages, self.fallback, self.fixed, named)

    def run_sets(
        self, texts: Sequence[str], gold: Sequence[Sequence[str]] | None = None
    ) -> MultiLabelResult:
        """Label `texts` with label sets; with `gold` sets (never shown to the stages) the
        reports count correct labels."""
        if gold is not None and len(gold) != len(texts):
            raise ValueError("gold label sets and texts differ in length")
        gold_sets = None if gold is None else [tuple(sorted(g)) for g in gold]
        decisions = [LabelSetDecision(t, None, {}, None, False) for t in texts]
        pending = np.arange(len(texts))
        reports = []
        last_rows = np.zeros((len(texts), len(self.classes)))
        for stage in self.stages:
            thresholds = self.thresholds[stage.name]
            report = StageReport(stage.name, stage.threshold, reached=len(pending))
            rows = (
                stage.score([texts[int(i)] for i in pending])
                if len(pending)
                else np.zeros((0, len(self.classes)))
            )
            passing = rows >= thresholds
            decided_mask = passing.any(axis=1)
            for index, row, chosen in zip(pending, rows, passing, strict=True):
                decision = decisions[int(index)]
                decision.scores[stage.name] = [float(v) for v in row]
                last_rows[index] = row
                if chosen.any():
                    names = [self.classes[c] for c in np.flatnonzero(chosen)]
                    decision.labels = tuple(sorted(names))
                    decision.confidence = {
                        self.classes[c]: float(row[c]) for c in np.flatnonzero(chosen)
                    }
                    decision.stage, decision.decided = stage.name, True
            report.decided = int(decided_mask.sum())
            report.correct = _correct(decisions, pending[decided_mask], gold_sets)
            reports.append(report)
            pending = pending[~decided_mask]
        fallback = StageReport(f"fallback:{self.fallback}", float("nan"), reached=len(pending))
        for index in pending:
            row = last_rows[index]
            best = int(np.argmax(row))
            if self.fallback == "last" and row.any():
                decision = decisions[int(index)]
                decision.labels = (self.classes[best],)
                decision.confidence = {self.classes[best]: float(row[best])}
                decision.stage = self.stages[-1].name
        guessed = np.asarray([i for i in pending if decisions[int(i)].labels is not None], int)
        fallback.decided = len(guessed)
        fallback.correct = _correct(decisions, guessed, gold_sets)
        return MultiLabelResult(self.classes, decisions, reports, fallback, gold_sets)


def _correct(
    decisions: list[LabelSetDecision], indices: np.ndarray, gold: list[LabelSet] | None
) -> int | None:
    """Texts all of whose asserted labels are right (a stage report counts texts; the
    label-level precision is `MultiLabelResult.accuracy`)."""
    if gold is None:
        return None
    return int(
        sum(
            len(set(decisions[int(i)].labels or ()) & set(gold[int(i)]))
            == len(decisions[int(i)].labels or ())
            for i in indices
        )
    )


# ---------------------------------------------------------------------------- calibration


@dataclass
class LabelSetCalibration(StageCalibration):
    """A multi-label stage's calibration: `threshold` is the lowest of its label
    thresholds (inf when no label may be decided), `precision` that of the labels it
    asserts; `decided_texts`, per-label thresholds and precision, and the exact-set rate."""

    thresholds: dict[str, float] = field(default_factory=dict)
    per_label: dict[str, Proportion] = field(default_factory=dict)
    decided_texts: int = 0
    exact_sets: Proportion = field(default_factory=lambda: wilson(0, 0))

    @property
    def coverage(self) -> Proportion:
        return wilson(self.decided_texts, self.reached)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "decided_texts": self.decided_texts,
            "exact_sets": self.exact_sets.to_dict(),
            "thresholds": {
                k: (v if math.isfinite(v) else None) for k, v in self.thresholds.items()
            },
            "per_label_precision": {k: p.to_dict() for k, p in self.per_label.items()},
        }

    def line(self) -> str:
        open_labels = [k for k, v in self.thresholds.items() if math.isfinite(v)]
        note = "" if self.calibrated else " (fixed by you, uncalibrated)"
        shown = ", ".join(f"{k} {self.thresholds[k]:.3f}" for k in open_labels[:6])
        more = f" and {len(open_labels) - 6} more" if len(open_labels) > 6 else ""
        which = f"{len(open_labels)} of {len(self.thresholds)} labels{note}"
        return (
            f"  {self.name:<12} {which}"
            + (f" ({shown}{more})" if open_labels else "")
            + f": label precision {self.precision.format()}, exact set "
            f"{self.exact_sets.format()}, coverage {self.coverage.format()}"
        )


def multilabel_rule(
    classes: Sequence[str],
    gold: np.ndarray,
    target: float,
    criterion: Criterion,
    min_decided: int,
) -> Rule:
    """`gold`: the 0/1 matrix texts x classes. Each label's threshold by `choose_threshold`
    on that label's column (a fixed stage keeps its one threshold for every label)."""

    def rule(
        stage: LabelingStage, rows: np.ndarray, positions: np.ndarray, fixed: bool
    ) -> StageChoice:
        truth = gold[positions].astype(bool)
        thresholds = np.full(len(classes), math.inf)
        per_label: dict[str, Proportion] = {}
        for c, label in enumerate(classes):
            if fixed:
                thresholds[c] = stage.threshold
                mask = rows[:, c] >= stage.threshold
                per_label[label] = wilson(int(truth[mask, c].sum()), int(mask.sum()))
            else:
                thresholds[c], per_label[label] = choose_threshold(
                    rows[:, c], truth[:, c], target, criterion, min_decided
                )
        passing = rows >= thresholds
        decided = np.asarray(passing.any(axis=1), dtype=bool)
        hits, asserted = int((passing & truth).sum()), int(passing.sum())
        exact = int((passing[decided] == truth[decided]).all(axis=1).sum())
        finite = thresholds[np.isfinite(thresholds)]
        calibration = LabelSetCalibration(
            stage.name,
            float(finite.min()) if len(finite) else math.inf,
            len(rows),
            wilson(hits, asserted),
            not fixed,
            thresholds={label: float(t) for label, t in zip(classes, thresholds, strict=True)},
            per_label=per_label,
            decided_texts=int(decided.sum()),
            exact_sets=wilson(exact, int(decided.sum())),
        )
        # The fallback guess is the best label: right when the text carries it.
        left = ~decided & (rows.max(axis=1, initial=0.0) > 0)
        best = rows.argmax(axis=1) if rows.shape[1] else np.zeros(len(rows), int)
        guesses = truth[np.arange(len(rows)), best][left] if len(rows) else np.zeros(0, bool)
        return StageChoice(thresholds, calibration, decided, hits, asserted, guesses)

    return rule


def _report(
    cascade: MultiLabelCascade,
    texts: Sequence[str],
    matrix: np.ndarray,
    scorer: Scorer,
    target: float,
    criterion: Criterion,
    min_decided: int,
    method: Method,
    check: MultiLabelData | None,
) -> CalibrationReport:
    rule = multilabel_rule(cascade.classes, matrix, target, criterion, min_decided)
    walked = walk(cascade.stages, len(texts), len(cascade.classes), scorer, rule, cascade.fixed)
    calibrated = cascade.with_thresholds(walked.thresholds)
    holdout = None if check is None else calibrated.run_sets(check.texts, check.label_sets)
    return CalibrationReport(
        target,
        criterion,
        walked.stages,
        calibrated,
        holdout,
        method=method,
        examples=len(texts),
        decided=walked.decided,
        fallback=walked.fallback,
        needed=examples_needed(target, criterion, min_decided),
    )


def calibrate_multilabel(
    cascade: MultiLabelCascade,
    gold: MultiLabelData,
    target_precision: float = 0.9,
    holdout: float = 0.3,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
    seed: int = 0,
) -> CalibrationReport:
    """Per-label thresholds on a (1 - holdout) part of `gold` drawn by iterative
    stratification (each label's share kept), checked on the rest."""
    _check_target(target_precision)
    fit, check = gold, None
    if holdout > 0 and len(gold) >= 4:
        splitter = MultilabelStratifiedShuffleSplit(
            n_splits=1, test_size=holdout, random_state=seed
        )
        matrix = gold.indicator(cascade.classes)
        fit_rows, check_rows = next(splitter.split(np.zeros(len(gold)), matrix))
        fit, check = gold.subset(np.sort(fit_rows)), gold.subset(np.sort(check_rows))
    return _report(
        cascade,
        fit.texts,
        fit.indicator(cascade.classes),
        gold_scorer(fit.texts),
        target_precision,
        criterion,
        min_decided,
        "gold",
        check,
    )


def multilabel_fold_ids(matrix: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each text by iterative stratification (plain shuffled folds where a text
    count is below the folds)."""
    n = len(matrix)
    ids = np.zeros(n, dtype=int)
    if n < 2:
        return ids
    splitter: Any = (
        MultilabelStratifiedKFold(folds, shuffle=True, random_state=seed)
        if n >= folds
        else KFold(n, shuffle=True, random_state=seed)
    )
    for fold, (_, part) in enumerate(splitter.split(np.zeros(n), matrix)):
        ids[part] = fold
    return ids


def cross_validate_multilabel(
    cascade: MultiLabelCascade,
    examples: MultiLabelData,
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
    folds: int = 5,
    max_examples: int = 600,
    seed: int = 0,
) -> CalibrationReport:
    """Per-label thresholds from out-of-fold scores of the stages' own labeled examples
    (a seeded sample of `max_examples` where there are more)."""
    _check_target(target_precision)
    if len(examples) > max_examples:
        rng = np.random.default_rng(seed)
        examples = examples.subset(np.sort(rng.choice(len(examples), max_examples, False)))
    matrix = examples.indicator(cascade.classes)
    fold = multilabel_fold_ids(matrix, folds, seed)
    scorer = out_of_fold_scorer(examples.texts, fold, len(cascade.classes), seed)
    return _report(
        cascade,
        examples.texts,
        matrix,
        scorer,
        target_precision,
        criterion,
        min_decided,
        "cross-validation",
        None,
    )


# ---------------------------------------------------------------------------- files


def write_labels(result: MultiLabelResult, out: str | Path) -> tuple[int, int]:
    """The decided texts to `out` (JSONL, one `labels` list a row: the multi-label source
    format an experiment reads; `row` is the input row), the rest with every stage's
    scores, and a fallback guess if any, to the review file. Returns (labelled, review).

    Fallback guesses stay out of `out`: they are below the calibrated precision, and a
    multi-label source would use every row it holds."""
    from synthmix.labeling.run import review_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    labelled = review = 0
    classes = result.classes
    with (
        out.open("w", encoding="utf-8") as labels,
        review_path(out).open("w", encoding="utf-8") as rest,
    ):
        for row, decision in enumerate(result.decisions, 1):
            if decision.decided:
                labelled += 1
                labels.write(_line({"row": row, **decision.to_dict()}))
                continue
            review += 1
            stages = {
                stage: {"scores": {c: round(v, 6) for c, v in zip(classes, scores, strict=True)}}
                for stage, scores in decision.scores.items()
            }
            guess = None if decision.labels is None else list(decision.labels)
            record = {"row": row, "text": decision.text, "guess": guess, "stages": stages}
            rest.write(_line(record))
    return labelled, review


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
