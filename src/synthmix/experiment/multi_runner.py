"""The experiment runner for multi-label tasks (`data.task: multi_label`).

The same grid as the single-label runner (plans, seeds, classifiers, a resumable results
store, run.json), with per-label mixing (`multimix`), multi-label classifiers (one label
list per text) and multi-label metrics (`stats.multilabel`): a record's `f1_macro` is the
macro-F1 over labels and `accuracy` the subset accuracy, so the report's headline, ranking
and per-label heatmap read these runs unchanged; micro/samples F1 and Hamming loss sit
beside them. Texts of a text-pair task reach the classifiers as joined pairs (data.pairs).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from tqdm import tqdm

from synthmix.cards.card import load_card
from synthmix.classifiers.registry import (
    ClassifierConfig,
    build_classifier,
)
from synthmix.core.errors import ConfigError
from synthmix.core.provenance import package_versions
from synthmix.data.multilabel import (
    MultiLabelData,
    check_test_labels,
    load_multilabel,
    summary_lines,
)
from synthmix.data.pairs import join_pairs
from synthmix.experiment.config import ExperimentConfig
from synthmix.experiment.mixing import Cell, plan_cells
from synthmix.experiment.multimix import GROUP, MultiLabelDeriver, compose_multilabel
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.runner import (
    _PER_CLASSIFIER,
    RunOutcome,
    _claim_run_dir,
    _fingerprint_of,
    _with_method,
    known_classifiers,
    record_timings,
    schedule,
    source_plans,
)
from synthmix.experiment.shared_features import GridStats, result_key
from synthmix.experiment.sources import derived_sources
from synthmix.experiment.task_sources import MultiLabelAugment, load_multilabel_sources
from synthmix.experiment.workers import fit_cells
from synthmix.stats.multilabel import evaluate_multilabel

log = logging.getLogger("synthmix")


@dataclass(frozen=True)
class MultiLabelExperimentData:
    train: MultiLabelData
    test: MultiLabelData
    sources: dict[str, MultiLabelData | MultiLabelAugment]


def load_multilabel_experiment_data(config: ExperimentConfig) -> MultiLabelExperimentData:
    """Everything loaded and cross-checked before the first fit (as the single-label
    runner does): bad rows, unknown test labels and sources fail in the first second."""
    data = config.data
    columns = (data.text_column, data.labels_column, data.label_delimiter, data.text_pair_column)
    train = load_multilabel(config.resolve(data.train), *columns, encoding=data.encoding)
    if data.test is None:
        train, test = split_multilabel(train, data.test_size, data.split_seed)
    else:
        test = load_multilabel(config.resolve(data.test), *columns, encoding=data.encoding)
    train.require_classes(2)
    check_test_labels(train, test)
    if config.card is not None:
        card = load_card(config.resolve(config.card))
        missing = sorted(set(train.classes) - set(card.class_names))
        if missing:
            raise ConfigError(
                f"{config.card}: no class for label(s) {', '.join(map(repr, missing))} "
                f"found in {train.source}"
            )
    files = load_multilabel_sources(config.sources, config.base_dir, train, *columns[1:])
    derived = {
        name: MultiLabelAugment(source) for name, source in derived_sources(config.sources).items()
    }
    clash = sorted(set(files) & set(derived))
    if clash:
        raise ConfigError(f"two synthetic sources are named {clash[0]!r}; set 'name'")
    for line in summary_lines(train, top_pairs=5):
        log.info("%s: %s", train.source, line)
    return MultiLabelExperimentData(train=train, test=test, sources={**files, **derived})


def split_multilabel(
    data: MultiLabelData, test_size: float, seed: int
) -> tuple[MultiLabelData, MultiLabelData]:
    """A held-out test set with each label's share kept (iterative stratification)."""
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train_rows, test_rows = next(splitter.split(np.zeros(len(data)), data.indicator(data.classes)))
    train, test = data.subset(np.sort(train_rows)), data.subset(np.sort(test_rows))
    return (
        MultiLabelData(train.frame, f"{data.source} (train split)", data.encoding),
        MultiLabelData(test.frame, f"{data.source} (test split)", data.encoding),
    )


def model_texts(data: MultiLabelData) -> list[str]:
    """What a classifier reads: the texts, or for a text-pair task the joined pairs."""
    pairs = data.pairs
    return data.texts if pairs is None else join_pairs(data.texts, pairs)


def check_multilabel_classifier(spec: ClassifierConfig) -> None:
    model = build_classifier(spec, 0)
    if not getattr(model, "multi_label", False):
        raise ConfigError(
            f"classifier {spec.display!r} predicts one label per text; a multi_label task "
            "needs a multi-label classifier (e.g. tfidf_ovr)"
        )


