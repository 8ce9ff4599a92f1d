"""Where the grid's fits run: in this machine's worker processes (the default) or as tasks on a
Ray cluster (`executor: {kind: ray}`, `synthmix experiment --executor ray`).

Either way the driver alone writes results.jsonl, one record as each fit arrives, so a killed
run resumes alike and both executors give the same records for the same seeds. On Ray, what
every fit reads (the real and synthetic data, the shared n-gram counts, the test set) is put in
the object store once and each task gets a reference; the shared work itself (composing mixes,
counting n-grams once per text) stays in the driver, as locally.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import scipy.sparse as sp

from synthmix.classifiers.registry import ClassifierConfig, runs_serially
from synthmix.core.errors import ConfigError, SynthmixError
from synthmix.data.labeled import LabeledData
from synthmix.embeddings.encoder import OFFLINE_DEFAULT, CachedEncoder, Encoder
from synthmix.experiment.feature_store import FeatureStore
from synthmix.experiment.filtered import JudgedSource
from synthmix.experiment.mixing import Cell
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.shared_features import (
    FitJob,
    GridStats,
    TestSet,
    fit_job,
    run_shared,
    shared_spec,
)
from synthmix.experiment.sources import DerivedSource
from synthmix.quality.config import QualityConfig
from synthmix.quality.measure import measure_quality

if TYPE_CHECKING:
    from types import ModuleType

    from synthmix.experiment.runner import ExperimentData

Task = tuple[Cell, int, ClassifierConfig]
Record = dict[str, Any]
Source = LabeledData | DerivedSource | JudgedSource
ExecutorKind = Literal["local", "ray"]


@dataclass
class ExecutorConfig:
    """`executor:` of an experiment YAML (or the string `local` / `ray` alone)."""

    kind: ExecutorKind = "local"
    # Ray: the cluster to join ("auto": the one `ray start` runs on this machine,
    # "ray://head:10001": a remote one); none starts a private one for this run.
    address: str | None = None
    num_cpus: float = 1.0  # per fit
    num_gpus: float = 1.0  # per transformer / lora fit; 0 fits them on CPUs


class Executor(Protocol):
    def session(self) -> contextlib.AbstractContextManager[Any]:
        """Held around several runs (the grid, then quality) so they share one start-up."""
        ...

    def run(
        self, todo: list[Task], data: ExperimentData, run: RunDir, stats: GridStats
    ) -> Iterator[Record]:
        """The record of every task in `todo`, each as soon as its fit finishes."""
        ...

    def measure(
        self,
        sources: dict[str, Source],
        train: LabeledData,
        quality: QualityConfig,
        encoder: Encoder,
    ) -> Iterator[tuple[str, Record]]:
        """(name, quality metrics) of every source, each as soon as it is measured;
        `encoder` (the run's embedding cache) keeps every vector computed."""
        ...


class FitFailed(SynthmixError):
    """Fits raised; the results of all the others were stored."""


def build_executor(config: ExecutorConfig, jobs: int) -> Executor:
    if config.kind == "ray":
        return RayExecutor(config.address, config.num_cpus, config.num_gpus, jobs)
    return LocalExecutor(jobs)


@dataclass
class LocalExecutor:
    """Worker processes on this machine (joblib): `jobs` of them, 0 = one per core."""

    jobs: int = 0

    def session(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def run(
        self, todo: list[Task], data: ExperimentData, run: RunDir, stats: GridStats
    ) -> Iterator[Record]:
        # Imported here: the runner imports this module to choose its executor.
        from synthmix.experiment import runner

        for batch, workers in runner.schedule(todo, self.jobs):
            yield from runner._run_tasks(batch, data, workers, run, stats)

    def measure(
        self,
        sources: dict[str, Source],
        train: LabeledData,
        quality: QualityConfig,
        encoder: Encoder,
    ) -> Iterator[tuple[str, Record]]:
        for name, source in sources.items():
            yield name, measure_source(source, train, quality, encoder)


def measure_source(
    source: Source, train: LabeledData, quality: QualityConfig, encoder: Encoder
) -> Record:
    """Quality metrics of one source against the real training data. A derived (rule-based)
    source is measured on one augmentation of the full training set, the same texts its
    synthetic-only cells train on."""
    if not isinstance(source, LabeledData):
        per_class = min(max(train.class_counts().values()), quality.sample_size)
        source = source(train, per_class, quality.seed)
    return measure_quality(source, train, quality, encoder)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the Ray executor needs Ray, an optional extra: pip install 'synthmix[ray]'"
        ) from None
    return ray


@dataclass
class RayExecutor:
    """Each (cell, seed, classifier) fit a Ray task. Joins the cluster at `address`, the one
    this process is already connected to, or else starts a private one (`jobs` CPUs, 0 = all)
    that ends with the run. `jobs` also sizes the driver's own worker processes."""

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 1.0
    jobs: int = 0

    def run(
        self, todo: list[Task], data: ExperimentData, run: RunDir, stats: GridStats
    ) -> Iterator[Record]:
        if not todo:
            return
        with self._cluster() as ray:
            yield from self._run(ray, todo, data, run, stats)

    def measure(
        self,
        sources: dict[str, Source],
        train: LabeledData,
        quality: QualityConfig,
        encoder: Encoder,
    ) -> Iterator[tuple[str, Record]]:
        """One Ray task per source. Each gets the vectors the run's cache already holds for
        its texts and the training texts (those in the object store once), embeds the rest
        and sends them back with its metrics: the driver alone writes the cache."""
        if not sources:
            return
        if not isinstance(encoder, CachedEncoder):
            raise TypeError("the Ray executor keeps embeddings in a CachedEncoder")
        with self._cluster() as ray:
            train_ref = ray.put(train)
            known_train = ray.put(encoder.cached(train.texts))
            remote = ray.remote(_measure_remotely)
            pending: dict[Any, str] = {}
            for name, source in sources.items():
                known = encoder.cached(source.texts) if isinstance(source, LabeledData) else {}
                ref = remote.options(num_cpus=self.num_cpus, name=f"quality {name}").remote(
                    source, train_ref, quality, encoder.name, known_train, known
                )
                pending[ref] = name
            for name, (metrics, texts, vectors) in _settle(ray, pending, "quality of source"):
                encoder.store(texts, vectors)
                yield name, metrics

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """Connected (or a private cluster started) until the block ends; runs inside it
        reuse the connection instead of starting and stopping their own."""
        return self._cluster()

    @contextlib.contextmanager
    def _cluster(self) -> Iterator[ModuleType]:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            yield ray
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray: ModuleType) -> None:
        private = self.address is None
        try:
            ray.init(
                # "local": a new cluster even where `ray start` runs one here.
                address="local" if private else self.address,
                num_cpus=(self.jobs or None) if private else None,
                include_dashboard=False if private else None,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            message = " ".join(str(exc).split())
            raise ConfigError(
                f"executor: cannot join the Ray cluster at {self.address}: {message}"
            ) from None

    def _run(
        self,
        ray: ModuleType,
        todo: list[Task],
        data: ExperimentData,
        run: RunDir,
        stats: GridStats,
    ) -> Iterator[Record]:
        on_texts = [task for task in todo if shared_spec(task[2]) is None]
        self._check_gpus(ray, on_texts)
        pending: dict[Any, Task] = {}
        if on_texts:
            # Submitted first: transformer fits take longest, and they run while the driver
            # counts n-grams for the TF-IDF fits below.
            data_ref = ray.put(data)
            on_texts_remote = ray.remote(_fit_on_texts)
            for task in on_texts:
                remote = on_texts_remote.options(**self._resources(task[2]), name=_name(task))
                pending[remote.remote(data_ref, *task)] = task
        on_counts_remote = ray.remote(_fit_on_counts)

        def submit(
            jobs: list[FitJob], store: FeatureStore, test: TestSet, workers: int
        ) -> Iterator[Record]:
            counts_ref = ray.put(store.select(np.arange(len(store))))
            test_ref = ray.put(test)
            for job in jobs:
                task = (job.cell, job.seed, job.classifier)
                remote = on_counts_remote.options(
                    **self._resources(job.classifier), name=_name(task)
                )
                pending[remote.remote(counts_ref, job, test_ref)] = task
            return iter(())

        shared = [task for task in todo if shared_spec(task[2]) is not None]
        if shared:
            workers = self.jobs if self.jobs > 0 else _local_cores()
            for _ in run_shared(
                shared, data.train, data.test, data.sources, run, workers, stats, fit_all=submit
            ):
                pass
        yield from _gather(ray, pending)

    def _resources(self, classifier: ClassifierConfig) -> dict[str, Any]:
        if runs_serially(classifier.name) and self.num_gpus > 0:
            # A fresh worker process per GPU fit: one that stays would keep its CUDA memory.
            return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_calls": 1}
        return {"num_cpus": self.num_cpus}

    def _check_gpus(self, ray: ModuleType, tasks: list[Task]) -> None:
        wanting = [task for task in tasks if runs_serially(task[2].name)]
        if not wanting or self.num_gpus <= 0:
            return
        # A task asking for a GPU that no node has would wait forever.
        if ray.cluster_resources().get("GPU", 0) < self.num_gpus:
            raise ConfigError(
                f"executor.num_gpus: each {wanting[0][2].display} fit asks for "
                f"{self.num_gpus:g} GPU, but the Ray cluster has none that large; "
                "set executor.num_gpus: 0 to fit on CPUs"
            )


def _gather(ray: ModuleType, pending: dict[Any, Task]) -> Iterator[Record]:
    named = {ref: _name(task) for ref, task in pending.items()}
    for _, record in _settle(ray, named, "fit"):
        yield record


def _settle(ray: ModuleType, pending: dict[Any, str], what: str) -> Iterator[tuple[str, Any]]:
    """(name, result) of each task as it finishes. A task that raises does not stop the
    others: their results are kept, then one error names every failed task."""
    failed: list[str] = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                name = pending.pop(ref)
                try:
                    result = ray.get(ref)
                # A task that raised, or whose worker or node died past Ray's retries.
                except ray.exceptions.RayError as exc:
                    failed.append(f"{name}: {_cause(exc)}")
                    continue
                yield name, result
    finally:
        # The driver stopped early (killed, or an error): the fits it would store are moot.
        for ref in pending:
            with contextlib.suppress(Exception):  # best effort: it may have just finished
                ray.cancel(ref, force=True)
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise FitFailed(f"{what} failed: {failed[0]}{more}")


def _cause(exc: Exception) -> str:
    cause = getattr(exc, "cause", None) or exc
    text = str(cause) if isinstance(cause, SynthmixError) else f"{type(cause).__name__}: {cause}"
    return " ".join(text.split())[:300]


def _name(task: Task) -> str:
    cell, seed, classifier = task
    return f"{classifier.display} {cell.title} seed={seed}"


def _local_cores() -> int:
    return os.cpu_count() or 1


class _HeldCounts:
    """The n-gram counts of every text of the run, as one object-store matrix."""

    def __init__(self, counts: sp.csr_matrix) -> None:
        self.counts = counts

    def select(self, rows: np.ndarray) -> sp.csr_matrix:
        return self.counts[np.asarray(rows, dtype=np.int64)]


def _fit_on_counts(counts: sp.csr_matrix, job: FitJob, test: TestSet) -> Record:
    return fit_job(job, _HeldCounts(counts), test)


def _fit_on_texts(
    data: ExperimentData, cell: Cell, seed: int, classifier: ClassifierConfig
) -> Record:
    from synthmix.experiment.runner import run_cell

    return run_cell(cell, seed, data, classifier)


class _Preloaded:
    """An encoder that knows some vectors already (from the driver's cache) and embeds the
    rest with the same model, remembering them to send back."""

    def __init__(self, name: str, known: dict[str, np.ndarray]) -> None:
        self.name = name
        self.known = known
        self.new: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from synthmix.classifiers.embedding import shared_encoder

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        missing = [t for t in dict.fromkeys(texts) if t not in self.known and t not in self.new]
        if missing:
            vectors = shared_encoder(self._build_name()).encode(missing)
            self.new.update(zip(missing, vectors, strict=True))
        return np.vstack([self.known[t] if t in self.known else self.new[t] for t in texts])

    def _build_name(self) -> str:
        prefix = "sentence-transformers:"
        return self.name.removeprefix(prefix) if self.name.startswith(prefix) else OFFLINE_DEFAULT


def _measure_remotely(
    source: Source,
    train: LabeledData,
    quality: QualityConfig,
    encoder_name: str,
    known_train: dict[str, np.ndarray],
    known: dict[str, np.ndarray],
) -> tuple[Record, list[str], np.ndarray]:
    encoder = _Preloaded(encoder_name, {**known_train, **known})
    metrics = measure_source(source, train, quality, encoder)
    texts = list(encoder.new)
    vectors = np.vstack(list(encoder.new.values())) if texts else np.zeros((0, 0), np.float32)
    return metrics, texts, vectors
