"""Per-seed scores and test predictions of every fit, and the paired comparisons built on them.

Which comparisons a report makes (one family, corrected together):
- a small-real mix (small real + synthetic) against the same small real fraction alone;
- all real + synthetic (and half and half) against real data alone at the same real fraction;
- synthetic only against all real data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthmix.experiment.mixing import SYNTHETIC_ONLY
from synthmix.experiment.results import record_classifier, record_predictions
from synthmix.report.cells import find_reference, real_only_cell
from synthmix.report.model import CellSummary, Versus
from synthmix.report.testset import MULTI_LABEL_REASON
from synthmix.stats.paired import (
    MultiLabelResampler,
    PairedComparison,
    TextResampler,
    correct,
    paired_comparison,
)

FitKey = tuple[str, str]  # (classifier label, cell key)


F1_MACRO = "f1_macro"
F1_MICRO = "f1_micro"  # multi-label runs only: every text-label decision pooled


@dataclass(frozen=True)
class Fit:
    f1_macro: float
    per_class: np.ndarray  # F1 of each of Evidence.classes
    # Per test text: class indices into Evidence.classes, or for a multi-label run a 0/1
    # matrix (texts x Evidence.classes) of the labels predicted.
    predictions: np.ndarray | None
    f1_micro: float = float("nan")


class Evidence:
    """Every fit of a run by (classifier, cell) and seed, with the test set's gold labels when
    they could be reloaded (`reason` says why not otherwise). A multi-label run's gold comes
    as `gold_sets` (label sets in test order) and its records' `label_predictions` are paired
    the same way, label decisions resampled with their texts (`MultiLabelResampler`)."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        gold: Sequence[str] | None = None,
        reason: str = "",
        seed: int = 0,
        gold_sets: Sequence[Sequence[str]] | None = None,
    ) -> None:
        self.classes = _classes(records)
        self.multi_label = any(
            record.get("metrics", {}).get("task") == "multi_label" for record in records
        )
        index = {label: i for i, label in enumerate(self.classes)}
        self.fits: dict[FitKey, dict[int, Fit]] = {}
        for record in records:
            key = (record_classifier(record), str(record["cell_key"]))
            predictions = (
                _label_predictions(record, self.classes)
                if self.multi_label
                else _predictions(record, self.classes)
            )
            self.fits.setdefault(key, {})[int(record["seed"])] = Fit(
                float(record["metrics"]["f1_macro"]),
                _per_class(record, self.classes),
                predictions,
                float(record["metrics"].get(F1_MICRO, np.nan)),
            )
        self.reason = reason
        self.gold: np.ndarray | None = None
        if not any(
            fit.predictions is not None
            for by_seed in self.fits.values()
            for fit in by_seed.values()
        ):
            self.reason = (
                MULTI_LABEL_REASON
                if self.multi_label
                else "their records hold no per-text test predictions (written before "
                "predictions were stored)"
            )
        elif self.multi_label and gold_sets is not None:
            if all(label in index for labels in gold_sets for label in labels):
                self.gold = _indicator(gold_sets, index)
            else:
                self.reason = "the test set has labels the records do not know"
        elif not self.multi_label and gold is not None:
            if all(label in index for label in gold):
                self.gold = np.array([index[label] for label in gold], dtype=np.int64)
            else:
                self.reason = "the test set has labels the records do not know"
        self._seed = seed
        self._resampler: TextResampler | MultiLabelResampler | None = None
        self._resampled: dict[tuple[str, str, int, str], np.ndarray] = {}
        self.seed_level_only = 0  # comparisons that had to fall back to seeds alone

    def compare(
        self,
        candidate: FitKey,
        baseline: FitKey,
        label: str | None = None,
        metric: str = F1_MACRO,
    ) -> PairedComparison | None:
        """Candidate minus baseline over their shared seeds, in F1-macro or, given a `label`,
        in that class's F1 (or, for a multi-label run, `metric="f1_micro"`); None when they
        share no seed."""
        mine, theirs = self.fits.get(candidate, {}), self.fits.get(baseline, {})
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            return None
        if metric == F1_MICRO and not self.multi_label:
            raise ValueError("micro-F1 is compared for multi-label runs only")
        column = None if label is None else self.classes.index(label)

        def score(fit: Fit) -> float:
            if column is not None:
                return float(fit.per_class[column])
            return fit.f1_micro if metric == F1_MICRO else fit.f1_macro

        scores = [score(mine[s]) for s in seeds], [score(theirs[s]) for s in seeds]
        resampler = self._texts([mine[s] for s in seeds] + [theirs[s] for s in seeds])
        if resampler is None:
            if label is None and metric == F1_MACRO:
                self.seed_level_only += 1
            return paired_comparison(*scores)
        kind = F1_MICRO if metric == F1_MICRO and column is None else F1_MACRO
        resampled = [
            self._resample(resampler, key, seeds, fits, kind)
            for key, fits in ((candidate, mine), (baseline, theirs))
        ]
        if kind == F1_MICRO:
            ours, others = resampled
        else:
            ours, others = (
                r.mean(axis=-1) if column is None else r[..., column] for r in resampled
            )
        return paired_comparison(*scores, ours, others, texts=resampler.texts)

    def _texts(self, fits: Sequence[Fit]) -> TextResampler | MultiLabelResampler | None:
        if self.gold is None:
            return None
        if any(fit.predictions is None or fit.predictions.shape != self.gold.shape for fit in fits):
            return None
        if self._resampler is None:
            self._resampler = (
                MultiLabelResampler(self.gold, seed=self._seed)
                if self.multi_label
                else TextResampler(self.gold, len(self.classes), seed=self._seed)
            )
        return self._resampler

    def _resample(
        self,
        resampler: TextResampler | MultiLabelResampler,
        key: FitKey,
        seeds: Sequence[int],
        fits: Mapping[int, Fit],
        kind: str = F1_MACRO,
    ) -> np.ndarray:
        """Per seed, every class's F1 on every resample (`kind` f1_macro) or micro-F1 on
        every resample (f1_micro, multi-label only), cached."""
        missing = [seed for seed in seeds if (*key, seed, kind) not in self._resampled]
        if missing:
            # All of a cell's new seeds in one matrix product.
            stacked = np.stack([_known(fits[seed].predictions) for seed in missing])
            if kind == F1_MICRO:
                assert isinstance(resampler, MultiLabelResampler)
                rows = resampler.f1_micro(stacked)
            else:
                rows = resampler.f1_per_class(stacked)
            for seed, row in zip(missing, rows, strict=True):
                self._resampled[(*key, seed, kind)] = row
        return np.stack([self._resampled[(*key, seed, kind)] for seed in seeds])


