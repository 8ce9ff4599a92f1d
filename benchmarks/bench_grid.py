"""A devlog-sized mixing grid with `tfidf_logreg`, on n-gram counts shared by the whole run,
next to today's per-cell path (TfidfVectorizer fitted in every cell, saga tol 1e-3, max_iter
1000) timed on a sample of the same grid's cells in the same run; F1-macro parity of the two
paths on CEDR and RuSentiment; peak memory.

The grid: a 10k-text stratified sample of the shared RuSentiment training set is the real
data; 36 file sources (6 "generators" x 3 "prompts" x 2 "temperatures", split from one file
by provenance columns) stand in for generated ones. They are *sampled real texts*: held-out
RuSentiment training texts (not in the 10k sample), a share of each class's texts drawn from
other classes but labelled as this one (0-27.5% by generator and temperature), so sources
differ in quality the way generators do. Because they are resampled from one 14k-text pool,
the run has about 27k distinct texts; real generated sources would all be distinct, and the
featurising throughput printed below tells what that adds. Plans: learning curve (5%, 10%,
20%, 50%, 100%), small real 10% + 25/50/75/100% synthetic, half and half, real plus equal,
synthetic only; 3 seeds.

Times are CPU seconds of this process and its workers as well as wall seconds: on a shared
machine the wall clock measures the neighbours. The devlog grid's time on idle cores is
estimated from the CPU a run used (on the whole grid or a slice: `--sources 6 --seeds 1`),
each plan's mean CPU per fit times its fits in the 36-source, 3-seed grid, over the
workers; the old path's the same way from its sampled fits.

Run: `make bench`, or `python benchmarks/bench_grid.py --sources 4 --seeds 1 --old-fits 3
--no-parity` for a quick look. Targets (issue 14): under 5 minutes on 2 cores, peak memory
under 4 GB, F1-macro within 0.005 of the old path.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from synthmix.classifiers.features import NgramSpec
from synthmix.classifiers.registry import ClassifierConfig
from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.data.labeled import LabeledData, load_labeled, stratified_fraction
from synthmix.experiment.config import DataConfig, ExperimentConfig
from synthmix.experiment.mixing import REAL_ONLY, Cell, PlanConfig, compose, plan_cells
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import read_run_info
from synthmix.experiment.runner import load_experiment_data, run_cell, run_experiment
from synthmix.experiment.sources import SourceConfig
from synthmix.stats.classification import evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
GENERATORS, PROMPTS, TEMPERATURES = 6, ("zero-shot", "few-shot", "fskw"), (0.7, 1.0)
# Today's path: what `tfidf_logreg` did before counts were shared.
OLD = {"features": "per_cell", "tol": 1e-3, "max_iter": 1000}


def dataset(name: str) -> Path:
    folder = SHARED / name
    if not folder.exists():
        folder = Path("/work/shared/datasets") / name
    return folder


def stand_in_sources(pool: LabeledData, real: LabeledData, count: int, seed: int) -> pd.DataFrame:
    """`count` sources of sampled held-out real texts, each class's share of other classes'
    texts growing with the generator and the temperature. No text appears twice in a source:
    one text under two labels makes saga crawl (see TfidfLogReg), and generators seldom
    write the same text for two classes."""
    rng = np.random.default_rng(seed)
    texts = pool.frame["text"].to_numpy()
    labels = pool.frame["label"].to_numpy()
    wanted = real.class_counts()
    parts = []
    for index in range(count):
        generator, rest = divmod(index, len(PROMPTS) * len(TEMPERATURES))
        prompt, temperature = divmod(rest, len(TEMPERATURES))
        noise = 0.05 * generator + 0.025 * temperature
        order = rng.permutation(len(texts))
        own = {label: order[labels[order] == label] for label in wanted}
        wrong = {label: round(noise * n) for label, n in wanted.items()}
        taken = {label: own[label][: wanted[label] - wrong[label]] for label in wanted}
        spare = np.setdiff1d(order, np.concatenate(list(taken.values())))
        spare = rng.permutation(spare)
        for label in wanted:
            other = spare[labels[spare] != label][: wrong[label]]
            spare = np.setdiff1d(spare, other, assume_unique=True)
            rows = np.concatenate([taken[label], other])
            parts.append(
                pd.DataFrame(
                    {
                        "text": texts[rows],
                        "label": label,
                        "generator": f"gen{generator}",
                        "strategy": PROMPTS[prompt],
                        "temperature": TEMPERATURES[temperature],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def grid_config(
    folder: Path, sources: int, seeds: int, params: dict[str, Any] | None = None
) -> ExperimentConfig:
    train = load_labeled(dataset("rusentiment") / "train.csv")
    real = stratified_fraction(train, 10_000 / len(train), seed=0)
    pool = LabeledData(
        train.frame[~train.frame["text"].isin(set(real.texts))].reset_index(drop=True), "pool"
    )
    real.frame[["text", "label"]].to_csv(folder / "train.csv", index=False)
    stand_in_sources(pool, real, sources, seed=1).to_csv(folder / "sources.csv", index=False)
    return ExperimentConfig(
        name="bench-grid",
        data=DataConfig(train="train.csv", test=str(dataset("rusentiment") / "test.csv")),
        sources=[
            SourceConfig(
                path="sources.csv",
                name="stand-in",
                split_by=["generator", "strategy", "temperature"],
            )
        ],
        plans=PlanConfig(),
        seeds=list(range(seeds)),
        classifier=ClassifierConfig(params=dict(params or {})),
        base_dir=folder,
    )


class PeakMemory:
    """Peak proportional set size (shared pages split between the processes sharing them)
    of this process and its children, sampled every 0.5 s; and the CPU seconds they used
    (`cpu_s`, a worker's last 0.5 s before it exits excepted, and this sampler's own: reading
    /proc/PID/smaps of every process twice a second costs a few percent of a core)."""

    def __init__(self) -> None:
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._own = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once(memory=False)

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu[pid] - self._start.get(pid, 0.0) for pid in self._cpu) - self._own

    def _sample(self) -> None:
        # Processes alive before (reused joblib workers) count from now on.
        self._sample_once(memory=False)
        self._start = dict(self._cpu)
        while not self._stop.is_set():
            self._sample_once(memory=True)
            self._own = time.thread_time()
            self._stop.wait(0.5)

    def _sample_once(self, memory: bool) -> None:
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                times = process.cpu_times()
                self._cpu[process.pid] = times.user + times.system
                if memory:
                    total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak = max(self.peak, total)


def full_grid_fits(config: ExperimentConfig, sources: int, seeds: int) -> dict[str, int]:
    """Fits per plan of the devlog-sized grid (`sources` sources, `seeds` seeds)."""
    cells = plan_cells(config.plans, [f"source{i}" for i in range(sources)])
    fits: dict[str, int] = {}
    for cell in cells:
        fits[cell.plan] = fits.get(cell.plan, 0) + seeds
    return fits


def counting_cpu_s(config: ExperimentConfig, texts: int, sample: int = 3000) -> float:
    """CPU seconds to count the n-grams of `texts` texts, from a timed sample of them."""
    train = load_experiment_data(config).train.texts[:sample]
    started = time.process_time()
    NgramSpec().counts(train)
    return (time.process_time() - started) * texts / len(train)


def time_grid(
    config: ExperimentConfig, run_dir: Path, jobs: int, full: dict[str, int]
) -> dict[str, Any]:
    """The grid run with `jobs` workers: wall time (which, on a shared machine, measures the
    neighbours too) and CPU time of this process and its workers. The estimate for `full`
    on idle cores: the CPU of counting the texts, plus each plan's mean CPU per fit times
    its fits in `full`, over `jobs` (assuming perfect scaling over workers; the slice's
    CPU split over its fits in proportion to their recorded stage times)."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        outcome = run_experiment(config, run_dir, jobs=jobs, progress=False)
        wall = time.perf_counter() - started
    records = ResultsStore(run_dir).records()
    timings = read_run_info(run_dir).get("timings", {})
    parts = {
        part: round(sum(r["timings"][part] for r in records), 1)
        for part in ("compose_s", "featurise_s", "fit_s", "predict_s")
    }
    counting = counting_cpu_s(config, int(timings.get("texts_featurised") or 0))
    fitting = max(memory.cpu_s - counting, 0.0)
    share = np.array([sum(r["timings"].values()) for r in records])
    per_fit = fitting * share / share.sum()
    by_plan: dict[str, list[float]] = {}
    for record, cpu in zip(records, per_fit, strict=True):
        by_plan.setdefault(record["cell"]["plan"], []).append(float(cpu))
    estimate = counting + sum(fits * float(np.mean(by_plan[plan])) for plan, fits in full.items())
    return {
        "fits": outcome.ran,
        "cells": len({r["cell_key"] for r in records}),
        "wall_s": round(wall, 1),
        "fits_per_s": round(outcome.ran / wall, 2),
        "cpu_s": round(memory.cpu_s, 1),
        "cpu_s_per_fit": round(fitting / len(records), 3),
        "counting_cpu_s": round(counting, 1),
        "peak_memory_gb": round(memory.peak / 2**30, 2),
        "texts_featurised": timings.get("texts_featurised"),
        "featurise_s": timings.get("featurise_s"),
        "summed_per_fit_s": parts,
        "full_grid_fits": sum(full.values()),
        "estimated_full_grid_s": round(estimate / jobs, 1),
        "estimated_full_fits_per_s": round(sum(full.values()) / (estimate / jobs), 2),
    }


