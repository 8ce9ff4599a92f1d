"""File-level glue for `synthmix label`: read unlabeled texts, build and calibrate the
cascade, label, write the labels (JSONL), the texts to review and a JSON report.

Thresholds are calibrated whenever labeled texts exist: on a gold file (part held out
to check), else by cross-validation on the stages' own examples (`--examples`, or the
card's). The report states the precision to expect of decided labels and of fallback
guesses separately. Multi-label (`multi_label=True`): label sets, per-label thresholds
(`labeling.multilabel`), and a labels file in the multi-label source format."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthmix.cards.card import TaskCard
from synthmix.core.errors import ConfigError, DataError
from synthmix.core.files import sidecar
from synthmix.data.labeled import LABEL, TEXT, LabeledData, read_frame
from synthmix.data.multilabel import LABELS, MultiLabelData
from synthmix.labeling.calibrate import CalibrationReport, Criterion, calibrate, cross_validate
from synthmix.labeling.cascade import CascadeResult, LabelDecision
from synthmix.labeling.config import CascadeConfig, build_cascade
from synthmix.labeling.multilabel import (
    MultiLabelCascade,
    MultiLabelResult,
    calibrate_multilabel,
    cross_validate_multilabel,
    write_labels,
)
from synthmix.stats.intervals import Proportion


def load_texts(path: str | Path, text_column: str = TEXT, encoding: str = "auto") -> list[str]:
    """Texts of an unlabeled CSV/TSV/JSONL/JSON/Parquet file (other columns are ignored)."""
    frame, _ = read_frame(path, encoding)
    return texts_of(frame, path, text_column)


def texts_of(frame: pd.DataFrame, path: str | Path, text_column: str = TEXT) -> list[str]:
    """The text column of a frame read from `path`; a missing column or an empty text is
    a one-line error naming the file (and row)."""
    if text_column not in frame.columns:
        raise DataError(str(path), f"no column '{text_column}'; set the text column name")
    if len(frame) == 0:
        raise DataError(str(path), "no texts to label (the file has a header but no rows)")
    texts = frame[text_column].fillna("").astype(str)
    empty = texts.str.strip().eq("")
    if empty.any():
        raise DataError(str(path), "empty text", row=int(empty.to_numpy().argmax()) + 1)
    return texts.tolist()


def card_examples(card: TaskCard) -> LabeledData:
    """The card's examples as labeled data (the calibration set of last resort)."""
    rows = [(text, c.name) for c in card.classes for text in c.examples]
    return LabeledData(pd.DataFrame(rows, columns=[TEXT, LABEL]), "the card's examples")


def card_label_sets(card: TaskCard) -> MultiLabelData:
    """The card's examples as multi-label data: an example shown under several classes
    carries all of them."""
    sets: dict[str, set[str]] = {}
    for c in card.classes:
        for text in c.examples:
            sets.setdefault(text, set()).add(c.name)
    frame = pd.DataFrame(
        {
            TEXT: list(sets),
            LABELS: pd.Series([tuple(sorted(v)) for v in sets.values()], dtype=object),
        }
    )
    return MultiLabelData(frame, "the card's examples")


@dataclass
class Trust:
    """What to expect of the output: decided labels and fallback guesses apart."""

    decided: int
    decided_precision: Proportion  # estimated on the labeled texts (see the calibration)
    fallback: int
    fallback_precision: Proportion
    review: int  # texts with no label, left to a person
    calibrated: bool  # False where a threshold was fixed by the user

    def to_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "decided_estimated_precision": self.decided_precision.to_dict(),
            "fallback": self.fallback,
            "fallback_estimated_precision": self.fallback_precision.to_dict(),
            "to_review": self.review,
            "calibrated": self.calibrated,
        }

    def lines(self, texts: int) -> list[str]:
        note = "" if self.calibrated else ", thresholds partly fixed by you (uncalibrated)"
        lines = [
            f"decided {self.decided} of {texts} texts: estimated precision "
            f"{self.decided_precision.format()}{note}"
        ]
        if self.fallback:
            lines.append(
                f"fallback guesses (decided: false) for {self.fallback} texts: estimated "
                f"precision {self.fallback_precision.format()}"
            )
        if self.review:
            lines.append(f"{self.review} texts no stage decided: left for review")
        return lines


@dataclass
class LabelRun:
    result: CascadeResult | MultiLabelResult
    calibration: CalibrationReport
    # LLM answers the stages could not use (multi-label: no JSON list, unknown labels).
    problems: list[str] = field(default_factory=list)
    parsing: dict[str, Any] = field(default_factory=dict)
    trust: Trust = field(init=False)

    def __post_init__(self) -> None:
        decisions = self.result.decisions
        fallback = sum(1 for d in decisions if not d.decided and d.labelled)
        self.trust = Trust(
            decided=sum(d.decided for d in decisions),
            decided_precision=self.calibration.estimate,
            fallback=fallback,
            fallback_precision=self.calibration.fallback,
            review=sum(1 for d in decisions if not d.decided),
            calibrated=self.calibration.calibrated,
        )

    def report(self) -> dict[str, Any]:
        report = {
            "trust": self.trust.to_dict(),
            "labeling": self.result.summary(),
            "calibration": self.calibration.to_dict(),
        }
        if self.parsing:
            report["llm_answers"] = self.parsing
        return report

    def summary_lines(self) -> list[str]:
        return [
            self.calibration.format(),
            self.result.format(),
            *self.trust.lines(len(self.result.decisions)),
            *self.problems,
        ]


