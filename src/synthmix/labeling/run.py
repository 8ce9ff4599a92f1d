"""File-level glue for `synthmix label`: read unlabeled texts, build (and optionally
calibrate) the cascade, label, write JSONL and a JSON report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.cards.card import TaskCard
from synthmix.core.errors import DataError
from synthmix.data.labeled import TEXT, LabeledData, read_frame
from synthmix.labeling.calibrate import CalibrationReport, Criterion, calibrate
from synthmix.labeling.cascade import CascadeResult
from synthmix.labeling.config import CascadeConfig, build_cascade


def load_texts(path: str | Path, text_column: str = TEXT, encoding: str = "auto") -> list[str]:
    """Texts of an unlabeled CSV/TSV/JSONL/JSON/Parquet file (other columns are ignored)."""
    frame, _ = read_frame(path, encoding)
    return texts_of(frame, path, text_column)


def texts_of(frame: pd.DataFrame, path: str | Path, text_column: str = TEXT) -> list[str]:
    """The text column of a frame read from `path`; a missing column or an empty text is
    a one-line error naming the file (and row)."""
    if text_column not in frame.columns:
        raise DataError(str(path), f"no column '{text_column}'; set the text column name")
    texts = frame[text_column].fillna("").astype(str)
    empty = texts.str.strip().eq("")
    if empty.any():
        raise DataError(str(path), "empty text", row=int(empty.to_numpy().argmax()) + 1)
    return texts.tolist()


@dataclass
class LabelRun:
    result: CascadeResult
    calibration: CalibrationReport | None

    def report(self) -> dict[str, Any]:
        return {
            "labeling": self.result.summary(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }


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
) -> LabelRun:
    """Label `texts`; with `gold`, thresholds are first calibrated on it (part held out
    for the check). Gold texts should not also be `examples`: the LLM would see them."""
    cascade = build_cascade(config, card, examples, progress)
    report = None
    if gold is not None:
        report = calibrate(cascade, gold, target_precision, holdout, criterion)
        cascade = report.cascade
    return LabelRun(cascade.run(texts), report)


def write_run(run: LabelRun, out: str | Path) -> Path:
    """Labels to `out` (JSONL, one object per text); the report beside it
    (`<out>.report.json`), returned."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run.result.write_jsonl(out)
    report = out.with_name(out.name + ".report.json")
    report.write_text(
        json.dumps(run.report(), ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    return report