def time_old_path(
    config: ExperimentConfig, run_dir: Path, per_plan: int, jobs: int, full: dict[str, int]
) -> dict[str, Any]:
    """Today's per-cell path on `per_plan` cells of each plan (random source and seed), in
    CPU seconds (one process, one thread), extrapolated to the grid `full` as (fits of the
    plan) x (mean CPU of its sampled fits) over `jobs` workers, i.e. assuming the old path
    scaled perfectly over workers."""
    data = load_experiment_data(config)
    cells = plan_cells(config.plans, list(data.sources))
    new = {(r["cell_key"], r["seed"]): r for r in ResultsStore(run_dir).records()}
    rng = np.random.default_rng(0)
    old = ClassifierConfig(params=OLD)
    estimate, sampled = 0.0, []
    for plan in dict.fromkeys(cell.plan for cell in cells):
        mine = [cell for cell in cells if cell.plan == plan]
        seconds = []
        for index in rng.choice(len(mine), size=min(per_plan, len(mine)), replace=False):
            cell, seed = mine[int(index)], int(rng.choice(config.seeds))
            started = time.process_time()
            record = run_cell(cell, seed, data, old)
            seconds.append(time.process_time() - started)
            fresh = new.get((cell.key, seed))
            sampled.append(
                {
                    "cell": cell.key,
                    "seed": seed,
                    "old_cpu_s": round(seconds[-1], 2),
                    "old_f1": round(record["metrics"]["f1_macro"], 4),
                    "new_f1": round(fresh["metrics"]["f1_macro"], 4) if fresh else None,
                }
            )
        estimate += full.get(plan, 0) * float(np.mean(seconds))
    return {"estimated_full_grid_s": round(estimate / jobs, 1), "sampled_fits": sampled}


