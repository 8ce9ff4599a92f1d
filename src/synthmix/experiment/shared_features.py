"""Fits of TF-IDF classifiers on n-gram counts computed once per text (classifiers.features).

The grid's cells share most of their texts: the real sample of a fraction and seed recurs in
every cell of that fraction, a source's texts in all of its cells, the test set in all. So
the runner composes every cell's mix first, counts only the texts no earlier pass stored
(feature_store), and each fit then selects its rows, weights them with the IDF of its own
training rows and fits. Worker processes open the store memory-mapped: the matrix is read
from shared pages, never pickled per task.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

from synthmix.classifiers.features import NgramSpec
from synthmix.classifiers.registry import ClassifierConfig, build_classifier
from synthmix.classifiers.tfidf import TfidfLogReg, shared_ngrams
from synthmix.classifiers.tuning import OnCounts, Tuning, fit_tuned
from synthmix.data.labeled import LabeledData
from synthmix.experiment.feature_store import FeatureStore
from synthmix.experiment.filtered import JudgedSource
from synthmix.experiment.mixing import GROUP, Cell, TrainingMix, compose, planned_counts
from synthmix.experiment.results import encode_predictions, fit_key
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.sources import DerivedSource, ReusedAugmentations
from synthmix.experiment.workers import guarded
from synthmix.stats.classification import evaluate

Task = tuple[Cell, int, ClassifierConfig]
# Below this many new texts, counting them in this process beats starting workers.
_PARALLEL_COUNTING = 2000


@dataclass
class GridStats:
    """What the shared work of a run cost, for run.json's timings."""

    texts_featurised: int = 0
    featurise_s: float = 0.0
    compose_s: float = 0.0
    augmented_texts: int = 0
    fits: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts_featurised": self.texts_featurised,
            "featurise_s": round(self.featurise_s, 3),
            "compose_s": round(self.compose_s, 3),
            "augmented_texts": self.augmented_texts,
            "shared_feature_fits": self.fits,
        }


@dataclass(frozen=True)
class FitJob:
    """One fit, ready to run in any process: the rows of its training texts in the store."""

    cell: Cell
    seed: int
    classifier: ClassifierConfig
    rows: np.ndarray
    labels: np.ndarray
    mix: dict[str, Any]
    compose_s: float
    groups: np.ndarray | None = None  # the rows' real-text groups (mixing.GROUP), for tuning


@dataclass(frozen=True)
class TestSet:
    rows: np.ndarray
    labels: list[str]
    classes: list[str]


FitAll = Callable[[list[FitJob], FeatureStore, TestSet, int], Iterator[dict[str, Any]]]


@dataclass
class _Composed:
    task: Task
    texts: list[str]
    labels: np.ndarray
    mix: dict[str, Any]
    seconds: float = field(default=0.0)
    groups: np.ndarray | None = None

    def interned(self, seen: dict[str, str]) -> _Composed:
        """Texts and labels as the one copy of each string that `seen` holds: every mix's
        `tolist()` of pandas' string columns makes new string objects, and the devlog grid
        held 771 mixes of up to 20k texts at once."""
        self.texts = [seen.setdefault(text, text) for text in self.texts]
        labels = [seen.setdefault(label, label) for label in self.labels]
        self.labels = np.asarray(labels, dtype=object)
        return self


def shared_spec(classifier: ClassifierConfig) -> NgramSpec | None:
    """The n-gram counts this classifier can fit on, or None where it fits on texts."""
    return shared_ngrams(classifier)


def result_key(cell: Cell, seed: int, classifier: ClassifierConfig) -> str:
    return fit_key(cell.key, seed, classifier.display)


