"""The experiment runner: every (cell, seed) of the mixing grid, trained and evaluated on real
test data, each result stored the moment it is finished."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed
from tqdm import tqdm

from synthmix.cards import load_card
from synthmix.classify import ClassifierConfig, build_classifier
from synthmix.config import ExperimentConfig
from synthmix.data import LabeledData, check_test_labels, load_labeled, split_train_test
from synthmix.embeddings import build_encoder
from synthmix.errors import ConfigError
from synthmix.metrics import evaluate
from synthmix.mixing import SOURCE_PLANS, Cell, compose, plan_cells
from synthmix.quality import QualityConfig, measure_quality, write_quality
from synthmix.report import QUALITY_DIR
from synthmix.results import RUN_FILE, ResultsStore, read_run_info, write_run_info
from synthmix.sources import DerivedSource, derived_sources, load_sources

RECORDED_PACKAGES = (
    "synthmix",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "imbalanced-learn",
    "joblib",
    "pymorphy3",
    "torch",
    "transformers",
    "peft",
    "llama_cpp_python",
)


@dataclass(frozen=True)
class ExperimentData:
    train: LabeledData
    test: LabeledData
    sources: dict[str, LabeledData | DerivedSource]


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
    train = load_labeled(
        config.resolve(data.train), data.text_column, data.label_column, data.encoding
    )
    if data.test is None:
        train, test = split_train_test(train, data.test_size, data.split_seed)
    else:
        test = load_labeled(
            config.resolve(data.test), data.text_column, data.label_column, data.encoding
        )
    train.require_classes(2)
    check_test_labels(train, test)
    if config.card is not None:
        load_card(config.resolve(config.card)).check_covers(train, config.card)
    files = load_sources(config.sources, config.base_dir, train)
    derived = derived_sources(config.sources)
    clash = sorted(set(files) & set(derived))
    if clash:
        raise ConfigError(f"two synthetic sources are named {clash[0]!r}; set 'name'")
    return ExperimentData(train=train, test=test, sources={**files, **derived})


def run_experiment(
    config: ExperimentConfig,
    run_dir: str | Path,
    jobs: int | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Run every cell not yet in `run_dir`'s results store. Safe to kill at any point and
    rerun: finished cells are kept and skipped."""
    run_dir = Path(run_dir)
    data = load_experiment_data(config)
    cells = plan_cells(config.plans, list(data.sources), source_plans(config, data))
    info = _run_info(config, data, cells)
    _claim_run_dir(run_dir, info)
    store = ResultsStore(run_dir)
    done = store.finished_keys()
    tasks = [(cell, seed) for cell in cells for seed in config.seeds]
    todo = [(cell, seed) for cell, seed in tasks if result_key(cell, seed) not in done]
    workers = _worker_count(jobs if jobs is not None else config.jobs, len(todo))
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        desc="cells x seeds",
        unit="fit",
        disable=not progress,
    )
    # Per record as well as in run.json: a resumed run may run under upgraded packages.
    versions = package_versions()
    with bar:
        for record in _run_tasks(todo, data, config.classifier, workers):
            store.append({**record, "versions": versions})
            bar.set_postfix_str(f"{record['cell']['title']} F1={record['metrics']['f1_macro']:.3f}")
            bar.update()
    return RunOutcome(run_dir, total=len(tasks), reused=len(tasks) - len(todo), ran=len(todo))


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
        base = spec.name or (Path(spec.path).stem if spec.path else "eda")
        for name in data.sources:
            if name == base or name.startswith(f"{base}:"):
                restrictions[name] = spec.plans
    return restrictions


def result_key(cell: Cell, seed: int) -> str:
    return f"{cell.key}|seed={seed}"


def _run_tasks(
    todo: list[tuple[Cell, int]], data: ExperimentData, classifier: ClassifierConfig, workers: int
) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for cell, seed in todo:
            yield run_cell(cell, seed, data, classifier)
        return
    # Results come back as each fit finishes, so each is stored before the next one ends.
    yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(run_cell)(cell, seed, data, classifier) for cell, seed in todo
    )


