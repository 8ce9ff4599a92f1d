"""The experiment runner: every (cell, seed) of the mixing grid, trained with every classifier
of the experiment and evaluated on real test data, each result stored the moment it is
finished."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from synthmix.cards.card import load_card
from synthmix.classifiers.registry import (
    ClassifierConfig,
    available_classifiers,
    build_classifier,
    runs_serially,
)
from synthmix.classifiers.tfidf import classifier_method, legacy_method
from synthmix.classifiers.tuning import fit_tuned
from synthmix.core.errors import ConfigError
from synthmix.core.provenance import package_versions
from synthmix.data.labeled import LabeledData, check_test_labels, load_labeled, split_train_test
from synthmix.embeddings.encoder import build_encoder
from synthmix.experiment.config import ExperimentConfig
from synthmix.experiment.executors import Executor, build_executor
from synthmix.experiment.filtered import JudgedSource, judged_sources, source_base_name
from synthmix.experiment.mixing import GROUP, SOURCE_PLANS, Cell, compose, plan_cells
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.shared_features import (
    GridStats,
    fit_record,
    result_key,
    run_shared,
    shared_spec,
)
from synthmix.experiment.source_stats import (
    add_judged_stats,
    generation_stats,
    write_source_stats,
)
from synthmix.experiment.sources import DerivedSource, derived_sources, load_sources
from synthmix.experiment.tuned_source import add_tuned_stats, attach_run_dir
from synthmix.experiment.workers import fit_cells
from synthmix.quality.config import QualityConfig
from synthmix.quality.files import write_quality

log = logging.getLogger("synthmix")


@dataclass(frozen=True)
class ExperimentData:
    train: LabeledData
    test: LabeledData
    sources: dict[str, LabeledData | DerivedSource | JudgedSource]


Task = tuple[Cell, int, ClassifierConfig]


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    total: int
    reused: int
    ran: int


def load_experiment_data(config: ExperimentConfig) -> ExperimentData:
    """Load and cross-check everything before any training starts, so a bad row in the
    last source fails in the first second, not after an hour."""
    data = config.data
    pair = data.text_pair_column
    train = load_labeled(
        config.resolve(data.train), data.text_column, data.label_column, data.encoding, pair
    )
    if data.test is None:
        train, test = split_train_test(train, data.test_size, data.split_seed)
    else:
        test = load_labeled(
            config.resolve(data.test), data.text_column, data.label_column, data.encoding, pair
        )
    train.require_classes(2)
    check_test_labels(train, test)
    if config.card is not None:
        load_card(config.resolve(config.card)).check_covers(train, config.card)
    if pair is not None:
        # Pairs travel as joined strings through mixing and classifiers (data.pairs).
        from synthmix.experiment.task_sources import PairDerivedSource, joined

        train, test = joined(train), joined(test)
    files = judged_sources(
        config.sources, load_sources(config.sources, config.base_dir, train, pair)
    )
    derived = derived_sources(config.sources)
    if pair is not None:
        derived = {name: PairDerivedSource(name, src.settings) for name, src in derived.items()}
    clash = sorted(set(files) & set(derived))
    if clash:
        raise ConfigError(f"two synthetic sources are named {clash[0]!r}; set 'name'")
    return ExperimentData(train=train, test=test, sources={**files, **derived})


def run_experiment(
    config: ExperimentConfig,
    run_dir: str | Path | RunDir,
    jobs: int | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> RunOutcome:
    """Run every (cell, seed, classifier) fit not yet in `run_dir`'s results store. Safe to
    kill at any point and rerun: finished fits are kept and skipped. The fits run where
    `executor` puts them (default: as `config.executor` says, locally unless set)."""
    if config.data.task == "multi_label":
        from synthmix.experiment.multi_runner import run_multilabel_experiment

        return run_multilabel_experiment(config, run_dir, jobs, progress)
    run = RunDir.of(run_dir)
    classifiers = known_classifiers(config)
    data = load_experiment_data(config)
    attach_run_dir(data.sources, run)
    cells = plan_cells(config.plans, list(data.sources), source_plans(config, data))
    info = _run_info(config, data, cells)
    _claim_run_dir(run, info)
    write_source_stats(run, generation_stats(config.sources, config.base_dir))
    store = ResultsStore(run)
    done = store.finished_keys()
    # Classifier by classifier: a run killed halfway has the primary classifier's grid complete.
    tasks = [
        (cell, seed, spec)
        for spec in classifiers
        for cell in cells
        for seed in config.seeds_for(cell)
    ]
    todo = [task for task in tasks if result_key(*task) not in done]
    executor = executor or build_executor(
        config.executor, jobs if jobs is not None else config.jobs
    )
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        desc="cells x seeds x classifiers",
        unit="fit",
        disable=not progress,
    )
    # Per record as well as in run.json: a resumed run may run under upgraded packages.
    versions = package_versions()
    stats = GridStats()
    started = time.perf_counter()
    with bar:
        for record in executor.run(todo, data, run, stats):
            store.append({**record, "versions": versions})
            bar.set_postfix_str(
                f"{record['classifier']['label']} {record['cell']['title']} "
                f"F1={record['metrics']['f1_macro']:.3f}"
            )
            bar.update()
    if todo:
        record_timings(run, len(todo), time.perf_counter() - started, stats)
    if any(isinstance(source, JudgedSource) for source in data.sources.values()):
        add_judged_stats(run, store.records())
    add_tuned_stats(run, data.sources)
    return RunOutcome(run.root, total=len(tasks), reused=len(tasks) - len(todo), ran=len(todo))


def schedule(todo: list[Task], requested: int) -> list[tuple[list[Task], int]]:
    """Batches of fits with their worker counts: serial classifiers (torch: one fit already
    uses every core or the GPU) run one at a time after the rest has run in parallel."""
    parallel = [task for task in todo if not runs_serially(task[2].name)]
    serial = [task for task in todo if runs_serially(task[2].name)]
    batches = []
    if parallel:
        batches.append((parallel, _worker_count(requested, len(parallel))))
    if serial:
        if _worker_count(requested, len(serial)) > 1:
            names = ", ".join(dict.fromkeys(task[2].display for task in serial))
            log.warning(
                "%s: one fit at a time (jobs=1), since parallel workers each loading a "
                "transformer would thrash",
                names,
            )
        batches.append((serial, 1))
    return batches


def source_plans(config: ExperimentConfig, data: ExperimentData) -> dict[str, list[str] | None]:
    """Plan restrictions by source name; a file split into several sources passes its
    restriction to each part."""
    restrictions: dict[str, list[str] | None] = {}
    for spec in config.sources:
        if spec.plans is not None:
            unknown = sorted(set(spec.plans) - set(SOURCE_PLANS))
            if unknown:
                raise ConfigError(
                    f"source {spec.name or spec.path!r}: unknown plan {unknown[0]!r} "
                    f"(use {', '.join(SOURCE_PLANS)})"
                )
        base = source_base_name(spec)
        for name in data.sources:
            if name == base or name.startswith(f"{base}:"):
                restrictions[name] = spec.plans
    return restrictions


def known_classifiers(config: ExperimentConfig) -> list[ClassifierConfig]:
    """The classifiers `config` compares, each one the registry knows."""
    classifiers = config.compared_classifiers()
    unknown = [spec.name for spec in classifiers if spec.name not in available_classifiers()]
    if unknown:
        raise ConfigError(
            f"unknown classifier {unknown[0]!r} (available: {', '.join(available_classifiers())})"
        )
    return classifiers


def record_timings(run: RunDir, fits: int, seconds: float, stats: GridStats) -> None:
    """The grid's time and fits/s in run.json: of the latest session that fitted, and
    summed over every session of a resumed run."""
    info = run.read_info()
    timings = info.get("timings")
    before: dict[str, Any] = timings if isinstance(timings, dict) else {}
    info["timings"] = {
        "grid_s": round(seconds, 3),
        "fits": fits,
        "fits_per_s": round(fits / seconds, 3) if seconds > 0 else None,
        "sessions": int(before.get("sessions", 1 if before else 0)) + 1,
        "total_grid_s": round(
            float(before.get("total_grid_s", before.get("grid_s", 0.0))) + seconds, 3
        ),
        "total_fits": int(before.get("total_fits", before.get("fits", 0))) + fits,
        **stats.as_dict(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    run.write_info(info)


def _run_tasks(
    todo: list[Task], data: ExperimentData, workers: int, run: RunDir, stats: GridStats
) -> Iterator[dict[str, Any]]:
    """TF-IDF fits on n-gram counts shared by the whole run (shared_features); the rest fit
    on texts, one cell at a time."""
    shared = [task for task in todo if shared_spec(task[2]) is not None]
    if shared:
        yield from run_shared(shared, data.train, data.test, data.sources, run, workers, stats)
    yield from fit_cells(
        run_cell, [task for task in todo if shared_spec(task[2]) is None], data, workers
    )


def run_cell(
    cell: Cell, seed: int, data: ExperimentData, classifier: ClassifierConfig
) -> dict[str, Any]:
    """Train `classifier` on the cell's mix for one seed and evaluate on the real test set."""
    started = time.perf_counter()
    synthetic = data.sources[cell.source] if cell.source is not None else None
    mix = compose(cell, data.train, synthetic, seed)
    composed = time.perf_counter()
    model = build_classifier(classifier, seed)
    plan = classifier.tuning
    tuning = None
    if plan is None:
        model.fit(mix.data.texts, mix.data.labels)
    else:
        # The cell's training texts only: the test set is scored after, by the refit.
        groups = mix.data.frame[GROUP].to_numpy()
        model, tuning = fit_tuned(model, mix.data.texts, mix.data.labels, plan, seed, groups)
    fitted = time.perf_counter()
    predictions = model.predict(data.test.texts)
    predicted = time.perf_counter()
    mix_summary = {
        "train_size": len(mix.data),
        "real_counts": mix.real_counts,
        "synthetic_counts": mix.synthetic_counts,
        "shortfall": mix.shortfall,
        **({"source_filter": mix.judged} if mix.judged is not None else {}),
    }
    tune_s = tuning.tune_s if tuning is not None else 0.0
    timings = {
        "compose_s": round(composed - started, 4),
        "featurise_s": 0.0,  # inside fit and predict: these classifiers take texts
        "fit_s": round(fitted - composed - tune_s, 4),
        "predict_s": round(predicted - fitted, 4),
        # Cross-validation of a tuned fit, on top of its final fit.
        **({"tune_s": round(tune_s, 4)} if tuning is not None else {}),
    }
    return fit_record(
        cell,
        seed,
        classifier,
        mix_summary,
        np.asarray(predictions),
        data.test.labels,
        data.train.classes,
        timings,
        tuning,
    )