def run_shared(
    tasks: list[Task],
    train: LabeledData,
    test: LabeledData,
    sources: dict[str, LabeledData | DerivedSource | JudgedSource],
    run: RunDir,
    workers: int,
    stats: GridStats,
    fit_all: FitAll | None = None,
) -> Iterator[dict[str, Any]]:
    """Records of `tasks` (all of classifiers with a `shared_spec`), as each fit finishes.
    `fit_all` runs the fits (default: here or in `workers` local processes)."""
    composed = _compose_all(tasks, train, sources, workers, stats)
    by_spec: dict[NgramSpec, list[_Composed]] = defaultdict(list)
    for item in composed:
        spec = shared_spec(item.task[2])
        assert spec is not None, "run_shared takes classifiers with shared features only"
        by_spec[spec].append(item)
    for spec, mine in by_spec.items():
        store = FeatureStore.of_run(run, spec)
        started = time.perf_counter()
        texts = [*test.texts, *(text for c in mine for text in c.texts)]
        stats.texts_featurised += store.add(texts, partial(_count, spec, workers))
        stats.featurise_s += time.perf_counter() - started
        test_set = TestSet(store.rows(test.texts), test.labels, train.classes)
        jobs = [
            FitJob(
                *c.task, store.rows(c.texts), c.labels, c.mix, compose_s=c.seconds, groups=c.groups
            )
            for c in mine
        ]
        stats.fits += len(jobs)
        yield from (fit_all or _fit_all)(jobs, store, test_set, workers)


def _compose_all(
    tasks: list[Task],
    train: LabeledData,
    sources: dict[str, LabeledData | DerivedSource | JudgedSource],
    workers: int,
    stats: GridStats,
) -> list[_Composed]:
    """Every task's mix. Cells drawing on a derived source are grouped by (source, real
    fraction, seed), the cells that can share one augmentation, and the groups augment in
    parallel workers; mixes of file sources are cheap and composed here."""
    derived: dict[tuple[str, float, int], list[Task]] = defaultdict(list)
    here: list[Task] = []
    for task in tasks:
        cell, seed, _ = task
        if cell.source is not None and isinstance(sources[cell.source], DerivedSource):
            derived[cell.source, cell.real_fraction, seed].append(task)
        else:
            here.append(task)
    groups = [(group, sources[key[0]]) for key, group in derived.items()]
    results: Iterable[tuple[list[_Composed], int]]
    if workers > 1 and len(groups) > 1:
        # As each group arrives, so that its texts are interned before the next one lands.
        results = Parallel(n_jobs=workers, return_as="generator")(
            delayed(guarded)(os.getpid(), _compose_group, group, train, source)
            for group, source in groups
        )
    else:
        results = (_compose_group(group, train, source) for group, source in groups)
    seen: dict[str, str] = {}
    composed = [_compose(task, train, sources).interned(seen) for task in here]
    for items, augmented in results:
        composed.extend(item.interned(seen) for item in items)
        stats.augmented_texts += augmented
    stats.compose_s += sum(c.seconds for c in composed)
    return composed


def _compose_group(
    tasks: list[Task], train: LabeledData, source: LabeledData | DerivedSource | JudgedSource
) -> tuple[list[_Composed], int]:
    assert isinstance(source, DerivedSource)
    reused = ReusedAugmentations(source)
    items = [_compose(task, train, {source.name: reused}) for task in _largest_first(tasks, train)]
    return items, reused.augmented


def _largest_first(tasks: list[Task], train: LabeledData) -> list[Task]:
    # Cells sharing a real sample and seed ask a derived source for texts; asking for the
    # most first lets the smaller asks reuse that augmentation instead of redoing it.
    counts = train.class_counts()
    return sorted(tasks, key=lambda task: -sum(planned_counts(task[0], counts)[1].values()))


def _compose(
    task: Task,
    train: LabeledData,
    sources: Mapping[str, LabeledData | DerivedSource | ReusedAugmentations | JudgedSource],
) -> _Composed:
    started = time.perf_counter()
    cell, seed, _ = task
    mix = compose(cell, train, sources[cell.source] if cell.source is not None else None, seed)
    return _Composed(
        task=task,
        texts=mix.data.texts,
        labels=np.asarray(mix.data.labels, dtype=object),
        mix=_mix_summary(mix),
        seconds=time.perf_counter() - started,
        groups=mix.data.frame[GROUP].to_numpy(),
    )