def run_cell(
    cell: Cell, seed: int, data: ExperimentData, classifier: ClassifierConfig
) -> dict[str, Any]:
    """Train on the cell's mix for one seed and evaluate on the real test set."""
    started = time.perf_counter()
    synthetic = data.sources[cell.source] if cell.source is not None else None
    mix = compose(cell, data.train, synthetic, seed)
    composed = time.perf_counter()
    model = build_classifier(classifier, seed)
    model.fit(mix.data.texts, mix.data.labels)
    fitted = time.perf_counter()
    predictions = model.predict(data.test.texts)
    predicted = time.perf_counter()
    return {
        "key": result_key(cell, seed),
        "cell_key": cell.key,
        "cell": {
            "plan": cell.plan,
            "real_fraction": cell.real_fraction,
            "synthetic_ratio": cell.synthetic_ratio,
            "synthetic_count": cell.synthetic_count,
            "source": cell.source,
            "title": cell.title,
        },
        "seed": seed,
        "classifier": {"name": classifier.name, "params": classifier.params},
        "train_size": len(mix.data),
        "real_counts": mix.real_counts,
        "synthetic_counts": mix.synthetic_counts,
        "shortfall": mix.shortfall,
        "metrics": evaluate(data.test.labels, predictions.tolist(), data.train.classes),
        "timings": {
            "compose_s": round(composed - started, 4),
            "fit_s": round(fitted - composed, 4),
            "predict_s": round(predicted - fitted, 4),
        },
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


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


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _run_info(config: ExperimentConfig, data: ExperimentData, cells: list[Cell]) -> dict[str, Any]:
    described = {
        "train": _describe(data.train),
        "test": _describe(data.test),
        "sources": {
            name: _describe(source)
            if isinstance(source, LabeledData)
            else {"source": f"rule-based augmentation per cell: {source.settings}"}
            for name, source in data.sources.items()
        },
    }
    # Seeds are left out: adding seeds to a finished run extends it instead of refusing it.
    settings = {k: v for k, v in config.to_dict().items() if k != "seeds"}
    identity = json.dumps(
        {"config": settings, "data": described}, sort_keys=True, ensure_ascii=False
    )
    return {
        "name": config.name,
        "fingerprint": hashlib.sha256(identity.encode()).hexdigest()[:16],
        "config": config.to_dict(),
        "seeds": config.seeds,
        "classifier": {"name": config.classifier.name, "params": config.classifier.params},
        "cells": len(cells),
        "data": described,
        "versions": package_versions(),
        "platform": platform.platform(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _claim_run_dir(run_dir: Path, info: dict[str, Any]) -> None:
    """A run directory belongs to one config and one set of data: resuming it with anything
    else would mix incomparable results in one report."""
    if (run_dir / RUN_FILE).exists():
        previous = read_run_info(run_dir)
        if previous.get("fingerprint") != info["fingerprint"]:
            raise ConfigError(
                f"{run_dir}: holds results of a different experiment (config or data changed); "
                "pass another --out or delete that folder"
            )
        info = {**info, "started_at": previous.get("started_at", info["started_at"])}
    write_run_info(run_dir, info)


def measure_source_quality(
    config: ExperimentConfig,
    run_dir: str | Path,
    quality: QualityConfig | None = None,
    progress: bool = True,
) -> list[Path]:
    """Quality metrics of every source against the real training data, written to
    RUN_DIR/quality/ for the report's metrics table and its usefulness section. A source
    measured before is skipped; embeddings are cached in RUN_DIR/embeddings.sqlite.

    A derived (rule-based) source is measured on one augmentation of the full training
    set, the same texts its synthetic-only cells train on."""
    quality = quality or QualityConfig()
    folder = Path(run_dir) / QUALITY_DIR
    data = load_experiment_data(config)
    encoder = build_encoder(cache_path=Path(run_dir) / "embeddings.sqlite")
    written = []
    for name, source in tqdm(data.sources.items(), desc="source quality", disable=not progress):
        path = folder / f"{_file_safe(name)}.json"
        if path.exists():
            continue
        if not isinstance(source, LabeledData):
            per_class = min(max(data.train.class_counts().values()), quality.sample_size)
            source = source(data.train, per_class, quality.seed)
        metrics = measure_quality(source, data.train, quality, encoder)
        written.append(write_quality({**metrics, "source_name": name}, path))
    return written


def _file_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
