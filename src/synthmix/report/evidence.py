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
from synthmix.stats.paired import PairedComparison, TextResampler, correct, paired_comparison

FitKey = tuple[str, str]  # (classifier label, cell key)


@dataclass(frozen=True)
class Fit:
    f1_macro: float
    per_class: np.ndarray  # F1 of each of Evidence.classes
    predictions: np.ndarray | None  # class indices into Evidence.classes, per test text


class Evidence:
    """Every fit of a run by (classifier, cell) and seed, with the test set's gold labels when
    they could be reloaded (`reason` says why not otherwise)."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        gold: Sequence[str] | None = None,
        reason: str = "",
        seed: int = 0,
    ) -> None:
        self.classes = _classes(records)
        index = {label: i for i, label in enumerate(self.classes)}
        self.fits: dict[FitKey, dict[int, Fit]] = {}
        for record in records:
            key = (record_classifier(record), str(record["cell_key"]))
            self.fits.setdefault(key, {})[int(record["seed"])] = Fit(
                float(record["metrics"]["f1_macro"]),
                _per_class(record, self.classes),
                _predictions(record, self.classes),
            )
        self.reason = reason
        self.gold: np.ndarray | None = None
        if not any(
            fit.predictions is not None
            for by_seed in self.fits.values()
            for fit in by_seed.values()
        ):
            self.reason = (
                reason
                if reason == MULTI_LABEL_REASON
                else "their records hold no per-text test predictions (written before "
                "predictions were stored)"
            )
        elif gold is not None:
            if all(label in index for label in gold):
                self.gold = np.array([index[label] for label in gold], dtype=np.int64)
            else:
                self.reason = "the test set has labels the records do not know"
        self._seed = seed
        self._resampler: TextResampler | None = None
        self._resampled: dict[tuple[str, str, int], np.ndarray] = {}
        self.seed_level_only = 0  # comparisons that had to fall back to seeds alone

    def compare(
        self, candidate: FitKey, baseline: FitKey, label: str | None = None
    ) -> PairedComparison | None:
        """Candidate minus baseline over their shared seeds, in F1-macro or, given a `label`,
        in that class's F1; None when they share no seed."""
        mine, theirs = self.fits.get(candidate, {}), self.fits.get(baseline, {})
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            return None
        column = None if label is None else self.classes.index(label)

        def score(fit: Fit) -> float:
            return fit.f1_macro if column is None else float(fit.per_class[column])

        scores = [score(mine[s]) for s in seeds], [score(theirs[s]) for s in seeds]
        resampler = self._texts([mine[s] for s in seeds] + [theirs[s] for s in seeds])
        if resampler is None:
            if label is None:
                self.seed_level_only += 1
            return paired_comparison(*scores)
        resampled = [
            self._resample(resampler, key, seeds, fits)
            for key, fits in ((candidate, mine), (baseline, theirs))
        ]
        ours, others = (r.mean(axis=-1) if column is None else r[..., column] for r in resampled)
        return paired_comparison(*scores, ours, others, texts=resampler.texts)

    def _texts(self, fits: Sequence[Fit]) -> TextResampler | None:
        if self.gold is None:
            return None
        if any(fit.predictions is None or fit.predictions.shape != self.gold.shape for fit in fits):
            return None
        if self._resampler is None:
            self._resampler = TextResampler(self.gold, len(self.classes), seed=self._seed)
        return self._resampler

    def _resample(
        self, resampler: TextResampler, key: FitKey, seeds: Sequence[int], fits: Mapping[int, Fit]
    ) -> np.ndarray:
        missing = [seed for seed in seeds if (*key, seed) not in self._resampled]
        if missing:
            # All of a cell's new seeds in one matrix product.
            stacked = np.vstack([_known(fits[seed].predictions) for seed in missing])
            for seed, row in zip(missing, resampler.f1_per_class(stacked), strict=True):
                self._resampled[(*key, seed)] = row
        return np.stack([self._resampled[(*key, seed)] for seed in seeds])


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
