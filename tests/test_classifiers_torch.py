"""Transformers fine-tuned through the real `transformers.Trainer` code path on a tiny randomly
initialised BERT built here (nothing is downloaded)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from synthmix.classifiers import LoraClassifier, TransformerClassifier
from synthmix.classifiers.base import TextClassifier
from synthmix.classifiers.tiny_bert import build_tiny_bert
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData, stratified_fraction

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_bert(cedr_train: LabeledData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary trained on 500 CEDR sentences,
    saved like a hub model so `AutoTokenizer`/`AutoModelForSequenceClassification` load it."""
    # One thread: on a busy 2-core machine, intra-op threads of a 32-wide model spin-wait on
    # each other and make the fit ten times slower (55 s instead of 5 s, measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_bert(cedr_train.texts[:500], tmp_path_factory.mktemp("tiny-bert"))
    torch.set_num_threads(threads)


def tiny(model: Path, **params: object) -> TransformerClassifier:
    settings: dict[str, object] = {
        "model": str(model),
        "lr": 1e-3,
        "epochs": 2,
        "batch_size": 32,
        "warmup_steps": 0,
        "max_length": 48,
        "device": "cpu",
    }
    return TransformerClassifier(**{**settings, **params})  # type: ignore[arg-type]


# ----- transformers through Trainer ------------------------------------------------------


def test_transformer_fits_predicts_and_logs_per_class_metrics(
    tiny_bert: Path, cedr_train: LabeledData, caplog: pytest.LogCaptureFixture
) -> None:
    data = train_subset(cedr_train, 300)
    with caplog.at_level(logging.INFO, logger="synthmix"):
        model = tiny(tiny_bert).fit(data.texts, data.labels)
    assert isinstance(model, TextClassifier)
    assert list(model.classes_) == data.classes
    probabilities = model.predict_proba(data.texts[:20])
    assert probabilities.shape == (20, 6)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert set(model.predict(data.texts[:20])) <= set(data.classes)
    assert [e["epoch"] for e in model.history_] == [1, 2]
    for epoch in model.history_:
        assert set(epoch["per_class"]) == set(data.classes)
        assert {"precision", "recall", "f1", "support"} <= set(epoch["per_class"]["joy"])
        assert 0 <= epoch["f1_macro"] <= 1
        assert epoch["train_loss"] > 0
    assert "validation F1-macro" in caplog.text


def test_early_stopping_stops_when_validation_f1_stalls(
    tiny_bert: Path, cedr_train: LabeledData, tmp_path: Path
) -> None:
    data = train_subset(cedr_train, 200)
    # lr=0: the weights never change, so F1 never improves after epoch 1.
    model = tiny(tiny_bert, lr=0.0, epochs=20, early_stopping_patience=1, output_dir=str(tmp_path))
    model.fit(data.texts, data.labels)
    assert len(model.history_) == 2
    assert model.best_epoch_ == 1
    assert (tmp_path / "config.json").exists()  # output_dir receives the final model


def test_no_validation_trains_every_epoch_and_leaves_no_files(
    tiny_bert: Path, cedr_train: LabeledData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    data = train_subset(cedr_train, 100)
    model = tiny(tiny_bert, validation_fraction=0.0, imbalance="oversample").fit(
        data.texts, data.labels
    )
    assert [e["epoch"] for e in model.history_] == [1, 2]
    assert list(tmp_path.iterdir()) == []  # the checkpoint folder was removed


def test_lora_trains_adapters_and_leaves_base_weights_frozen(
    tiny_bert: Path, cedr_train: LabeledData
) -> None:
    from transformers import AutoModelForSequenceClassification

    data = train_subset(cedr_train, 200)
    settings = {"lr": 1e-2, "epochs": 1, "batch_size": 32, "warmup_steps": 0, "device": "cpu"}
    model = LoraClassifier(model=str(tiny_bert), max_length=48, **settings).fit(  # type: ignore[arg-type]
        data.texts, data.labels
    )
    # The parameter stays as given (scikit-learn's clone); what was used is learned.
    assert model.lora is None and model.lr == 1e-2
    assert model.lora_ == {
        "r": 8,
        "alpha": 16,
        "dropout": 0.1,
        "target_modules": ["query", "value"],
    }
    assert model.n_trainable_params_ < 0.1 * model.n_params_
    probabilities = model.predict_proba(data.texts[:10])
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    original = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert))
    base = original.state_dict()["bert.encoder.layer.0.attention.self.query.weight"]
    tuned = {
        name: tensor
        for name, tensor in model.model_.state_dict().items()
        if name.endswith("layer.0.attention.self.query.base_layer.weight")
    }
    assert len(tuned) == 1
    assert torch.equal(next(iter(tuned.values())).cpu(), base)


def test_transformer_rejects_bad_options(tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match="lora option"):
        tiny(tiny_bert, lora={"rank": 4}).fit(["a", "b"], ["x", "y"])
    with pytest.raises(ConfigError, match="device"):
        tiny(tiny_bert, device="cuda:1").fit(["a", "b"], ["x", "y"])


def test_lora_is_the_transformer_with_other_defaults() -> None:
    """One constructor: LoraClassifier only changes what None means for `lora` and `lr`."""
    import inspect

    assert "__init__" not in vars(LoraClassifier)
    assert inspect.signature(LoraClassifier) == inspect.signature(TransformerClassifier)
    assert LoraClassifier()._learning_rate() == 1e-4 and LoraClassifier()._lora_options()
    assert TransformerClassifier()._learning_rate() == 1e-5
    assert TransformerClassifier()._lora_options() is None
    assert TransformerClassifier(lora={"r": 4})._lora_options()["r"] == 4  # type: ignore[index]


def train_subset(data: LabeledData, rows: int) -> LabeledData:
    return stratified_fraction(data, rows / len(data), seed=0)
