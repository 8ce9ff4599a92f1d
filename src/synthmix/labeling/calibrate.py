"""Threshold calibration: per stage, the lowest threshold whose precision is high enough.

Stages are calibrated in cascade order on the labeled texts that reach them (those the
calibrated earlier stages left undecided), because that is the population a stage will
see in use. Among thresholds meeting the precision target the lowest is taken: it
decides the most texts. Two criteria:

- "wilson" (default): the Wilson 95% lower bound of the precision must reach the target.
  Conservative: with few labeled texts nothing qualifies and the stage decides nothing
  (threshold = inf) rather than trusting 5/5 correct.
- "point": the observed precision must reach the target, on at least `min_decided`
  texts. Decides more; the held-out check then shows how far off it is.

Two sources of labeled texts:

- `calibrate`: a gold set the stages never saw; a stratified part is held out of the
  choice and the calibrated cascade is run on it, so the reported precision is not the
  one that was tuned.
- `cross_validate`: the examples the stages themselves learn from (embedding
  prototypes, few-shot shots, mined keywords). Each text is scored by a copy of the stage
  that does not use the text's fold (`stage.without(texts)`), so the scores are those of
  unseen texts; the thresholds are chosen on these out-of-fold scores.

Thresholds the user fixed (`fixed`: stage names) are kept; their precision is still
estimated, and the report marks them uncalibrated.

The walk through the stages, the folds and the out-of-fold scoring are shared with the
multi-label cascade (`labeling.multilabel`), which chooses one threshold per label with
`choose_threshold` (its `Rule`), where a single-label stage chooses one for its best class.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from synthmix.data.labeled import LabeledData, split_train_test, stratified_fraction
from synthmix.labeling.cascade import Cascade
from synthmix.labeling.stages import LabelingStage
from synthmix.stats.intervals import Proportion, wilson

Criterion = Literal["wilson", "point"]
Method = Literal["gold", "cross-validation"]


@dataclass
class StageCalibration:
    name: str
    threshold: float  # inf: no threshold met the target; the stage decides nothing
    reached: int
    precision: Proportion  # on the calibration texts it decides at `threshold`
    calibrated: bool = True  # False: the user fixed the threshold; precision only estimated

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
            "calibrated": self.calibrated,
            "reached": self.reached,
            "precision": self.precision.to_dict(),
            "coverage": self.coverage.to_dict(),
        }

    def line(self) -> str:
        threshold = f"{self.threshold:.3f}" if self.achieved else "never"
        note = "" if self.calibrated else " (fixed by you, uncalibrated)"
        return (
            f"  {self.name:<12} threshold {threshold}{note}: precision "
            f"{self.precision.format()}, coverage {self.coverage.format()}"
        )


class CheckedRun(Protocol):
    """A cascade's run on held-out gold (single- or multi-label) as the report reads it."""

    def accuracy(self, decided_only: bool = True) -> Proportion | None: ...

    def summary(self) -> dict[str, Any]: ...

    def format(self) -> str: ...


@dataclass
class CalibrationReport:
    target_precision: float
    criterion: Criterion
    stages: list[StageCalibration]
    cascade: Cascade  # a copy of the input cascade with the calibrated thresholds
    holdout: CheckedRun | None  # the calibrated cascade run on the held-out gold
    method: Method = "gold"
    examples: int = 0  # labeled texts the thresholds were chosen on
    # Over all stages, on the calibration texts: the decided labels and the fallback
    # guesses (the last stage's best class for texts no stage decided).
    decided: Proportion = field(default_factory=lambda: wilson(0, 0))
    fallback: Proportion = field(default_factory=lambda: wilson(0, 0))
    needed: int = 0  # decided texts a stage needs (all correct) to show the target

    @property
    def calibrated(self) -> bool:
        return all(s.calibrated for s in self.stages)

    @property
    def estimate(self) -> Proportion:
        """Precision to expect of decided labels: the held-out check where there is one
        (not tuned on), else the calibration texts' (out-of-fold with cross-validation)."""
        if self.holdout is not None:
            checked = self.holdout.accuracy(decided_only=True)
            if checked is not None and checked.n:
                return checked
        return self.decided

    @property
    def decides_nothing(self) -> bool:
        return not any(s.achieved for s in self.stages)

    def advice(self) -> str | None:
        """One line when no stage may decide: why, and how many examples would do."""
        if not self.decides_nothing:
            return None
        fixed = [s.name for s in self.stages if not s.calibrated]
        if fixed:
            return None  # the user's own (never-deciding) thresholds: nothing to advise
        return (
            f"no stage reached precision {self.target_precision} ({self.criterion}) on "
            f"{self.examples} labeled examples, so nothing is marked decided: a stage must "
            f"decide at least {self.needed} of them (all correct) to show it. Give more "
            "labeled examples (--examples with a few hundred texts, or --calibrate gold.csv), "
            "lower --target-precision, or set thresholds in a cascade YAML (uncalibrated)."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_precision": self.target_precision,
            "criterion": self.criterion,
            "method": self.method,
            "examples": self.examples,
            "calibrated": self.calibrated,
            "calibration": [s.to_dict() for s in self.stages],
            "estimated_precision_decided": self.estimate.to_dict(),
            "estimated_precision_fallback": self.fallback.to_dict(),
            "examples_needed": self.needed,
            "holdout": None if self.holdout is None else self.holdout.summary(),
        }

    def format(self) -> str:
        basis = (
            f"{self.method} on {self.examples} labeled examples, "
            f"target precision {self.target_precision} ({self.criterion})"
        )
        lines = [f"calibration: {basis}"]
        lines += [s.line() for s in self.stages]
        if self.holdout is not None:
            lines.append("held-out check:")
            lines.append(self.holdout.format())
        advice = self.advice()
        if advice:
            lines.append(advice)
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