def run_multilabel_experiment(
    config: ExperimentConfig,
    run_dir: str | Path | RunDir,
    jobs: int | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Every (cell, seed, classifier) fit not yet in `run_dir`, as `run_experiment`."""
    run = RunDir.of(run_dir)
    classifiers = known_classifiers(config)
    for spec in classifiers:
        check_multilabel_classifier(spec)
    data = load_multilabel_experiment_data(config)
    cells = plan_cells(config.plans, list(data.sources), source_plans(config, data))  # type: ignore[arg-type]
    info = _run_info(config, data, cells)
    _claim_run_dir(run, info)
    store = ResultsStore(run)
    done = store.finished_keys()
    tasks = [
        (cell, seed, spec)
        for spec in classifiers
        for cell in cells
        for seed in config.seeds_for(cell)
    ]
    todo = [task for task in tasks if result_key(*task) not in done]
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        desc="cells x seeds x classifiers",
        unit="fit",
        disable=not progress,
    )
    versions = package_versions()
    started = time.perf_counter()
    with bar:
        # Transformer heads run one fit at a time after the rest, as in the single-label grid.
        for batch, workers in schedule(todo, jobs if jobs is not None else config.jobs):
            for record in fit_cells(run_multilabel_cell, batch, data, workers):
                store.append({**record, "versions": versions})
                bar.set_postfix_str(
                    f"{record['classifier']['label']} {record['cell']['title']} "
                    f"micro-F1={record['metrics']['f1_micro']:.3f}"
                )
                bar.update()
    if todo:
        record_timings(run, len(todo), time.perf_counter() - started, GridStats())
    return RunOutcome(run.root, total=len(tasks), reused=len(tasks) - len(todo), ran=len(todo))


def run_multilabel_cell(
    cell: Cell, seed: int, data: MultiLabelExperimentData, classifier: ClassifierConfig
) -> dict[str, Any]:
    """Train on the cell's mix for one seed; evaluate on the real test set."""
    started = time.perf_counter()
    source = data.sources[cell.source] if cell.source is not None else None
    synthetic: MultiLabelData | MultiLabelDeriver | None = source
    mix = compose_multilabel(cell, data.train, synthetic, seed)
    composed = time.perf_counter()
    model: Any = build_classifier(classifier, seed)
    if "groups" in inspect.signature(model.fit).parameters:
        model.fit(model_texts(mix.data), mix.data.label_sets, groups=mix.data.frame[GROUP].tolist())
    else:
        model.fit(model_texts(mix.data), mix.data.label_sets)
    fitted = time.perf_counter()
    classes = data.train.classes
    predicted = _aligned(model.predict_indicator(model_texts(data.test)), model.classes_, classes)
    done = time.perf_counter()
    metrics = evaluate_multilabel(data.test.indicator(classes), predicted, classes)
    return {
        "key": result_key(cell, seed, classifier),
        "cell_key": cell.key,
        "cell": cell.describe(),
        "seed": seed,
        "classifier": classifier.describe(),
        "train_size": len(mix.data),
        "real_counts": mix.real_counts,
        "synthetic_counts": mix.synthetic_counts,
        "shortfall": mix.shortfall,
        "metrics": metrics,
        # Per test text, the indices (into metrics.classes) of the predicted labels.
        "label_predictions": [np.flatnonzero(row).tolist() for row in predicted],
        "timings": {
            "compose_s": round(composed - started, 4),
            "featurise_s": 0.0,
            "fit_s": round(fitted - composed, 4),
            "predict_s": round(done - fitted, 4),
        },
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _aligned(predicted: np.ndarray, model_classes: Any, classes: list[str]) -> np.ndarray:
    """Predictions in the training data's label order: a mix (synthetic-only) may lack a
    label the full training data has, which the model then never predicts."""
    out = np.zeros((predicted.shape[0], len(classes)), dtype=np.int8)
    column = {label: j for j, label in enumerate(classes)}
    for k, label in enumerate(list(model_classes)):
        if label in column:
            out[:, column[label]] = predicted[:, k]
    return out


def _fingerprint(data: MultiLabelData) -> str:
    digest = hashlib.sha256()
    pairs: list[str | None] = [None] * len(data) if data.pairs is None else list(data.pairs)
    for text, labels, pair in zip(data.texts, data.label_sets, pairs, strict=True):
        line = json.dumps([list(labels), text, pair], ensure_ascii=False)
        digest.update(f"{line}\n".encode())
    return digest.hexdigest()[:16]


def _describe(data: MultiLabelData) -> dict[str, Any]:
    summary = data.summary(top_pairs=10)
    return {
        "source": data.source,
        "rows": len(data),
        "class_counts": data.label_counts(),
        "rows_without_label": summary["rows_without_label"],
        "rows_with_several_labels": summary["rows_with_several_labels"],
        "cooccurrence": summary["cooccurrence"],
        "encoding": data.encoding,
        "sha256_16": _fingerprint(data),
    }


def _run_info(
    config: ExperimentConfig, data: MultiLabelExperimentData, cells: list[Cell]
) -> dict[str, Any]:
    described = {
        "train": _describe(data.train),
        "test": _describe(data.test),
        "sources": {
            name: _describe(source)
            if isinstance(source, MultiLabelData)
            else {"source": f"rule-based augmentation per cell and label set: {source.settings}"}
            for name, source in data.sources.items()
        },
    }
    common = {k: v for k, v in config.to_dict().items() if k not in _PER_CLASSIFIER}
    classifiers = config.compared_classifiers()
    return {
        "name": config.name,
        "task": "multi_label",
        "fingerprint": _fingerprint_of({"config": common, "data": described}),
        "config": config.to_dict(),
        "seeds": config.seeds,
        **({"small_real_seeds": config.small_real_seeds} if config.small_real_seeds else {}),
        "classifier": {"name": classifiers[0].name, "params": classifiers[0].params},
        "classifiers": [_with_method(spec) for spec in classifiers],
        "cells": len(cells),
        "data": described,
        "versions": package_versions(),
        "platform": platform.platform(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