def label_texts(
    texts: list[str],
    card: TaskCard,
    config: CascadeConfig,
    examples: LabeledData | None = None,
    gold: LabeledData | None = None,
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    holdout: float = 0.3,
    progress: bool = False,
    seed: int = 0,
) -> LabelRun:
    """Label `texts` with thresholds calibrated on `gold` (part held out for the check),
    else cross-validated on `examples` (else on the card's examples). Gold texts should
    not also be `examples`: the stages would have seen them."""
    cascade = build_cascade(config, card, examples, progress)
    assert not isinstance(cascade, MultiLabelCascade)
    if gold is not None:
        report = calibrate(cascade, gold, target_precision, holdout, criterion, seed=seed)
    else:
        pool = examples if examples is not None and len(examples) else card_examples(card)
        report = cross_validate(cascade, pool, target_precision, criterion, seed=seed)
    return LabelRun(report.cascade.run(texts), report)


def label_sets(
    texts: list[str],
    card: TaskCard,
    config: CascadeConfig,
    examples: MultiLabelData | None = None,
    gold: MultiLabelData | None = None,
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    holdout: float = 0.3,
    progress: bool = False,
    seed: int = 0,
) -> LabelRun:
    """`label_texts` for a multi-label task: label sets, per-label thresholds calibrated on
    `gold` sets, else cross-validated on `examples` (else the card's examples)."""
    cascade = build_cascade(config, card, examples, progress, multi_label=True)
    assert isinstance(cascade, MultiLabelCascade)
    if gold is not None:
        report = calibrate_multilabel(
            cascade, gold, target_precision, holdout, criterion, seed=seed
        )
    else:
        pool = examples if examples is not None and len(examples) else card_label_sets(card)
        report = cross_validate_multilabel(cascade, pool, target_precision, criterion, seed=seed)
    calibrated = report.cascade
    assert isinstance(calibrated, MultiLabelCascade)
    result = calibrated.run_sets(texts)
    problems, parsing = [], {}
    for stage in cascade.stages:  # the calibrated copies share these counts
        counts = getattr(stage, "parsing", None)
        if counts is not None and getattr(stage, "multi_label", False):
            problems += counts.lines(stage.name)
            parsing[stage.name] = counts.to_dict()
    return LabelRun(result, report, problems, parsing)


def label_sets_from_files(
    data: str | Path,
    card: TaskCard,
    card_source: str,
    config: CascadeConfig,
    examples: str | Path | None = None,
    gold: str | Path | None = None,
    columns: tuple[str, str, str | None] = (TEXT, LABELS, None),
    encoding: str = "auto",
    target_precision: float = 0.9,
    criterion: Criterion = "wilson",
    holdout: float = 0.3,
    progress: bool = True,
) -> LabelRun:
    """`synthmix label --multi-label`: read the texts, the labeled files (`columns`: text
    column, labels column, delimiter or None for JSON lists), check their labels are the
    card's, label."""
    from synthmix.data.multilabel import load_multilabel

    text_column, labels_column, delimiter = columns

    def read(path: str | Path) -> MultiLabelData:
        loaded = load_multilabel(path, text_column, labels_column, delimiter, None, encoding)
        missing = sorted(set(loaded.classes) - set(card.class_names))
        if missing:
            raise ConfigError(
                f"{card_source}: no class for label(s) {', '.join(map(repr, missing))} "
                f"found in {loaded.source}"
            )
        return loaded

    return label_sets(
        load_texts(data, text_column, encoding),
        card,
        config,
        examples=read(examples) if examples is not None else None,
        gold=read(gold) if gold is not None else None,
        target_precision=target_precision,
        criterion=criterion,
        holdout=holdout,
        progress=progress,
    )


def review_path(out: str | Path) -> Path:
    """Where the undecided texts go: `labeled.jsonl` -> `labeled.review.jsonl`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.review{out.suffix or '.jsonl'}")


def write_run(run: LabelRun, out: str | Path) -> Path:
    """Labels to `out` (JSONL: decided texts and, with a fallback, its guesses marked
    `decided: false`; `row` is the text's 1-based row in the input), the undecided texts
    with every stage's scores to the review file, the report beside `out`
    (`<out stem>.report.json`), returned."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    classes = run.result.classes
    review = review_path(out)
    if isinstance(run.result, MultiLabelResult):
        write_labels(run.result, out)
    else:
        with (
            out.open("w", encoding="utf-8") as labels,
            review.open("w", encoding="utf-8") as rest,
        ):
            for row, decision in enumerate(run.result.decisions, 1):
                if decision.label is not None:
                    labels.write(_line({"row": row, **decision.to_dict()}))
                if not decision.decided:
                    rest.write(_line(_review_record(row, decision, classes)))
    report = sidecar(out)
    payload = {**run.report(), "labels": str(out), "review": str(review)}
    report.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    return report


def _review_record(row: int, decision: LabelDecision, classes: list[str]) -> dict[str, Any]:
    """A text to check: each stage's best class and scores (by class name), so a
    reviewer sees where the stages hesitated."""
    stages = {}
    for stage, scores in decision.scores.items():
        best = int(np.argmax(scores)) if scores else 0
        stages[stage] = {
            "best": classes[best] if scores and max(scores) > 0 else None,
            "scores": {c: round(v, 6) for c, v in zip(classes, scores, strict=True)},
        }
    return {"row": row, "text": decision.text, "guess": decision.label, "stages": stages}


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
