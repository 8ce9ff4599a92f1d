"""Baselines of the two new task types, each beside an independent reference, in one run.

- goemotions: synthmix's `tfidf_ovr` (one-vs-rest, thresholds tuned out-of-fold on the
  training texts) against a plain scikit-learn one-vs-rest built here from scratch
  (TfidfVectorizer word 1-2 grams + OneVsRestClassifier(LogisticRegression), threshold 0.5),
  both trained on `ru_goemotions` train and scored on its test split: micro-, macro- and
  samples-F1 and labels per text (gold and predicted). `tfidf_ovr_no_cut` is the same fit
  without the per-text relative cut; with `--refit-baseline`, `tfidf_ovr_refit` applies the
  same thresholds to a refit on all training texts (the method before the fold models).
- aspects: `pair_tfidf_logreg` on SentiRuEval-2015 restaurant aspect pairs with the pair
  blocks against the same classifier on the review text alone (blocks [text]), F1-macro and
  accuracy side by side.

Run: `python benchmarks/bench_multilabel.py [--train-size 2000] [--test-size 2000]`
(prints JSON lines; reads ../shared/datasets; a few minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from synthmix.classifiers.multilabel import TfidfOneVsRest, apply_thresholds
from synthmix.classifiers.pairs import PairTfidfLogReg
from synthmix.data.labeled import load_labeled
from synthmix.data.multilabel import load_multilabel
from synthmix.data.pairs import join_pairs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def goemotions(train_size: int, test_size: int, refit_baseline: bool) -> dict[str, object]:
    folder = SHARED / "ru_goemotions"
    train = load_multilabel(folder / "train.csv").subset(range(train_size))
    test = load_multilabel(folder / "test.csv").subset(range(test_size))
    started = time.perf_counter()
    ours = TfidfOneVsRest(random_state=0).fit(train.texts, train.label_sets)
    fit_s = time.perf_counter() - started
    classes = list(ours.classes_)
    gold = test.indicator(classes)
    predicted = ours.predict_indicator(test.texts)
    proba = ours.predict_proba(test.texts)
    no_cut = apply_thresholds(proba, ours.thresholds_, ours.at_least_one, 0.0)
    refit = None
    if refit_baseline:
        features = ours._features(train.texts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ours._model().fit(features, ours.binarizer_.transform(train.label_sets))
        refit_proba = model.predict_proba(ours._features(test.texts))
        refit = apply_thresholds(refit_proba, ours.thresholds_, ours.at_least_one, 0.0)
    # The reference: nothing of synthmix but the file reading.
    binarizer = MultiLabelBinarizer(classes=classes)
    targets = binarizer.fit_transform(train.label_sets)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=1000)).fit(
            vectorizer.fit_transform(train.texts), targets
        )
    plain = reference.predict(vectorizer.transform(test.texts))

    def scores(pred: Any) -> dict[str, float]:
        return {
            "f1_micro": round(float(f1_score(gold, pred, average="micro", zero_division=0)), 4),
            "f1_macro": round(float(f1_score(gold, pred, average="macro", zero_division=0)), 4),
            "f1_samples": round(float(f1_score(gold, pred, average="samples", zero_division=0)), 4),
            "labels_per_text": round(float(np.asarray(pred).sum(axis=1).mean()), 3),
        }

    return {
        "bench": "goemotions",
        "train": len(train),
        "test": len(test),
        "gold_labels_per_text": round(float(gold.sum(axis=1).mean()), 3),
        "tfidf_ovr": scores(predicted),
        "tfidf_ovr_relative_cut": ours.relative_cut_,
        "tfidf_ovr_no_cut": scores(no_cut),
        **({"tfidf_ovr_refit": scores(refit)} if refit is not None else {}),
        "sklearn_ovr_threshold_0.5": scores(plain),
        "tfidf_ovr_fit_s": round(fit_s, 1),
    }


def aspects(fraction: float) -> dict[str, object]:
    folder = SHARED / "sentirueval2015_restaurant_aspects"
    train = load_labeled(folder / "train.csv", text_pair_column="aspect")
    test = load_labeled(folder / "test.csv", text_pair_column="aspect")
    x_train = join_pairs(train.texts, train.pairs or [])
    x_test = join_pairs(test.texts, test.pairs or [])
    out: dict[str, object] = {"bench": "aspects", "train": len(train), "test": len(test)}
    for name, blocks in (
        ("text_only", ["text"]),
        ("text+pair+context", ["text", "pair", "context"]),
        ("pair+context", ["pair", "context"]),
    ):
        started = time.perf_counter()
        model = PairTfidfLogReg(blocks=blocks).fit(x_train, train.labels)
        predicted = model.predict(x_test)
        out[name] = {
            "f1_macro": round(float(f1_score(test.labels, predicted, average="macro")), 4),
            "accuracy": round(float(accuracy_score(test.labels, predicted)), 4),
            "fit_s": round(time.perf_counter() - started, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--only", choices=["goemotions", "aspects"])
    parser.add_argument("--refit-baseline", action="store_true")
    args = parser.parse_args()
    if args.only in (None, "goemotions"):
        print(
            json.dumps(goemotions(args.train_size, args.test_size, args.refit_baseline)), flush=True
        )
    if args.only in (None, "aspects"):
        print(json.dumps(aspects(1.0)), flush=True)


if __name__ == "__main__":
    main()
