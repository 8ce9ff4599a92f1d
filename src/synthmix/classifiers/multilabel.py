"""Multi-label classifiers: one binary logistic regression per label (one-vs-rest) on
TF-IDF features (of a text, or of a text pair's blocks), each label with its own decision
threshold tuned on the training texts only.

Thresholds: the training texts are split into `cv` folds; each fold's probabilities come
from the model fitted on the other folds (scikit-learn's cross_val_predict), and each label
takes the threshold that maximises its F1 on these out-of-fold probabilities. A fixed 0.5
under-predicts rare labels (their probabilities rarely reach it), which is most of a
multi-label macro-F1. The test texts are never seen. `fit(..., groups=...)` keeps each group
in one fold: the experiment groups an EDA variant with the real text it rewrites, since a
near-copy in the other folds makes the real text's out-of-fold probability high, and the
thresholds tuned on it too high. With `at_least_one`, a text whose
probabilities pass no threshold gets the label closest to passing (every GoEmotions text
has one).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from synthmix.classifiers.embedding import shared_encoder
from synthmix.classifiers.pair_features import BLOCKS, PairVectorizer
from synthmix.core.errors import ConfigError
from synthmix.data.pairs import has_pairs, split_pair
from synthmix.embeddings.encoder import OFFLINE_DEFAULT

_CANDIDATES = np.round(np.arange(0.05, 0.951, 0.025), 3)


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per label, the candidate threshold with the best F1 on (y_true, scores); ties go to
    the one nearest 0.5, and a label with no positive keeps 0.5."""
    thresholds = np.full(y_true.shape[1], 0.5)
    for j in range(y_true.shape[1]):
        positives = y_true[:, j].astype(bool)
        if not positives.any():
            continue
        predicted = scores[:, j][:, None] >= _CANDIDATES[None, :]
        tp = (predicted & positives[:, None]).sum(axis=0)
        fp = (predicted & ~positives[:, None]).sum(axis=0)
        fn = positives.sum() - tp
        f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best = np.flatnonzero(f1 == f1.max())
        thresholds[j] = _CANDIDATES[best[np.argmin(np.abs(_CANDIDATES[best] - 0.5))]]
    return thresholds


def apply_thresholds(
    proba: np.ndarray, thresholds: np.ndarray, at_least_one: bool = True
) -> np.ndarray:
    """The 0/1 label matrix of probabilities against per-label thresholds; with
    `at_least_one`, a row passing no threshold gets the label closest to passing
    (the largest probability / threshold)."""
    predicted = (proba >= thresholds[None, :]).astype(np.int8)
    if at_least_one and len(proba):
        empty = predicted.sum(axis=1) == 0
        closest = np.argmax(proba / thresholds[None, :], axis=1)
        predicted[np.flatnonzero(empty), closest[empty]] = 1
    return predicted


class _OneVsRest(ClassifierMixin, BaseEstimator):
    """One-vs-rest logistic regression with per-label thresholds over features that a
    subclass makes (`_fit_features`, `_features`) and a model it configures (`_model`).

    `fit(texts, label_sets)` takes one label list per text (empty: no label); `predict`
    returns one sorted tuple of labels per text, `predict_indicator` the 0/1 matrix in
    `classes_` order.
    """

    multi_label = True
    cv: int
    class_weight: str | None
    at_least_one: bool
    random_state: int

    def _model(self) -> OneVsRestClassifier:
        raise NotImplementedError

    def _fit_features(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _features(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def fit(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        groups: Sequence[str] | None = None,
    ) -> Self:
        if self.cv < 2:
            raise ConfigError(f"cv must be at least 2 folds to tune thresholds, got {self.cv}")
        if self.class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be 'balanced' or null, got {self.class_weight!r}")
        self.binarizer_ = MultiLabelBinarizer()
        targets = self.binarizer_.fit_transform([tuple(labels) for labels in label_sets])
        self.classes_ = np.asarray(self.binarizer_.classes_)
        if len(self.classes_) < 2:
            raise ConfigError("a multi-label classifier needs at least two labels in training")
        features = self._fit_features(list(texts))
        with warnings.catch_warnings():
            # A label absent from a fold is predicted constant there: expected with rare
            # labels, not a failure to report per fold.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            if groups is None:
                folds: KFold | GroupKFold = KFold(
                    n_splits=min(self.cv, len(targets)),
                    shuffle=True,
                    random_state=self.random_state,
                )
            else:
                folds = GroupKFold(
                    n_splits=min(self.cv, len(set(groups))),
                    shuffle=True,
                    random_state=self.random_state,
                )
            scores = cross_val_predict(
                self._model(),
                features,
                targets,
                cv=folds,
                groups=None if groups is None else list(groups),
                method="predict_proba",
            )
            self.thresholds_ = tune_thresholds(targets, np.asarray(scores))
            self.model_ = self._model().fit(features, targets)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self._features(list(texts))))

    def predict_indicator(self, texts: Sequence[str]) -> np.ndarray:
        return apply_thresholds(self.predict_proba(texts), self.thresholds_, self.at_least_one)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        indicator = self.predict_indicator(texts)
        return [tuple(self.classes_[row.astype(bool)].tolist()) for row in indicator]


