"""Solvers and tolerances for `tfidf_logreg` on the hashed TF-IDF features, side by side:
CPU seconds per fit as a ratio to saga at tol 1e-3 on float64 (today's per-cell path's
solver), and mean F1-macro over seeds as a difference to it, on CEDR and a 10k-text
RuSentiment sample at 10% and 100% real; then warm starts: a small-real cell's fit started
from the coefficients of the cell with the next smaller synthetic share (same source, seed
and real sample), epochs and F1 next to a cold start.

CPU time (process time), not wall time: on a shared machine the wall clock measures the
neighbours. Run: `python benchmarks/bench_solvers.py` (about 5 minutes on 2 idle cores);
`--seeds 1 --solvers sag3e-2,saga1e-2` for a quick look.

Measured (3 seeds, a busy 2-core machine, F1 difference to saga 1e-3 on float64): sag at tol
3e-2 (the default) -0.0014 to +0.0032 at 3.2-3.8x its speed; 5e-2 -0.0029 to 0.0000 at
3.9-5.1x (13-30% less CPU than 3e-2, fewest epochs on CEDR at 100%); 4e-2 between.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier

from synthmix.classifiers.features import NgramSpec, TfidfWeights
from synthmix.data.labeled import LabeledData, load_labeled, stratified_fraction
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_SYNTHETIC, Cell, compose
from synthmix.stats.classification import evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
REFERENCE = "saga1e-3/f64"


def dataset(name: str) -> Path:
    folder = SHARED / name
    return folder if folder.exists() else Path("/work/shared/datasets") / name


def _lr(solver: str, tol: float, max_iter: int = 100) -> Callable[[int], ClassifierMixin]:
    return lambda seed: LogisticRegression(
        C=10.0,
        solver=solver,
        tol=tol,
        max_iter=max_iter,
        class_weight="balanced",
        random_state=seed,
    )


# name -> (model for a seed, fit on float64 rather than the default float32 features)
SOLVERS: dict[str, tuple[Callable[[int], ClassifierMixin], bool]] = {
    REFERENCE: (_lr("saga", 1e-3, 1000), True),
    "saga1e-2/f64": (_lr("saga", 1e-2), True),  # the previous default
    "saga1e-2": (_lr("saga", 1e-2), False),
    "sag3e-2": (_lr("sag", 3e-2), False),  # the default
    "sag4e-2": (_lr("sag", 4e-2), False),
    "sag5e-2": (_lr("sag", 5e-2), False),
    "lbfgs1e-3": (_lr("lbfgs", 1e-3, 1000), False),
    "liblinear-ovr": (
        lambda seed: OneVsRestClassifier(
            LogisticRegression(
                C=10.0, solver="liblinear", dual=True, class_weight="balanced", random_state=seed
            )
        ),
        False,
    ),
    "sgd-avg": (
        lambda seed: SGDClassifier(
            loss="log_loss",
            alpha=1e-5,
            class_weight="balanced",
            max_iter=30,
            average=True,
            random_state=seed,
        ),
        False,
    ),
}


def problems(
    seeds: int,
) -> list[tuple[str, float, int, Any, Any, np.ndarray, list[str], list[str]]]:
    spec = NgramSpec()
    out = []
    for name in ("cedr_emotions", "rusentiment"):
        train = load_labeled(dataset(name) / "train.csv")
        if len(train) > 10_000:
            train = stratified_fraction(train, 10_000 / len(train), seed=0)
        test = load_labeled(dataset(name) / "test.csv")
        test_counts = spec.counts(test.texts)
        for fraction in (0.1, 1.0):
            for seed in range(seeds):
                mix = compose(Cell(REAL_ONLY, fraction), train, None, seed).data
                counts = spec.counts(mix.texts)
                weights = TfidfWeights.fit(counts, spec.n_features)
                out.append(
                    (
                        name,
                        fraction,
                        seed,
                        weights.transform(counts),
                        weights.transform(test_counts),
                        np.asarray(mix.labels, dtype=object),
                        test.labels,
                        train.classes,
                    )
                )
    return out


def epochs(model: Any) -> int | None:
    if isinstance(model, OneVsRestClassifier):
        return None
    return int(np.max(model.n_iter_))


def compare_solvers(names: list[str], seeds: int) -> list[dict[str, Any]]:
    scores: dict[tuple[str, float, str], list[float]] = {}
    cpu: dict[tuple[str, float, str], float] = {}
    runs: dict[tuple[str, float, str], list[int | None]] = {}
    for name, fraction, seed, x, x_test, y, gold, classes in problems(seeds):
        for solver in names:
            make, f64 = SOLVERS[solver]
            train, test = (x.astype(np.float64), x_test.astype(np.float64)) if f64 else (x, x_test)
            model = make(seed)
            started = time.process_time()
            model.fit(train, y)
            key = (name, fraction, solver)
            cpu[key] = cpu.get(key, 0.0) + time.process_time() - started
            runs.setdefault(key, []).append(epochs(model))
            predicted = model.predict(test).tolist()
            scores.setdefault(key, []).append(evaluate(gold, predicted, classes)["f1_macro"])
    rows = []
    for name, fraction, solver in scores:
        ref = (name, fraction, REFERENCE)
        key = (name, fraction, solver)
        rows.append(
            {
                "dataset": name,
                "real": f"{fraction:.0%}",
                "solver": solver,
                "f1": round(float(np.mean(scores[key])), 4),
                "f1_diff": round(
                    float(np.mean(scores[key]) - np.mean(scores.get(ref, [np.nan]))), 4
                ),
                "cpu_s_per_fit": round(cpu[key] / seeds, 3),
                "speed_vs_reference": round(cpu[ref] / cpu[key], 2) if ref in cpu else None,
                "epochs": runs[key],
            }
        )
    return rows


def _columns_init(
    previous: tuple[np.ndarray, np.ndarray, np.ndarray], weights: TfidfWeights
) -> tuple[np.ndarray, np.ndarray]:
    """The previous fit's coefficients on this fit's columns (zero where it had none)."""
    columns, coef, intercept = previous
    init = np.zeros((coef.shape[0], weights.n_columns), dtype=coef.dtype)
    _, mine, theirs = np.intersect1d(weights.columns, columns, return_indices=True)
    init[:, mine] = coef[:, theirs]
    return init, intercept.copy()


def warm_starts(seeds: int) -> list[dict[str, Any]]:
    """10% real + 25/50/75/100% of a stand-in source (held-out RuSentiment training texts),
    each fit after the first warm-started from the one before (sag, tol 3e-2)."""
    spec = NgramSpec()
    train = load_labeled(dataset("rusentiment") / "train.csv")
    real = stratified_fraction(train, 10_000 / len(train), seed=0)
    pool = LabeledData(
        train.frame[~train.frame["text"].isin(set(real.texts))].reset_index(drop=True), "pool"
    )
    test = load_labeled(dataset("rusentiment") / "test.csv")
    test_counts = spec.counts(test.texts)
    rows = []
    for seed in range(seeds):
        previous = None
        for ratio in (0.25, 0.5, 0.75, 1.0):
            mix = compose(Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, ratio, "pool"), real, pool, seed)
            counts = spec.counts(mix.data.texts)
            weights = TfidfWeights.fit(counts, spec.n_features)
            x, x_test = weights.transform(counts), weights.transform(test_counts)
            labels = np.asarray(mix.data.labels, dtype=object)
            row: dict[str, Any] = {"seed": seed, "ratio": ratio, "rows": len(labels)}
            fits = {"cold": None} if previous is None else {"cold": None, "warm": previous}
            for how, init in fits.items():
                model, seconds = _fit_sag(x, labels, seed, init, weights)
                predicted = model.predict(x_test).tolist()
                row[how] = {
                    "cpu_s": round(seconds, 3),
                    "epochs": epochs(model),
                    "f1": round(evaluate(test.labels, predicted, real.classes)["f1_macro"], 4),
                }
                if how == "cold":
                    cold = model
            previous = (weights.columns, cold.coef_, cold.intercept_)
            print(json.dumps({"warm_start": row}), flush=True)
            rows.append(row)
    return rows


def _fit_sag(
    x: sp.csr_matrix,
    y: np.ndarray,
    seed: int,
    previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    weights: TfidfWeights,
) -> tuple[LogisticRegression, float]:
    model = LogisticRegression(
        C=10.0,
        solver="sag",
        tol=3e-2,
        max_iter=100,
        class_weight="balanced",
        random_state=seed,
        warm_start=previous is not None,
    )
    if previous is not None:
        model.coef_, model.intercept_ = _columns_init(previous, weights)
    started = time.process_time()
    model.fit(x, y)
    return model, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--no-warm", action="store_true")
    args = parser.parse_args()
    names = [REFERENCE, *(s for s in args.solvers.split(",") if s != REFERENCE)]
    unknown = [s for s in names if s not in SOLVERS]
    if unknown:
        parser.error(f"unknown solver {unknown[0]!r} (use {', '.join(SOLVERS)})")
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = compare_solvers(names, args.seeds)
    print(pd.DataFrame(rows).to_string(index=False), flush=True)
    if not args.no_warm:
        warm = [row for row in warm_starts(args.seeds) if "warm" in row]
        cold_s = sum(row["cold"]["cpu_s"] for row in warm)
        warm_s = sum(row["warm"]["cpu_s"] for row in warm)
        f1_diff = np.mean([row["warm"]["f1"] - row["cold"]["f1"] for row in warm])
        print(
            f"warm starts on {len(warm)} fits: {cold_s:.1f} s cold, {warm_s:.1f} s warm "
            f"({cold_s / warm_s:.2f}x); mean F1 warm - cold {f1_diff:+.4f}"
        )


if __name__ == "__main__":
    main()
