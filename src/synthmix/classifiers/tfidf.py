"""The default classifier: TF-IDF over word and character n-grams + logistic regression."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from synthmix.classifiers.base import IMBALANCE_OPTIONS, oversample_indices
from synthmix.classifiers.features import NgramSpec, TfidfWeights
from synthmix.classifiers.registry import CLASSIFIERS, ClassifierConfig
from synthmix.core.errors import ConfigError

FEATURE_OPTIONS = ("hashed", "per_cell")
SOLVER_OPTIONS = ("sag", "saga", "lbfgs")
# Per features: the hashed path fits with sag, stopping at tol 5e-2; the per-cell path
# keeps the solver it always had, so its results (and old runs' methods) stay as they were.
DEFAULT_SOLVER = {"hashed": "sag", "per_cell": "saga"}
DEFAULT_TOL = {"hashed": 5e-2, "per_cell": 1e-2}


class TfidfLogReg(ClassifierMixin, BaseEstimator):
    """TF-IDF over word and character n-grams + multinomial logistic regression.

    `features`: "hashed" (default) counts hashed n-grams, so a text's counts can be computed
    once and shared by every fit of an experiment (`fit_counts`); each fit still learns its
    own `min_df` filter and IDF from its own rows (see classifiers.features). "per_cell"
    fits scikit-learn TfidfVectorizers on each fit's texts, as before hashed counts existed.
    `imbalance`: "class_weight" (balanced loss weights), "oversample" (random oversampling
    with imbalanced-learn) or "none". `solver` and `tol` default per `features` (see
    `_fit_model`): sag at tol 5e-2 on hashed float32 features, saga at 1e-2 per cell.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        max_features: int | None = None,
        C: float = 10.0,
        max_iter: int = 100,
        tol: float | None = None,
        imbalance: str = "class_weight",
        features: str = "hashed",
        solver: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.imbalance = imbalance
        self.features = features
        self.solver = solver
        self.random_state = random_state

    @property
    def ngram_spec(self) -> NgramSpec | None:
        """The counts `fit_counts` takes; None for per-cell vectorizers."""
        if self.features != "hashed":
            return None
        return NgramSpec(tuple(self.word_ngrams), tuple(self.char_ngrams))  # type: ignore[arg-type]

    @property
    def resolved_solver(self) -> str:
        """The solver a fit uses: `solver`, or the default of these `features`."""
        return self.solver or DEFAULT_SOLVER.get(self.features, "sag")

    @property
    def resolved_tol(self) -> float:
        return float(self.tol) if self.tol is not None else DEFAULT_TOL.get(self.features, 5e-2)

    def method(self) -> str:
        """How features and fit are made, beyond the params: part of a run's identity, so a
        run directory fitted one way is not resumed another (see experiment.runner)."""
        fit = f"{self.resolved_solver} tol={self.resolved_tol:g} max_iter={self.max_iter}"
        spec = self.ngram_spec
        if spec is None:
            return f"per-cell TfidfVectorizer; {fit}"
        bits = spec.n_features.bit_length() - 1
        return f"hashed n-gram counts 2^{bits}, per-fit IDF, float32; {fit}"

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TfidfLogReg:
        self._check()
        spec = self.ngram_spec
        if spec is not None:
            return self.fit_counts(spec.counts(list(texts)), labels)
        texts_arr = np.asarray(list(texts), dtype=object)
        labels_arr = np.asarray(list(labels), dtype=object)
        if self.imbalance == "oversample":
            keep = oversample_indices(labels_arr, self.random_state)
            texts_arr, labels_arr = texts_arr[keep], labels_arr[keep]
        self.vectorizer_ = FeatureUnion(
            [
                ("word", self._vectorizer("word", self.word_ngrams, self.min_df)),
                # Character n-grams seen once are mostly typos; min_df=2 halves the vocabulary.
                ("char", self._vectorizer("char_wb", self.char_ngrams, max(2, self.min_df))),
            ]
        )
        self._fit_model(self.vectorizer_.fit_transform(texts_arr), labels_arr)
        return self

    def fit_counts(self, counts: sp.csr_matrix, labels: Sequence[str] | np.ndarray) -> TfidfLogReg:
        """Fit on precomputed `NgramSpec.counts` rows of the training texts: min_df, IDF
        and max_features are learned from these rows alone."""
        self._check()
        spec = self.ngram_spec
        if spec is None:
            raise ConfigError("fit_counts needs features='hashed'")
        labels_arr = np.asarray(list(labels), dtype=object)
        if self.imbalance == "oversample":
            keep = oversample_indices(labels_arr, self.random_state)
            counts, labels_arr = counts[keep], labels_arr[keep]
        started = time.perf_counter()
        self.weights_ = TfidfWeights.fit(
            counts, spec.n_features, (self.min_df, max(2, self.min_df)), self.max_features
        )
        features = self.weights_.transform(counts)
        weighted = time.perf_counter()
        self._fit_model(features, labels_arr)
        # Where the time went, for the experiment's per-fit timings.
        self.timings_ = {
            "featurise_s": weighted - started,
            "fit_s": time.perf_counter() - weighted,
        }
        return self

    def _check(self) -> None:
        if self.imbalance not in IMBALANCE_OPTIONS:
            raise ConfigError(
                f"imbalance must be one of {', '.join(IMBALANCE_OPTIONS)}, got {self.imbalance!r}"
            )
        if self.features not in FEATURE_OPTIONS:
            raise ConfigError(
                f"features must be one of {', '.join(FEATURE_OPTIONS)}, got {self.features!r}"
            )
        if self.solver is not None and self.solver not in SOLVER_OPTIONS:
            raise ConfigError(
                f"solver must be one of {', '.join(SOLVER_OPTIONS)}, got {self.solver!r}"
            )

    def _fit_model(self, features: sp.csr_matrix, labels: np.ndarray) -> None:
        # sag on float32 features at tol 3e-2 (the first default): on a 10k-text RuSentiment
        # sample 0.8 s of CPU per fit, against 1.25 s for saga at 1e-2 on float64 (the
        # previous default) and 2.8 s at 1e-3 (today's per-cell path); mean F1-macro over 5
        # seeds within 0.0035 of saga at 1e-3 on CEDR and RuSentiment at 10% and all of the
        # training data. tol 5e-2 (now): 16% less CPU over the devlog grid (1.10 s per fit
        # against 1.31), F1-macro against the per-cell path -0.0016/-0.0015 on CEDR and
        # +0.0007/+0.0001 on RuSentiment at 10%/100% (benchmarks/bench_grid.py --params).
        # Per epoch sag is cheaper than saga (no proximal step) and needs fewer epochs to
        # the same tolerance; lbfgs, liblinear (one-vs-rest) and SGD were slower or lost
        # F1, and warm starts from a neighbouring cell saved under 5% of epochs
        # (benchmarks/bench_solvers.py); from the real-only fit of the same real sample and
        # seed, 1% of CPU over 6 all-real + equal fits (median epochs 17.5 -> 17) and
        # nothing on half-and-half or small-real cells: sag starts its gradient memory from
        # zero, whatever the coefficients; lbfgs, warm or cold, took 10x sag's CPU.
        # max_iter 100 bounds the fits that never get there: one text under two labels (a
        # generator writing a real text for another class) keeps the solver creeping to
        # 1000 epochs, 200 s instead of 3; capping
        # epochs below convergence (8-16) moved F1 by up to 0.007, so the cap is a guard,
        # not the stopping rule.
        self.model_ = LogisticRegression(
            C=self.C,
            solver=self.resolved_solver,
            max_iter=self.max_iter,
            tol=self.resolved_tol,
            class_weight="balanced" if self.imbalance == "class_weight" else None,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # Stopping at max_iter is by design here (see above), not a failure to report
            # once per fit of an 800-fit grid.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(features, labels)
        self.classes_ = self.model_.classes_

    def _vectorizer(self, analyzer: str, ngrams: tuple[int, int], min_df: int) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=tuple(ngrams),
            min_df=min_df,
            max_features=self.max_features,
            sublinear_tf=True,
            lowercase=True,
        )

    def _features(self, texts: Sequence[str]) -> sp.csr_matrix:
        spec = self.ngram_spec
        if spec is None:
            return self.vectorizer_.transform(list(texts))
        return self.weights_.transform(spec.counts(list(texts)))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict(self._features(texts)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self._features(texts)))

    def predict_counts(self, counts: sp.csr_matrix) -> np.ndarray:
        """Predictions for precomputed `NgramSpec.counts` rows."""
        return np.asarray(self.model_.predict(self.weights_.transform(counts)))