def examples_needed(target: float, criterion: Criterion = "wilson", min_decided: int = 5) -> int:
    """Fewest decided texts, all correct, that meet the target: 35 at 0.9 with Wilson."""
    if criterion == "point":
        return min_decided
    n = 1
    while wilson(n, n).low < target and n < 100_000:
        n += 1
    return n


# Scores of the texts (positions into the calibration set) reaching a stage: the
# positions it scored (all, or a sample) and their rows.
Scorer = Callable[[LabelingStage, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class StageChoice:
    """What a rule made of one stage on the labeled texts reaching it."""

    threshold: Any  # what the stage gets: a float, or (multi-label) one per label
    calibration: StageCalibration
    decided: np.ndarray  # per scored text: the stage decides it
    hits: int  # correct labels among those the stage asserts, over the decided texts
    asserted: int
    guesses: np.ndarray  # per text it leaves with some evidence: is the best guess right


# (stage, its rows, the positions of those rows in the gold, threshold fixed by the user)
Rule = Callable[[LabelingStage, np.ndarray, np.ndarray, bool], StageChoice]


def single_label_rule(
    classes: Sequence[str],
    gold: np.ndarray,
    target: float,
    criterion: Criterion,
    min_decided: int,
) -> Rule:
    """A stage decides a text when its best class's confidence reaches the threshold."""

    def rule(
        stage: LabelingStage, rows: np.ndarray, positions: np.ndarray, fixed: bool
    ) -> StageChoice:
        confidence = rows.max(axis=1) if rows.shape[1] else np.zeros(len(rows))
        correct = np.asarray(classes)[rows.argmax(axis=1)] == gold[positions]
        if fixed:
            threshold = stage.threshold
            mask = confidence >= threshold
            precision = wilson(int(correct[mask].sum()), int(mask.sum()))
        else:
            threshold, precision = choose_threshold(
                confidence, correct, target, criterion, min_decided
            )
        calibration = StageCalibration(stage.name, threshold, len(rows), precision, not fixed)
        decided = confidence >= threshold
        # A fallback guess needs some evidence: an all-zero row gives no label.
        guesses = correct[~decided & (confidence > 0)]
        return StageChoice(threshold, calibration, decided, precision.k, precision.n, guesses)

    return rule


@dataclass
class _Walk:
    thresholds: list[Any]
    stages: list[StageCalibration]
    decided: Proportion
    fallback: Proportion


def walk(
    stages: Sequence[LabelingStage],
    n_texts: int,
    width: int,
    scorer: Scorer,
    rule: Rule,
    fixed: Collection[str],
) -> _Walk:
    """The cascade on `n_texts` labeled texts, stage by stage: `rule` chooses (or keeps, if
    fixed) each threshold on the texts reaching the stage; counts what the decided labels
    and the fallback guesses get right. `width`: classes per row."""
    pending = np.arange(n_texts)
    thresholds, reports = [], []
    hits = asserted = 0
    guesses = np.zeros(0, dtype=bool)
    for stage in stages:
        if not len(pending):
            # Nothing reaches the stage: no evidence to move its threshold either way.
            choice = rule(stage, np.zeros((0, width)), pending, stage.name in fixed)
        else:
            # Texts a stage did not score (a sample) count nowhere from here on.
            pending, rows = scorer(stage, pending)
            choice = rule(stage, rows, pending, stage.name in fixed)
        thresholds.append(choice.threshold)
        reports.append(choice.calibration)
        hits, asserted = hits + choice.hits, asserted + choice.asserted
        guesses = choice.guesses
        pending = pending[~choice.decided]
    fallback = wilson(int(guesses.sum()), len(guesses))
    return _Walk(thresholds, reports, wilson(hits, asserted), fallback)


def _with_thresholds(cascade: Cascade, thresholds: Sequence[float]) -> Cascade:
    stages = [copy.copy(s) for s in cascade.stages]  # loaded models are shared
    for stage, threshold in zip(stages, thresholds, strict=True):
        stage.threshold = threshold
    return Cascade(stages, fallback=cascade.fallback, fixed=cascade.fixed)


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
    walked = _gold_walk(cascade, texts, gold, target_precision, criterion, min_decided)
    return _with_thresholds(cascade, walked.thresholds), walked.stages


def _gold_walk(
    cascade: Cascade,
    texts: Sequence[str],
    gold: Sequence[str],
    target: float,
    criterion: Criterion,
    min_decided: int,
) -> _Walk:
    rule = single_label_rule(cascade.classes, np.asarray(gold), target, criterion, min_decided)
    width = len(cascade.classes)
    return walk(cascade.stages, len(texts), width, gold_scorer(texts), rule, cascade.fixed)


def gold_scorer(texts: Sequence[str]) -> Scorer:
    """Every stage scores every text reaching it (a gold set the stages never saw)."""

    def scorer(stage: LabelingStage, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return pending, stage.score([texts[int(i)] for i in pending])

    return scorer


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
    _check_target(target_precision)
    if holdout > 0:
        fit, check = split_train_test(gold, holdout, seed)
    else:
        fit, check = gold, None
    walked = _gold_walk(cascade, fit.texts, fit.labels, target_precision, criterion, min_decided)
    calibrated = _with_thresholds(cascade, walked.thresholds)
    result = None if check is None else calibrated.run(check.texts, gold=check.labels)
    return CalibrationReport(
        target_precision,
        criterion,
        walked.stages,
        calibrated,
        result,
        method="gold",
        examples=len(fit),
        decided=walked.decided,
        fallback=walked.fallback,
        needed=examples_needed(target_precision, criterion, min_decided),
    )


def _check_target(target: float) -> None:
    if not 0 < target <= 1:
        raise ValueError(f"target_precision must be in (0, 1], got {target}")


def without(stage: LabelingStage, texts: Collection[str]) -> LabelingStage:
    """The stage as it would be had it never seen `texts` (a stage using no labeled texts,
    like NLI, has no `without` and is itself)."""
    method = getattr(stage, "without", None)
    return stage if method is None else method(frozenset(texts))


def fold_ids(labels: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of each text: stratified where every class has `folds` texts or more (fewer
    folds down to 2 where classes are small), plain shuffled folds otherwise."""
    n = len(labels)
    ids = np.zeros(n, dtype=int)
    if n < 2:
        return ids
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    smallest = int(counts.min())
    splitter: StratifiedKFold | KFold
    if smallest >= 2:
        splitter = StratifiedKFold(min(folds, smallest), shuffle=True, random_state=seed)
    else:
        splitter = KFold(min(folds, n), shuffle=True, random_state=seed)
    for fold, (_, part) in enumerate(splitter.split(np.zeros(n), labels)):
        ids[part] = fold
    return ids


def cross_validate(
    cascade: Cascade,
    examples: LabeledData,
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    min_decided: int = 5,
    folds: int = 5,
    max_examples: int = 600,
    seed: int = 0,
) -> CalibrationReport:
    """Thresholds from out-of-fold scores of the stages' own labeled examples (a
    stratified sample of `max_examples` where there are more). A stage with a
    `max_calibration` attribute (the LLM: seconds a text) scores a seeded sample of that
    many of the texts reaching it; later stages and the fallback see the same sample."""
    _check_target(target_precision)
    if len(examples) > max_examples:
        examples = stratified_fraction(examples, max_examples / len(examples), seed)
    texts, gold = examples.texts, np.asarray(examples.labels)
    fold = fold_ids(examples.labels, folds, seed)
    width = len(cascade.classes)
    scorer = out_of_fold_scorer(texts, fold, width, seed)
    rule = single_label_rule(cascade.classes, gold, target_precision, criterion, min_decided)
    walked = walk(cascade.stages, len(texts), width, scorer, rule, cascade.fixed)
    return CalibrationReport(
        target_precision,
        criterion,
        walked.stages,
        _with_thresholds(cascade, walked.thresholds),
        None,
        method="cross-validation",
        examples=len(examples),
        decided=walked.decided,
        fallback=walked.fallback,
        needed=examples_needed(target_precision, criterion, min_decided),
    )


def out_of_fold_scorer(texts: Sequence[str], fold: np.ndarray, width: int, seed: int) -> Scorer:
    """Each text scored by a copy of the stage that never saw the text's fold; a stage with
    `max_calibration` scores a seeded sample of that many of the texts reaching it."""
    rng = np.random.default_rng(seed)

    def scorer(stage: LabelingStage, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        limit = getattr(stage, "max_calibration", None)
        if limit is not None and len(pending) > limit:
            pending = np.sort(rng.choice(pending, size=int(limit), replace=False))
        rows = np.zeros((len(pending), width))
        if len(texts) < 2:
            return pending, rows  # one text cannot be held out from itself: no evidence
        for f in np.unique(fold[pending]):
            held = fold == f
            own = without(stage, [texts[int(i)] for i in np.flatnonzero(held)])
            positions = np.flatnonzero(held[pending])
            rows[positions] = own.score([texts[int(pending[int(p)])] for p in positions])
        return pending, rows

    return scorer