def parity(seeds: int, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Mean F1-macro over seeds of the old and the new path (`params` over the defaults) at
    10% and 100% real, on the full test sets."""
    rows = []
    rusentiment = load_labeled(dataset("rusentiment") / "train.csv")
    # RuSentiment's 100% is the grid's real data, the 10k-text sample (the full 24k-text
    # set would add minutes of old-path fits for no other question).
    sample = stratified_fraction(rusentiment, 10_000 / len(rusentiment), seed=0)
    for name, train in (
        ("cedr_emotions", load_labeled(dataset("cedr_emotions") / "train.csv")),
        ("rusentiment", sample),
    ):
        test = load_labeled(dataset(name) / "test.csv")
        for fraction in (0.1, 1.0):
            scores: dict[str, list[float]] = {"old": [], "new": []}
            for seed in range(seeds):
                mix = compose(Cell(REAL_ONLY, fraction), train, None, seed).data
                for path, chosen in (("old", OLD), ("new", params or {})):
                    model = TfidfLogReg(random_state=seed, **chosen).fit(mix.texts, mix.labels)
                    predicted = model.predict(test.texts).tolist()
                    scores[path].append(evaluate(test.labels, predicted, train.classes)["f1_macro"])
            old, new = float(np.mean(scores["old"])), float(np.mean(scores["new"]))
            rows.append(
                {
                    "dataset": name,
                    "real": f"{fraction:.0%} ({len(mix)} texts)",
                    "old_f1": round(old, 4),
                    "new_f1": round(new, 4),
                    "diff": round(new - old, 4),
                    "within_0.005": abs(new - old) <= 0.005,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=36)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--old-fits", type=int, default=1, help="sampled old-path fits per plan")
    parser.add_argument("--parity-seeds", type=int, default=3)
    parser.add_argument("--no-parity", action="store_true")
    parser.add_argument("--parity-only", action="store_true")
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help="tfidf_logreg params of the new path, as JSON (e.g. '{\"tol\": 0.05}')",
    )
    args = parser.parse_args()
    if args.parity_only:
        parity(args.parity_seeds, args.params)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = grid_config(folder, args.sources, args.seeds, args.params)
        full = full_grid_fits(config, 36, 3)
        grid = time_grid(config, folder / "run", args.jobs, full)
        print(json.dumps({"grid": grid}), flush=True)
        new_s = grid["estimated_full_grid_s"]
        versus = "--old-fits 0: today's per-cell path not sampled"
        if args.old_fits > 0:
            old = time_old_path(config, folder / "run", args.old_fits, args.jobs, full)
            for row in old["sampled_fits"]:
                print(json.dumps({"old_path_sample": row}), flush=True)
            old_s = old["estimated_full_grid_s"]
            versus = (
                f"today's per-cell path, from {len(old['sampled_fits'])} sampled cells: "
                f"~{old_s:.0f} s; ratio {old_s / new_s:.1f}x"
            )
        print(
            f"ran {grid['fits']} fits ({grid['cells']} cells) in {grid['wall_s']:.0f} s wall "
            f"({grid['fits_per_s']} fits/s) with {args.jobs} workers, {grid['cpu_s']:.0f} CPU s "
            f"({grid['cpu_s_per_fit']} per fit, {grid['counting_cpu_s']} s counting "
            f"{grid['texts_featurised']} distinct texts); peak memory {grid['peak_memory_gb']} GB"
        )
        print(
            f"devlog grid ({grid['full_grid_fits']} fits: 36 sources, 3 seeds) on {args.jobs} "
            f"idle cores, from CPU time: ~{new_s:.0f} s ({grid['estimated_full_fits_per_s']} "
            f"fits/s; target 300 s); {versus}"
        )
    if not args.no_parity:
        parity(args.parity_seeds, args.params)


if __name__ == "__main__":
    main()