def _mix_summary(mix: TrainingMix) -> dict[str, Any]:
    return {
        "train_size": len(mix.data),
        "real_counts": mix.real_counts,
        "synthetic_counts": mix.synthetic_counts,
        "shortfall": mix.shortfall,
        **({"source_filter": mix.judged} if mix.judged is not None else {}),
    }


def _count(spec: NgramSpec, workers: int, texts: list[str]) -> sp.csr_matrix:
    if workers <= 1 or len(texts) < _PARALLEL_COUNTING:
        return spec.counts(texts)
    size = math.ceil(len(texts) / (2 * workers))
    parts = Parallel(n_jobs=workers)(
        delayed(guarded)(os.getpid(), spec.counts, texts[i : i + size])
        for i in range(0, len(texts), size)
    )
    return sp.vstack(parts, format="csr")


def _fit_all(
    jobs: list[FitJob], store: FeatureStore, test: TestSet, workers: int
) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for job in jobs:
            yield fit_job(job, store, test)
        return
    # Workers get the store's folder, not its arrays: each opens it memory-mapped once.
    folder, spec, size = str(store.folder), store.spec, len(store)
    yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(guarded)(os.getpid(), _fit_in_worker, folder, spec, size, job, test) for job in jobs
    )


_OPEN_STORES: dict[str, FeatureStore] = {}


def _fit_in_worker(
    folder: str, spec: NgramSpec, size: int, job: FitJob, test: TestSet
) -> dict[str, Any]:
    store = _OPEN_STORES.get(folder)
    if store is None or len(store) < size:  # a later pass added texts
        store = _OPEN_STORES[folder] = FeatureStore(Path(folder), spec)
    return fit_job(job, store, test)


class CountRows(Protocol):
    """Where a fit reads its rows of n-gram counts: a FeatureStore, or a matrix held in
    memory (a Ray object)."""

    def select(self, rows: np.ndarray) -> sp.csr_matrix: ...


def fit_job(job: FitJob, store: CountRows, test: TestSet) -> dict[str, Any]:
    started = time.perf_counter()
    model = build_classifier(job.classifier, job.seed)
    assert isinstance(model, TfidfLogReg)
    counts = store.select(job.rows)
    test_counts = store.select(test.rows)
    selected = time.perf_counter()
    plan = job.classifier.tuning
    tuning = None
    if plan is None:
        model.fit_counts(counts, job.labels)
    else:
        # The cell's own count rows only; the test rows are selected for prediction alone.
        search, tuning = fit_tuned(OnCounts(model), counts, job.labels, plan, job.seed, job.groups)
        model = search.model_
    predicted_at = time.perf_counter()
    predictions = model.predict_counts(test_counts)
    done = time.perf_counter()
    timings = {
        "compose_s": round(job.compose_s, 4),
        # Row selection and this fit's own TF-IDF weighting; the n-grams were counted once.
        "featurise_s": round(selected - started + model.timings_["featurise_s"], 4),
        "fit_s": round(model.timings_["fit_s"], 4),
        "predict_s": round(done - predicted_at, 4),
        **({"tune_s": round(tuning.tune_s, 4)} if tuning is not None else {}),
    }
    return fit_record(
        job.cell,
        job.seed,
        job.classifier,
        job.mix,
        predictions,
        test.labels,
        test.classes,
        timings,
        tuning,
    )


def fit_record(
    cell: Cell,
    seed: int,
    classifier: ClassifierConfig,
    mix: dict[str, Any],
    predictions: np.ndarray,
    test_labels: Sequence[str],
    classes: list[str],
    timings: dict[str, float],
    tuning: Tuning | None = None,
) -> dict[str, Any]:
    """The results-store record of one fit; a tuned fit records what it chose."""
    return {
        "key": result_key(cell, seed, classifier),
        "cell_key": cell.key,
        "cell": cell.describe(),
        "seed": seed,
        "classifier": classifier.describe(),
        **mix,
        "metrics": evaluate(list(test_labels), predictions.tolist(), classes),
        # Per test text, so two cells can be compared on the same texts (paired analysis).
        "predictions": encode_predictions(predictions.tolist(), classes),
        "timings": timings,
        **({"tuning": tuning.as_record()} if tuning is not None else {}),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