class TfidfOneVsRest(_OneVsRest):
    """TF-IDF (word 1-2 + char 2-5 grams; for text pairs, the blocks of `pair_features`)
    + one-vs-rest logistic regression with per-label thresholds (see the module docstring)."""

    def __init__(
        self,
        blocks: Sequence[str] = BLOCKS,
        window: int = 6,
        min_df: int = 1,
        C: float = 10.0,
        class_weight: str | None = "balanced",
        cv: int = 3,
        at_least_one: bool = True,
        max_iter: int = 100,
        tol: float = 1e-2,
        random_state: int = 0,
    ) -> None:
        self.blocks = blocks
        self.window = window
        self.min_df = min_df
        self.C = C
        self.class_weight = class_weight
        self.cv = cv
        self.at_least_one = at_least_one
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _model(self) -> OneVsRestClassifier:
        # saga with tol 1e-2, as TfidfLogReg: on 1500 GoEmotions texts 2-8x faster than
        # liblinear at the same tuned macro-F1 (0.253 vs 0.255).
        return OneVsRestClassifier(
            LogisticRegression(
                C=self.C,
                solver="saga",
                tol=self.tol,
                class_weight=self.class_weight,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        )

    def _fit_features(self, texts: list[str]) -> sp.csr_matrix:
        self.vectorizer_ = PairVectorizer(
            blocks=tuple(self.blocks), window=self.window, min_df=self.min_df
        )
        return self.vectorizer_.fit_transform(texts)

    def _features(self, texts: list[str]) -> sp.csr_matrix:
        return self.vectorizer_.transform(texts)


class EmbeddingOneVsRest(_OneVsRest):
    """Sentence vectors (the shared, cached encoder of `classifiers.embedding`) + one-vs-rest
    logistic regression with per-label thresholds. For a text pair the features are
    [u, v, u * v]: both texts' vectors and their element-wise product (their interaction,
    as in sentence-pair classifiers over fixed encoders, Conneau et al. 2017)."""

    def __init__(
        self,
        *,
        encoder: str = OFFLINE_DEFAULT,
        cache_path: str | None = None,
        C: float = 1.0,
        class_weight: str | None = "balanced",
        cv: int = 3,
        at_least_one: bool = True,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cache_path = cache_path
        self.C = C
        self.class_weight = class_weight
        self.cv = cv
        self.at_least_one = at_least_one
        self.max_iter = max_iter
        self.random_state = random_state

    def _model(self) -> OneVsRestClassifier:
        return OneVsRestClassifier(
            LogisticRegression(
                C=self.C,
                class_weight=self.class_weight,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
        )

    def _fit_features(self, texts: list[str]) -> np.ndarray:
        self.pairs_ = has_pairs(texts)
        return self._features(texts)

    def _features(self, texts: list[str]) -> np.ndarray:
        encoder = shared_encoder(self.encoder, self.cache_path)
        split = [split_pair(t) for t in texts]
        first = encoder.encode([t for t, _ in split])
        if not self.pairs_:
            return np.asarray(first)
        second = encoder.encode([p or t for t, p in split])
        return np.hstack([first, second, first * second])
