"""Tuned baselines: what choosing `tfidf_logreg`'s C per cell costs, and what it changes.

For a real fraction of the shipped CEDR data and a few seeds, side by side: the default fit
(C=10) and the tuned one (the default grid, 3-fold stratified cross-validation on the cell's
rows, then a refit), on the same hashed n-gram counts: seconds per fit, their ratio, the C
chosen and test F1-macro of both.

Run: `python benchmarks/bench_tuning.py --fractions 0.1 1.0 --seeds 3`.
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.classifiers.tuning import OnCounts, fit_tuned, tune_plan
from synthmix.data.labeled import load_labeled, stratified_fraction
from synthmix.stats.classification import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(str(resources.files("synthmix") / "demo_data" / "cedr_emotions"))
    train, test = load_labeled(folder / "train.csv"), load_labeled(folder / "test.csv")
    plan = tune_plan("tfidf_logreg", True)
    assert plan is not None
    spec = TfidfLogReg().ngram_spec
    assert spec is not None
    test_counts = spec.counts(test.texts)
    print("fraction seed rows | default s  F1 | tuned s  C  F1 | time ratio")
    for fraction in args.fractions:
        for seed in range(args.seeds):
            sample = stratified_fraction(train, fraction, seed) if fraction < 1 else train
            counts = spec.counts(sample.texts)
            started = time.perf_counter()
            default = TfidfLogReg(random_state=seed).fit_counts(counts, sample.labels)
            default_s = time.perf_counter() - started
            started = time.perf_counter()
            search, tuning = fit_tuned(
                OnCounts(TfidfLogReg(random_state=seed)), counts, sample.labels, plan, seed
            )
            tuned_s = time.perf_counter() - started

            def f1(model: TfidfLogReg) -> float:
                predicted = model.predict_counts(test_counts).tolist()
                return float(evaluate(test.labels, predicted, train.classes)["f1_macro"])

            print(
                f"{fraction:8g} {seed:4d} {len(sample):4d} | {default_s:9.2f} "
                f"{f1(default):.3f} | {tuned_s:7.2f} {tuning.chosen['C']:g} "
                f"{f1(search.model_):.3f} | {tuned_s / default_s:5.1f}x"
            )


if __name__ == "__main__":
    main()