def _tfidf(config: ClassifierConfig) -> TfidfLogReg | None:
    # By the registry entry, not by building one: a registered factory may count its calls.
    if config.name not in CLASSIFIERS or CLASSIFIERS.get(config.name) is not TfidfLogReg:
        return None
    try:
        return TfidfLogReg(**config.params)
    except TypeError as exc:
        raise ConfigError(f"classifier {config.name!r}: {exc}") from None


def classifier_method(config: ClassifierConfig) -> str | None:
    """The method string of a TF-IDF classifier config (None for other classifiers)."""
    model = _tfidf(config)
    return model.method() if model is not None else None


def shared_ngrams(config: ClassifierConfig) -> NgramSpec | None:
    """The n-gram counts this classifier fits on (`fit_counts`), or None where it fits on
    texts: other classifiers, per-cell TF-IDF, factories registered under other names."""
    model = _tfidf(config)
    return model.ngram_spec if model is not None else None


def legacy_method(name: str | None, params: dict[str, Any] | None) -> str | None:
    """The method of a run recorded before methods were: TF-IDF fitted per cell, saga with
    the tolerance of that time (1e-3) unless set."""
    if name != "tfidf_logreg":
        return None
    params = params or {}
    tol, max_iter = float(params.get("tol", 1e-3)), params.get("max_iter", 1000)
    return f"per-cell TfidfVectorizer; saga tol={tol:g} max_iter={max_iter}"
