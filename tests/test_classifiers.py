"""The classifier zoo on real CEDR data: sentence-vector classifiers with the real offline
encoder, and the transformer helpers that need no torch. These run without torch installed;
fine-tuning itself is in test_classifiers_torch.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from synthmix.classifiers import (
    EmbeddingLogReg,
    EmbeddingMLP,
    clear_encoder_cache,
    register_encoder,
    shared_encoder,
)
from synthmix.classifiers.base import TextClassifier
from synthmix.classifiers.transformer import (
    balanced_class_weights,
    validation_split,
)
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData, stratified_fraction
from synthmix.stats.classification import evaluate

# ----- helpers ---------------------------------------------------------------------------


class HashEncoder:
    """A fast deterministic stand-in encoder (bag of hashed words), for cache bookkeeping."""

    name = "hash-words"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, hash(word) % 64] += 1.0
        return vectors


@pytest.fixture
def fresh_encoders() -> None:
    clear_encoder_cache()


@pytest.fixture(scope="module")
def small_cedr(cedr_train: LabeledData, cedr_test: LabeledData) -> tuple[LabeledData, LabeledData]:
    """10% of CEDR train and a stratified 200-sentence sample of CEDR test: the offline USE
    encoder embeds 12-45 texts/s on two cores (load-dependent), so the full test set alone
    would take 40 s to 2.5 min."""
    train = stratified_fraction(cedr_train, 0.1, seed=0)
    test = stratified_fraction(cedr_test, 200 / len(cedr_test), seed=0)
    return train, test


def train_subset(data: LabeledData, rows: int) -> LabeledData:
    return stratified_fraction(data, rows / len(data), seed=0)


# ----- embedding classifiers -------------------------------------------------------------


@pytest.mark.slow
def test_embedding_classifiers_beat_chance_and_share_one_cache(
    small_cedr: tuple[LabeledData, LabeledData], fresh_encoders: None
) -> None:
    train, test = small_cedr
    logreg = EmbeddingLogReg().fit(train.texts, train.labels)
    assert isinstance(logreg, TextClassifier)
    encoder = shared_encoder()
    after_first = encoder.computed
    assert after_first == len(set(train.texts))
    predicted = logreg.predict(test.texts)
    f1 = evaluate(test.labels, predicted.tolist(), train.classes)["f1_macro"]
    assert f1 > 0.35, f1  # chance (uniform guessing over 6 classes) is ~0.15
    embedded = encoder.computed

    # A second instance (another grid cell) on the same texts embeds nothing new.
    mlp = EmbeddingMLP(encoder="use-multilingual-v3").fit(train.texts, train.labels)
    probabilities = mlp.predict_proba(test.texts)
    assert encoder.computed == embedded
    assert shared_encoder("use-multilingual-v3") is encoder
    assert probabilities.shape == (len(test), 6)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert list(mlp.classes_) == train.classes
    mlp_f1 = evaluate(test.labels, mlp.predict(test.texts).tolist(), train.classes)["f1_macro"]
    assert mlp_f1 > 0.35, mlp_f1


def test_cache_path_shares_vectors_across_processes(
    cedr_train: LabeledData, tmp_path: Path, fresh_encoders: None
) -> None:
    texts, labels = cedr_train.texts[:300], cedr_train.labels[:300]
    path = tmp_path / "vectors.sqlite"
    register_encoder("hash-words", HashEncoder(), path)
    EmbeddingLogReg(encoder="hash-words", cache_path=str(path)).fit(texts, labels)
    # A new process starts with an empty registry; it finds the vectors on disk.
    clear_encoder_cache()
    counting = HashEncoder()
    register_encoder("hash-words", counting, path)
    EmbeddingLogReg(encoder="hash-words", cache_path=str(path)).fit(texts, labels)
    assert counting.calls == []


@pytest.mark.parametrize("imbalance", ["class_weight", "oversample", "none"])
def test_embedding_imbalance_options(
    cedr_train: LabeledData, imbalance: str, fresh_encoders: None
) -> None:
    register_encoder("hash-words", HashEncoder())
    data = train_subset(cedr_train, 300)
    models = [
        EmbeddingLogReg(encoder="hash-words", imbalance=imbalance),
        EmbeddingMLP(
            encoder="hash-words", imbalance=imbalance, hidden_layer_sizes=(16,), max_iter=20
        ),
    ]
    for model in models:
        model.fit(data.texts, data.labels)
        assert model.predict(data.texts[:5]).shape == (5,)


def test_tiny_data_switches_mlp_early_stopping_off(fresh_encoders: None) -> None:
    register_encoder("hash-words", HashEncoder())
    model = EmbeddingMLP(encoder="hash-words").fit(["a b", "c d", "e f"], ["x", "y", "y"])
    assert model.early_stopping_used_ is False
    assert list(model.classes_) == ["x", "y"]


def test_unknown_imbalance_is_a_config_error(fresh_encoders: None) -> None:
    register_encoder("hash-words", HashEncoder())
    with pytest.raises(ConfigError, match="imbalance"):
        EmbeddingLogReg(encoder="hash-words", imbalance="smote").fit(["a", "b"], ["x", "y"])


# ----- transformer helpers ---------------------------------------------------------------


def test_balanced_class_weights_by_hand() -> None:
    # 6 rows: class 0 x3, class 1 x2, class 2 x1 -> n / (k * n_c) = 6/9, 6/6, 6/3
    weights = balanced_class_weights(np.array([0, 0, 0, 1, 1, 2]), 3)
    assert np.allclose(weights, [2 / 3, 1.0, 2.0])
    # Every class then carries the same total loss.
    assert np.allclose(weights * [3, 2, 1], 2.0)


def test_validation_split_keeps_every_class_on_both_sides_when_possible() -> None:
    labels = np.array([0] * 50 + [1] * 3 + [2] * 2 + [3])
    train, valid = validation_split(labels, 0.1, seed=0)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[valid], minlength=4).tolist() == [5, 1, 1, 0]
    assert set(labels[train]) == {0, 1, 2, 3}  # the single example of class 3 is trained on
