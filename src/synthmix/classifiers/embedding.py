"""Classifiers over sentence vectors: logistic regression and a small MLP.

Embedding a text is the expensive step (the offline USE encoder manages a few dozen texts a
second on a laptop CPU), while fitting on 512-d vectors takes well under a second. An
experiment grid fits hundreds of models on overlapping texts (every cell shares the test set
and samples the same real training set), so all classifiers in a process share one
`CachedEncoder` per (encoder, cache path) through a module-level registry: each unique text is
embedded once per process, and, with `cache_path`, once ever across worker processes and runs
(SQLite). Estimators keep only the encoder's *name* and path, never the encoder itself, so
they stay cheap to clone and pickle.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.utils.class_weight import compute_sample_weight

from synthmix.classifiers.base import IMBALANCE_OPTIONS, oversample_indices
from synthmix.core.errors import ConfigError
from synthmix.embeddings.encoder import (
    OFFLINE_DEFAULT,
    CachedEncoder,
    Encoder,
    USEMultilingualEncoder,
    build_encoder,
)

_ENCODERS: dict[tuple[str, str | None], CachedEncoder] = {}
_ENCODERS_LOCK = threading.Lock()
# Both spellings build the same USE model; they must share one cache, not embed twice.
_ALIASES = {USEMultilingualEncoder.name: OFFLINE_DEFAULT}


def _registry_key(encoder: str, cache_path: str | Path | None) -> tuple[str, str | None]:
    path = str(Path(cache_path).expanduser().resolve()) if cache_path is not None else None
    return _ALIASES.get(encoder, encoder), path


def shared_encoder(
    encoder: str = OFFLINE_DEFAULT, cache_path: str | Path | None = None
) -> CachedEncoder:
    """The process-wide `CachedEncoder` for this encoder name and cache file."""
    key = _registry_key(encoder, cache_path)
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            built = build_encoder(key[0], cache_path)
            if not isinstance(built, CachedEncoder):  # build_encoder's contract; checked for mypy
                raise TypeError(f"build_encoder returned {type(built).__name__}, not CachedEncoder")
            _ENCODERS[key] = built
        return _ENCODERS[key]


def register_encoder(
    name: str, encoder: Encoder, cache_path: str | Path | None = None
) -> CachedEncoder:
    """Make any `Encoder` object usable as `EmbeddingLogReg(encoder=name)` in this process
    (a model of your own, or a fast stand-in in tests and benchmarks)."""
    cached = encoder if isinstance(encoder, CachedEncoder) else CachedEncoder(encoder, cache_path)
    with _ENCODERS_LOCK:
        _ENCODERS[_registry_key(name, cache_path)] = cached
    return cached


def clear_encoder_cache() -> None:
    """Forget every shared encoder and its in-memory vectors (tests, benchmarks, freeing RAM)."""
    with _ENCODERS_LOCK:
        _ENCODERS.clear()


def _check_imbalance(imbalance: str) -> None:
    if imbalance not in IMBALANCE_OPTIONS:
        raise ConfigError(
            f"imbalance must be one of {', '.join(IMBALANCE_OPTIONS)}, got {imbalance!r}"
        )


class _EmbeddingClassifier(ClassifierMixin, BaseEstimator):
    """Shared fit/predict over cached sentence vectors; subclasses build the sklearn model.

    Subclasses define `__init__` with their own keyword-only parameters (sklearn reads the
    signature for get_params) including `encoder`, `cache_path`, `imbalance`, `random_state`.
    """

    encoder: str
    cache_path: str | None
    imbalance: str
    random_state: int

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return shared_encoder(self.encoder, self.cache_path).encode(list(texts))

    def _make_model(self) -> Any:
        raise NotImplementedError

    def _fit_model(self, model: Any, features: np.ndarray, labels: np.ndarray) -> None:
        model.fit(features, labels)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Self:
        _check_imbalance(self.imbalance)
        # Embed the texts as given (not after oversampling): duplicates cost nothing extra,
        # but indexing the vectors keeps the cache lookups to one per row.
        features = self._vectors(texts)
        labels_arr = np.asarray(list(labels), dtype=object)
        if self.imbalance == "oversample":
            keep = oversample_indices(labels_arr, self.random_state)
            features, labels_arr = features[keep], labels_arr[keep]
        self.model_ = self._make_model()
        self._fit_model(self.model_, features, labels_arr)
        self.classes_ = np.asarray(self.model_.classes_)
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict(self._vectors(texts)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self._vectors(texts)))


class EmbeddingLogReg(_EmbeddingClassifier):
    """Multinomial logistic regression on L2-normalised sentence vectors.

    `encoder`: "use-multilingual" (offline default) or a sentence-transformers name/path.
    `cache_path`: SQLite file shared by worker processes and later runs (None = memory only).
    `imbalance`: "class_weight" (balanced loss weights), "oversample" or "none".
    """

    def __init__(
        self,
        *,
        encoder: str = OFFLINE_DEFAULT,
        cache_path: str | None = None,
        C: float = 1.0,
        max_iter: int = 1000,
        imbalance: str = "class_weight",
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cache_path = cache_path
        self.C = C
        self.max_iter = max_iter
        self.imbalance = imbalance
        self.random_state = random_state

    def _make_model(self) -> LogisticRegression:
        # C=1 was the best of 0.1/1/10/100 with USE vectors on 10% and 100% of CEDR (F1-macro
        # 0.574 and 0.603; C=10 gave 0.552 and 0.584 and took 6x longer to fit).
        return LogisticRegression(
            C=self.C,
            max_iter=self.max_iter,
            class_weight="balanced" if self.imbalance == "class_weight" else None,
            random_state=self.random_state,
        )


def _mlp_supports_sample_weight() -> bool:
    # MLPClassifier.fit takes sample_weight from scikit-learn 1.7 on.
    return "sample_weight" in inspect.signature(MLPClassifier.fit).parameters


class EmbeddingMLP(_EmbeddingClassifier):
    """A one-hidden-layer MLP (Adam, early stopping on a held-out 10%) on sentence vectors.

    `imbalance="class_weight"` has no direct MLP equivalent in scikit-learn, so it becomes
    balanced per-sample loss weights (n / (k * n_class), as LogisticRegression's "balanced")
    passed to `fit(sample_weight=...)`; on scikit-learn < 1.7, which lacks that argument, it
    falls back to random oversampling, which has the same expected loss.
    Early stopping is switched off when the data is too small for a stratified validation
    split (a class with one example, or fewer validation rows than classes).
    """

    def __init__(
        self,
        *,
        encoder: str = OFFLINE_DEFAULT,
        cache_path: str | None = None,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        alpha: float = 1e-3,
        learning_rate_init: float = 1e-3,
        batch_size: int = 64,
        max_iter: int = 300,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        imbalance: str = "class_weight",
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cache_path = cache_path
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.imbalance = imbalance
        self.random_state = random_state

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Self:
        labels_list = list(labels)
        self.early_stopping_used_ = self.early_stopping and _can_split(
            labels_list, self.validation_fraction
        )
        super().fit(texts, labels_list)
        return self

    def _make_model(self) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            learning_rate_init=self.learning_rate_init,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            early_stopping=self.early_stopping_used_,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
        )

    def _fit_model(self, model: Any, features: np.ndarray, labels: np.ndarray) -> None:
        if self.imbalance != "class_weight":
            model.fit(features, labels)
        elif _mlp_supports_sample_weight():
            weights = compute_sample_weight("balanced", labels)
            model.fit(features, labels, sample_weight=weights)
        else:
            keep = oversample_indices(labels, self.random_state)
            model.fit(features[keep], labels[keep])


def _can_split(labels: Sequence[str], fraction: float) -> bool:
    """Whether MLPClassifier's stratified early-stopping split can be made."""
    _, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return bool(counts.min() >= 2 and int(fraction * len(labels)) >= len(counts))
