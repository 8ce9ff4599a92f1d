"""Single-label classification of text pairs: stacked TF-IDF blocks of the text, the second
text and the text's words around the second (`pair_features`) + logistic regression.

`blocks=["text"]` is the text-only baseline that ignores the second text."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from synthmix.classifiers.base import IMBALANCE_OPTIONS, oversample_indices
from synthmix.classifiers.pair_features import BLOCKS, PairVectorizer
from synthmix.core.errors import ConfigError


class PairTfidfLogReg(ClassifierMixin, BaseEstimator):
    """TF-IDF blocks of a text pair + multinomial logistic regression (saga, as TfidfLogReg)."""

    def __init__(
        self,
        blocks: Sequence[str] = BLOCKS,
        window: int = 6,
        min_df: int = 1,
        C: float = 10.0,
        max_iter: int = 100,
        tol: float = 1e-2,
        imbalance: str = "class_weight",
        random_state: int = 0,
    ) -> None:
        self.blocks = blocks
        self.window = window
        self.min_df = min_df
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.imbalance = imbalance
        self.random_state = random_state

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> PairTfidfLogReg:
        if self.imbalance not in IMBALANCE_OPTIONS:
            raise ConfigError(
                f"imbalance must be one of {', '.join(IMBALANCE_OPTIONS)}, got {self.imbalance!r}"
            )
        texts_arr = np.asarray(list(texts), dtype=object)
        labels_arr = np.asarray(list(labels), dtype=object)
        if self.imbalance == "oversample":
            keep = oversample_indices(labels_arr, self.random_state)
            texts_arr, labels_arr = texts_arr[keep], labels_arr[keep]
        self.vectorizer_ = PairVectorizer(
            blocks=tuple(self.blocks), window=self.window, min_df=self.min_df
        )
        features = self.vectorizer_.fit_transform(texts_arr.tolist())
        self.model_ = LogisticRegression(
            C=self.C,
            solver="saga",
            max_iter=self.max_iter,
            tol=self.tol,
            class_weight="balanced" if self.imbalance == "class_weight" else None,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # Stopping at max_iter is by design, as in TfidfLogReg.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(features, labels_arr)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict(self.vectorizer_.transform(list(texts))))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self.vectorizer_.transform(list(texts))))