def _known(predictions: np.ndarray | None) -> np.ndarray:
    assert predictions is not None  # Evidence._texts checked every fit has them
    return predictions


def baseline_of(cell: CellSummary, cells: Sequence[CellSummary]) -> CellSummary | None:
    """The cell a mix must beat: the same real data without the synthetic texts, or for
    synthetic data only, all real data."""
    if cell.source is None:
        return None
    if cell.plan == SYNTHETIC_ONLY:
        return find_reference(cells)
    return real_only_cell(cells, cell.real_fraction)


def mix_comparisons(
    cells: Sequence[CellSummary], evidence: Evidence | None, classifier: str
) -> dict[str, Versus]:
    """Every mix against its baseline, Holm-corrected together, by the mix's cell key."""
    if evidence is None:
        return {}
    pairs = []
    for cell in cells:
        baseline = baseline_of(cell, cells)
        if baseline is not None:
            result = evidence.compare((classifier, cell.key), (classifier, baseline.key))
            if result is not None:
                pairs.append((cell, baseline, result))
    corrected = correct([result for _, _, result in pairs])
    return {
        cell.key: Versus(baseline, result)
        for (cell, baseline, _), result in zip(pairs, corrected, strict=True)
    }


def class_comparisons(
    cells: Sequence[CellSummary],
    evidence: Evidence | None,
    classifier: str,
    versus: Mapping[str, Versus],
) -> dict[tuple[str, str], PairedComparison]:
    """Every class's F1 of every mix against its baseline, Holm-corrected together (a family
    of their own: the headline's verdicts are not diluted by them), by (cell key, class)."""
    if evidence is None:
        return {}
    keys, results = [], []
    for cell in cells:
        paired = versus.get(cell.key)
        if paired is None:
            continue
        for label in evidence.classes:
            result = evidence.compare(
                (classifier, cell.key), (classifier, paired.baseline.key), label
            )
            if result is not None:
                keys.append((cell.key, label))
                results.append(result)
    return dict(zip(keys, correct(results), strict=True))


def _per_class(record: dict[str, Any], classes: Sequence[str]) -> np.ndarray:
    per_class = record.get("metrics", {}).get("per_class", {})
    return np.array(
        [float(per_class.get(label, {}).get("f1", np.nan)) for label in classes], dtype=float
    )


def _classes(records: Sequence[dict[str, Any]]) -> list[str]:
    for record in records:
        classes = record.get("metrics", {}).get("classes")
        if isinstance(classes, list):
            return [str(label) for label in classes]
    return []


def _predictions(record: dict[str, Any], classes: Sequence[str]) -> np.ndarray | None:
    stored = record.get("predictions")
    if not isinstance(stored, list):
        return None  # written before predictions were kept
    if record.get("metrics", {}).get("classes") == list(classes):
        return np.asarray(stored, dtype=np.int64)
    labels = record_predictions(record) or []
    index = {label: i for i, label in enumerate(classes)}
    if any(label not in index for label in labels):
        return None
    return np.array([index[label] for label in labels], dtype=np.int64)


def _label_predictions(record: dict[str, Any], classes: Sequence[str]) -> np.ndarray | None:
    """A multi-label record's `label_predictions` (label indices into its own
    `metrics.classes`, per test text) as a 0/1 matrix over `classes`."""
    stored = record.get("label_predictions")
    own = record.get("metrics", {}).get("classes")
    if not isinstance(stored, list) or not isinstance(own, list):
        return None  # written before label predictions were kept: seed-level only
    index = {label: i for i, label in enumerate(classes)}
    if any(label not in index for label in own):
        return None
    columns = np.array([index[label] for label in own], dtype=np.int64)
    matrix = np.zeros((len(stored), len(classes)), dtype=np.int8)
    for row, picked in enumerate(stored):
        matrix[row, columns[np.asarray(picked, dtype=np.int64)]] = 1
    return matrix


def _indicator(label_sets: Sequence[Sequence[str]], index: Mapping[str, int]) -> np.ndarray:
    matrix = np.zeros((len(label_sets), len(index)), dtype=np.int8)
    for row, labels in enumerate(label_sets):
        matrix[row, [index[label] for label in labels]] = 1
    return matrix