def _worker_count(requested: int, tasks: int) -> int:
    cores = os.cpu_count() or 1
    workers = cores if requested <= 0 else requested
    return max(1, min(workers, tasks))


def _fingerprint(data: LabeledData) -> str:
    digest = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()[:16]


def _describe(data: LabeledData) -> dict[str, Any]:
    return {
        "source": data.source,
        "rows": len(data),
        "class_counts": data.class_counts(),
        "encoding": data.encoding,
        "sha256_16": _fingerprint(data),
    }


# Config keys left out of a run's fingerprint: seeds and classifiers may be added to a finished
# run, and `tune` is part of each classifier's settings (checked per label, see `_settings`).
_PER_CLASSIFIER = ("seeds", "small_real_seeds", "classifier", "classifiers", "tune")


def _run_info(config: ExperimentConfig, data: ExperimentData, cells: list[Cell]) -> dict[str, Any]:
    described = {
        "train": _describe(data.train),
        "test": _describe(data.test),
        "sources": {
            name: _describe(source)
            if isinstance(source, LabeledData)
            else {**_describe(source.data), **source.settings()}
            if isinstance(source, JudgedSource)
            else {
                "source": f"rule-based augmentation per cell, per-class counts: {source.settings}"
            }
            for name, source in data.sources.items()
        },
    }
    # Seeds and classifiers are left out: adding either to a finished run extends it instead
    # of refusing it. A classifier whose settings change under the same label is caught by
    # `_claim_run_dir`.
    common = {k: v for k, v in config.to_dict().items() if k not in _PER_CLASSIFIER}
    classifiers = config.compared_classifiers()
    primary = classifiers[0]
    return {
        "name": config.name,
        "fingerprint": _fingerprint_of({"config": common, "data": described}),
        "config": config.to_dict(),
        "seeds": config.seeds,
        **({"small_real_seeds": config.small_real_seeds} if config.small_real_seeds else {}),
        "classifier": {"name": primary.name, "params": primary.params},
        # With, for TF-IDF, the method: how features and fit are made, which a version may
        # change under the same params (see `_settings`).
        "classifiers": [_with_method(spec) for spec in classifiers],
        "cells": len(cells),
        "data": described,
        "versions": package_versions(),
        "platform": platform.platform(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _with_method(spec: ClassifierConfig) -> dict[str, Any]:
    method = classifier_method(spec)
    return {**spec.describe(), **({"method": method} if method is not None else {})}


def _fingerprint_of(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _legacy_fingerprint(info: dict[str, Any], classifier: dict[str, Any]) -> str:
    """The fingerprint a run written before `classifiers` existed would have for this config:
    its single classifier (name and params) was part of the identity."""
    config = {k: v for k, v in info["config"].items() if k not in _PER_CLASSIFIER}
    config["classifier"] = {"name": classifier.get("name"), "params": classifier.get("params")}
    return _fingerprint_of({"config": config, "data": info["data"]})


def _settings(classifier: dict[str, Any]) -> str:
    # As JSON, so that params read back from run.json (lists) equal the live ones (tuples).
    # The method (how TF-IDF features and fit are made) counts like a param: one recorded
    # before methods were is the per-cell one of that time.
    method = classifier.get(
        "method", legacy_method(classifier.get("name"), classifier.get("params"))
    )
    # A tuned classifier's grid counts too; one recorded before tuning existed was not tuned.
    return json.dumps(
        [classifier.get("name"), classifier.get("params"), method, classifier.get("tune")],
        sort_keys=True,
        ensure_ascii=False,
    )


class RunDirInUse(ConfigError):
    """The run directory holds results of another config or other data."""


def _claim_run_dir(run: RunDir, info: dict[str, Any]) -> None:
    """A run directory belongs to one config and one set of data: resuming it with anything
    else would mix incomparable results in one report. It may gain seeds and classifiers; a
    classifier label keeps the name and params it was first run with. run.json lists every
    classifier the directory holds results of, the current config's first."""
    if run.has_run():
        previous = run.read_info()
        earlier = previous.get("classifiers")
        if isinstance(earlier, list):
            same = previous.get("fingerprint") == info["fingerprint"]
        else:
            # A run from before classifiers could be compared: one classifier, labelled by name.
            old = previous.get("classifier") or {}
            earlier = [{"label": old.get("name"), **old}]
            same = previous.get("fingerprint") == _legacy_fingerprint(info, old)
        settings = {c["label"]: _settings(c) for c in earlier}
        changed = any(
            settings.get(c["label"], _settings(c)) != _settings(c) for c in info["classifiers"]
        )
        if not same or changed:
            raise RunDirInUse(
                f"{run.root}: holds results of a different experiment (config or data changed); "
                "pass another --out or delete that folder"
            )
        current = {c["label"] for c in info["classifiers"]}
        info = {
            **info,
            "classifiers": info["classifiers"] + [c for c in earlier if c["label"] not in current],
            "started_at": previous.get("started_at", info["started_at"]),
            **({"timings": previous["timings"]} if "timings" in previous else {}),
        }
    run.write_info(info)


def measure_source_quality(
    config: ExperimentConfig,
    run_dir: str | Path | RunDir,
    quality: QualityConfig | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[Path]:
    """Quality metrics of every source against the real training data, written to
    RUN_DIR/quality/ for the report's metrics table and its usefulness section. A source
    measured before is skipped; embeddings are cached in RUN_DIR/embeddings.sqlite.

    A derived (rule-based) source is measured on one augmentation of the full training
    set, the same texts its synthetic-only cells train on."""
    quality = quality or QualityConfig()
    run = RunDir.of(run_dir)
    data = load_experiment_data(config)
    encoder = build_encoder(cache_path=run.embeddings_cache)
    executor = executor or build_executor(config.executor, config.jobs)
    todo = {
        name: source for name, source in data.sources.items() if not run.quality_file(name).exists()
    }
    measured = executor.measure(todo, data.train, quality, encoder)
    written = []
    for name, metrics in tqdm(
        measured, total=len(todo), desc="source quality", disable=not progress
    ):
        written.append(write_quality({**metrics, "source_name": name}, run.quality_file(name)))
    return written
