"""Classifier zoo costs, printed as JSON lines.

(a) `grid`: the demo grid (12 cells x 1 seed, shipped CEDR, rule-based EDA source) with
    `embedding_logreg`, counting how many texts get embedded when every cell shares one
    in-memory cache versus a fresh cache per cell, and the wall time of both. Counting uses
    a fast stand-in encoder (bag of hashed words) so the full grid runs in seconds; the real
    USE encoder's cost is then texts x its measured seconds per text (`use_rate`, or
    `--real-grid` to run the shared-cache grid with real USE on a 10% subsample).
(b) `classifier`: fit/predict wall time, F1-macro and peak RSS of each classifier on full
    CEDR (7426 train / 1862 test), each in a fresh subprocess so the peak is its own. The
    transformer runs a tiny randomly initialised 2-layer BERT built here, 1 epoch on CPU: it
    measures the Trainer pipeline, not BERT-base, which needs a GPU (about 7 million
    forward+backward token passes per epoch).

(c) `compare` (only when asked: it takes minutes): a real comparison experiment on the
    shipped CEDR through `run_experiment` with a `classifiers` list: 10% and 100% real and
    10% real + 100% EDA, `--seeds` seeds, each classifier in `--classifiers`; writes the report
    with its "Classifiers compared" section to `--out` (default runs/compare-classifiers) and
    prints per classifier F1-macro (mean ± 95% CI) per cell and the mean fit time. The
    embedding classifiers share OUT/embeddings.sqlite across workers and reruns; the
    transformer is the tiny BERT (pipeline cost, not BERT-base quality). Rerunning resumes.

Run: `python benchmarks/bench_classifiers.py` (grid and classifiers), `--only grid|classifiers`,
or `--only compare [--classifiers ...] [--seeds 3] [--fraction 0.25] [--out DIR]`;
`--cache-path FILE` lets the embedding classifiers reuse vectors across runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthmix.classifiers import (
    EmbeddingLogReg,
    EmbeddingMLP,
    TransformerClassifier,
    register_encoder,
    shared_encoder,
)
from synthmix.classifiers.registry import ClassifierConfig, register_classifier
from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.classifiers.tiny_bert import build_tiny_bert
from synthmix.data.labeled import LabeledData, load_labeled, stratified_fraction
from synthmix.demo import demo_config, demo_data_dir
from synthmix.embeddings.encoder import USEMultilingualEncoder, normalize_rows
from synthmix.experiment.mixing import PlanConfig
from synthmix.experiment.results import ResultsStore, record_classifier
from synthmix.experiment.runner import run_experiment
from synthmix.report import write_report
from synthmix.stats.classification import evaluate, mean_ci

COUNTING = "bench-counting"


class HashEncoder:
    """Fast stand-in for a sentence encoder that counts the texts it is asked to embed."""

    name = "hash-words"

    def __init__(self) -> None:
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        vectors = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, hash(word) % 256] += 1.0
        return normalize_rows(vectors)  # unit rows, like the real encoders


# ----- (a) the grid ----------------------------------------------------------------------


def run_grid(factory: Callable[..., Any], encoder: str, data_dir: Path | None) -> dict[str, float]:
    """Wall time of the demo grid with `factory` as embedding_logreg, and the summed
    per-cell compose/fit/predict times (fit and predict include embedding)."""
    register_classifier("embedding_logreg", factory)
    with tempfile.TemporaryDirectory() as folder:
        config = demo_config(Path(folder), seeds=1)
        if data_dir is not None:
            config.data = dataclasses.replace(
                config.data, train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv")
            )
        config.classifier = ClassifierConfig("embedding_logreg", {"encoder": encoder})
        started = time.perf_counter()
        # One process: the registry of shared encoders lives in the process that fits.
        run_experiment(config, Path(folder) / "run", jobs=1, progress=False)
        wall = time.perf_counter() - started
        records = ResultsStore(Path(folder) / "run").records()
    sums = {
        key: round(sum(r["timings"][key] for r in records), 2)
        for key in ("compose_s", "fit_s", "predict_s")
    }
    return {"cells": len(records), "wall_s": round(wall, 2), **sums}


def fresh_cache_per_cell(counting: HashEncoder) -> Callable[..., EmbeddingLogReg]:
    """A factory that gives every cell an empty cache: embedding per cell, the baseline."""

    def factory(**params: Any) -> EmbeddingLogReg:
        register_encoder(COUNTING, counting)
        return EmbeddingLogReg(**params)

    return factory


def grid_counts(data_dir: Path | None) -> list[dict[str, Any]]:
    rows = []
    for mode in ("shared", "per_cell"):
        counting = HashEncoder()
        register_encoder(COUNTING, counting)
        factory = EmbeddingLogReg if mode == "shared" else fresh_cache_per_cell(counting)
        timings = run_grid(factory, COUNTING, data_dir)
        rows.append(
            {
                "bench": "grid_stand_in_encoder",
                "mode": mode,
                "texts_embedded": counting.texts,
                **timings,
            }
        )
    return rows


def use_rate(texts: list[str]) -> dict[str, Any]:
    """Seconds per text of the real offline encoder, on uncached texts."""
    encoder = USEMultilingualEncoder()
    encoder.encode(texts[:8])  # load the weights outside the timing
    started = time.perf_counter()
    encoder.encode(texts)
    seconds = time.perf_counter() - started
    return {"bench": "use_rate", "texts": len(texts), "s_per_text": round(seconds / len(texts), 4)}


def subsample_dir(folder: Path, fraction: float) -> Path:
    """Stratified `fraction` of the demo train and test files, for a real-encoder grid."""
    for part in ("train", "test"):
        data = load_labeled(demo_data_dir() / f"{part}.csv")
        stratified_fraction(data, fraction, seed=0).frame.to_csv(
            folder / f"{part}.csv", index=False
        )
    return folder


def real_grid(fraction: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        data_dir = subsample_dir(Path(folder), fraction)
        timings = run_grid(EmbeddingLogReg, "use-multilingual", data_dir)
    return {
        "bench": "grid_real_use",
        "mode": "shared",
        "data_fraction": fraction,
        "texts_embedded": shared_encoder().computed,
        **timings,
    }


# ----- (b) one classifier on full CEDR ---------------------------------------------------


def make_classifier(name: str, cache_path: str | None, folder: Path, train: LabeledData) -> Any:
    if name == "tfidf_logreg":
        return TfidfLogReg()
    if name == "embedding_logreg":
        return EmbeddingLogReg(cache_path=cache_path)
    if name == "embedding_mlp":
        return EmbeddingMLP(cache_path=cache_path)
    import torch

    torch.set_num_threads(1)  # a 32-wide model is slower with threads on 2 busy cores
    model = build_tiny_bert(train.texts, folder, vocab_size=4000)
    return TransformerClassifier(
        model=str(model),
        lr=1e-3,
        epochs=1,
        batch_size=32,
        warmup_steps=0,
        max_length=64,
        device="cpu",
    )


def one_classifier(name: str, cache_path: str | None) -> dict[str, Any]:
    train = load_labeled(demo_data_dir() / "train.csv")
    test = load_labeled(demo_data_dir() / "test.csv")
    with tempfile.TemporaryDirectory() as folder:
        model = make_classifier(name, cache_path, Path(folder), train)
        started = time.perf_counter()
        model.fit(train.texts, train.labels)
        fitted = time.perf_counter()
        predicted = model.predict(test.texts)
        done = time.perf_counter()
    row = {
        "bench": "classifier",
        "classifier": name,
        "fit_s": round(fitted - started, 2),
        "predict_s": round(done - fitted, 2),
        "f1_macro": round(evaluate(test.labels, predicted.tolist(), train.classes)["f1_macro"], 3),
        # Linux reports kilobytes.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if name.startswith("embedding"):
        row["texts_embedded_now"] = shared_encoder(cache_path=cache_path).computed
    if name == "transformer":
        row["note"] = "tiny 2-layer BERT, 1 epoch, CPU; BERT-base needs a GPU"
    return row


def classifier_rows(names: list[str], cache_path: str | None) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        command = [sys.executable, __file__, "--one", name]
        if cache_path is not None:
            command += ["--cache-path", cache_path]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    return rows


# ----- (c) a comparison experiment -------------------------------------------------------

TINY_TRANSFORMER = {
    "lr": 1e-3,
    "epochs": 1,
    "batch_size": 32,
    "warmup_steps": 0,
    "max_length": 64,
    "device": "cpu",
}


def comparison_specs(names: list[str], out: Path, train: LabeledData) -> list[ClassifierConfig]:
    cache = {"cache_path": str((out / "embeddings.sqlite").resolve())}
    specs = []
    for name in names:
        if name.startswith("embedding"):
            specs.append(ClassifierConfig(name, cache))
        elif name in ("transformer", "lora"):
            model = out / "tiny-bert"
            if not (model / "config.json").exists():
                build_tiny_bert(train.texts, model, vocab_size=4000)
            params = {"model": str(model.resolve()), **TINY_TRANSFORMER}
            specs.append(ClassifierConfig(name, params, label=f"{name} (tiny BERT)"))
        else:
            specs.append(ClassifierConfig(name))
    return specs


def comparison(names: list[str], out: Path, seeds: int, fraction: float, jobs: int) -> list[Any]:
    out.mkdir(parents=True, exist_ok=True)
    config = demo_config(out, seeds=seeds)
    if fraction < 1:
        data_dir = out / f"data-{fraction:g}"
        data_dir.mkdir(exist_ok=True)
        subsample_dir(data_dir, fraction)
        config.data = dataclasses.replace(
            config.data, train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv")
        )
    config.plans = PlanConfig(
        learning_curve=[0.1, 1.0],
        synthetic_only=False,
        half_and_half=False,
        real_plus_equal=False,
        synthetic_ratios=[1.0],
    )
    train = load_labeled(Path(config.data.train))
    config.classifiers = comparison_specs(names, out, train)
    run_dir = out / "run"
    started = time.perf_counter()
    outcome = run_experiment(config, run_dir, jobs=jobs, progress=False)
    wall = time.perf_counter() - started
    report = write_report(run_dir)
    records = ResultsStore(run_dir).records()
    rows: list[Any] = [
        {
            "bench": "compare",
            "fits_run": outcome.ran,
            "fits_reused": outcome.reused,
            "wall_s": round(wall, 1),
            "report": str(report.html),
        }
    ]
    for spec in config.classifiers:
        mine = [r for r in records if record_classifier(r) == spec.display]
        row: dict[str, Any] = {
            "bench": "compare",
            "classifier": spec.display,
            "mean_fit_s": round(sum(r["timings"]["fit_s"] for r in mine) / len(mine), 2),
        }
        for cell in dict.fromkeys(r["cell"]["title"] for r in mine):
            estimate = mean_ci(
                [r["metrics"]["f1_macro"] for r in mine if r["cell"]["title"] == cell]
            )
            half = (estimate.high - estimate.low) / 2
            row[f"f1[{cell}]"] = f"{estimate.mean:.3f} ± {half:.3f}"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["grid", "classifiers", "compare"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--cache-path", default=None)
    parser.add_argument("--real-grid", type=float, default=0.0, metavar="FRACTION")
    parser.add_argument(
        "--classifiers",
        nargs="+",
        default=["tfidf_logreg", "embedding_logreg", "embedding_mlp", "transformer"],
    )
    parser.add_argument("--out", type=Path, default=Path("runs/compare-classifiers"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=0)
    args = parser.parse_args()
    if args.only == "compare":
        for row in comparison(args.classifiers, args.out, args.seeds, args.fraction, args.jobs):
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return
    if args.one:
        print(json.dumps(one_classifier(args.one, args.cache_path)))
        return
    if args.only in (None, "grid"):
        for row in grid_counts(None):
            print(json.dumps(row), flush=True)
        sample = load_labeled(demo_data_dir() / "test.csv").texts[:200]
        print(json.dumps(use_rate(sample)), flush=True)
        if args.real_grid:
            print(json.dumps(real_grid(args.real_grid)), flush=True)
    if args.only in (None, "classifiers"):
        for row in classifier_rows(args.classifiers, args.cache_path):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
