"""The transformer's multi-label head and sentence-pair inputs, fine-tuned through the real
`transformers.Trainer` on a tiny randomly initialised BERT built here on toy texts whose
labels are decided by marker words (nothing is downloaded)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from synthmix.classifiers.multilabel import tune_relative_cut, tune_thresholds
from synthmix.classifiers.registry import ClassifierConfig, build_classifier, runs_serially
from synthmix.classifiers.tiny_bert import build_tiny_bert
from synthmix.classifiers.transformer_multilabel import (
    MultiLabelLoraClassifier,
    MultiLabelTransformerClassifier,
    balanced_label_weights,
    multilabel_validation_split,
)
from synthmix.core.errors import ConfigError
from synthmix.data.pairs import join_pairs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

FILLER = [
    "дом",
    "улица",
    "окно",
    "стол",
    "книга",
    "вечер",
    "утро",
    "город",
    "дорога",
    "река",
    "поле",
    "лес",
    "машина",
    "письмо",
    "телефон",
    "работа",
    "неделя",
    "погода",
    "чай",
    "хлеб",
]
MARKERS = {"anger": "гнев", "fear": "страх", "joy": "радость"}
# Label sets of the toy task: each label alone, joy with fear together, and no label.
SETS: list[tuple[str, ...]] = [("anger",), ("fear",), ("joy",), ("fear", "joy"), ()]
PAIR_WORDS = {"pos": "отлично", "neg": "ужасно"}


def toy_multilabel(n: int, seed: int) -> tuple[list[str], list[tuple[str, ...]]]:
    rng = random.Random(seed)
    texts, sets = [], []
    for i in range(n):
        labels = SETS[i % len(SETS)]
        words = rng.sample(FILLER, 5)
        for label in labels:
            words.insert(rng.randrange(len(words) + 1), MARKERS[label])
        texts.append(" ".join(words))
        sets.append(labels)
    return texts, sets


def toy_pairs(n_first: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Each first text twice, once per label: only the pair text decides the label."""
    rng = random.Random(seed)
    firsts, pairs, labels = [], [], []
    for _ in range(n_first):
        first = " ".join(rng.sample(FILLER, 6))
        for label, word in PAIR_WORDS.items():
            firsts.append(first)
            pairs.append(f"{rng.choice(FILLER)} {word}")
            labels.append(label)
    return firsts, pairs, labels


@pytest.fixture(scope="module")
def toy_bert(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # One thread: on a busy 2-core machine intra-op threads of a 32-wide model spin-wait.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    corpus = [*FILLER, *MARKERS.values(), *PAIR_WORDS.values()]
    # 64 wide: at 32 the fit learnt "joy implies fear" on some row orders (measured).
    folder = tmp_path_factory.mktemp("toy-bert")
    yield build_tiny_bert(corpus * 3, folder, vocab_size=200, hidden_size=64)
    torch.set_num_threads(threads)


SETTINGS: dict[str, object] = {
    "lr": 3e-3,
    "batch_size": 16,
    "warmup_steps": 0,
    "max_length": 24,
    "device": "cpu",
    "early_stopping_patience": 3,
}


def test_multilabel_head_learns_each_label_and_co_occurring_labels(toy_bert: Path) -> None:
    texts, sets = toy_multilabel(200, seed=0)
    test_texts, test_sets = toy_multilabel(50, seed=1)
    config = ClassifierConfig(
        "transformer_multilabel", {"model": str(toy_bert), "epochs": 15, **SETTINGS}
    )
    model = build_classifier(config, seed=0).fit(texts, sets)
    assert getattr(model, "multi_label", False) and runs_serially("transformer_multilabel")
    assert model.model_.config.problem_type == "multi_label_classification"
    assert list(model.classes_) == ["anger", "fear", "joy"]
    proba = model.predict_proba(test_texts)
    # Sigmoid outputs: independent per label, not a distribution over labels.
    assert proba.shape == (50, 3) and not np.allclose(proba.sum(axis=1), 1.0)
    predicted = model.predict(test_texts)
    # Every label from its own marker; joy and fear together where both markers are.
    assert sum(p == tuple(g) for p, g in zip(predicted, test_sets, strict=True) if g) >= 36
    both = [p for p, g in zip(predicted, test_sets, strict=True) if g == ("fear", "joy")]
    assert sum(p == ("fear", "joy") for p in both) >= 8  # of 10
    assert all(
        p == ("anger",) for p, g in zip(predicted, test_sets, strict=True) if g == ("anger",)
    )


def test_thresholds_are_tuned_on_held_out_training_rows_only(toy_bert: Path) -> None:
    texts, sets = toy_multilabel(60, seed=2)
    groups = [f"g{i // 2}" for i in range(60)]  # pairs of rows that must stay together
    model = MultiLabelTransformerClassifier(
        model=str(toy_bert),
        epochs=1,
        validation_fraction=0.2,
        **SETTINGS,  # type: ignore[arg-type]
    ).fit(texts, sets, groups=groups)
    valid = model.validation_rows_
    assert 0 < len(valid) < 30
    assert {groups[i] for i in valid}.isdisjoint(
        {groups[i] for i in range(60) if i not in set(valid)}
    )
    gold = model.binarizer_.transform([sets[i] for i in valid])
    scores = model.predict_proba([texts[i] for i in valid])
    expected = tune_thresholds(gold, scores)
    assert np.array_equal(model.thresholds_, expected)
    assert model.relative_cut_ == tune_relative_cut(gold, scores, expected, True)
    # Predicting other texts does not move them.
    model.predict(toy_multilabel(10, seed=3)[0])
    assert np.array_equal(model.thresholds_, expected)


def test_lora_multilabel_head_trains_adapters(toy_bert: Path) -> None:
    texts, sets = toy_multilabel(40, seed=4)
    model = MultiLabelLoraClassifier(
        model=str(toy_bert),
        epochs=1,
        validation_fraction=0.0,
        **SETTINGS,  # type: ignore[arg-type]
    ).fit(texts, sets)
    assert model.lora_ is not None and model.n_trainable_params_ < 0.5 * model.n_params_
    assert np.array_equal(model.thresholds_, np.full(3, 0.5))  # no validation rows
    assert model.predict_indicator(texts[:5]).shape == (5, 3)
    with pytest.raises(ConfigError, match="oversample"):
        MultiLabelLoraClassifier(model=str(toy_bert), imbalance="oversample").fit(texts, sets)


def test_pair_model_reads_the_second_text(toy_bert: Path) -> None:
    firsts, pairs, labels = toy_pairs(60, seed=5)
    t_firsts, t_pairs, t_labels = toy_pairs(20, seed=6)
    params = {"model": str(toy_bert), "epochs": 10, **SETTINGS}
    paired = build_classifier(ClassifierConfig("transformer", params), seed=0)
    paired.fit(join_pairs(firsts, pairs), labels)
    assert paired.pairs_
    # The tokenizer's pair encoding: the second text in segment 1.
    encoded = paired._tokenize(join_pairs(t_firsts[:1], t_pairs[:1]))
    assert set(encoded["token_type_ids"][0]) == {0, 1}
    pair_accuracy = np.mean(paired.predict(join_pairs(t_firsts, t_pairs)) == np.array(t_labels))
    text_only = build_classifier(ClassifierConfig("transformer", params), seed=0)
    text_only.fit(firsts, labels)
    # Every first text carries both labels: without the pair no model beats chance.
    text_accuracy = np.mean(text_only.predict(t_firsts) == np.array(t_labels))
    assert text_accuracy == pytest.approx(0.5)
    assert pair_accuracy >= 0.9


def test_validation_split_keeps_groups_and_every_label_in_training() -> None:
    targets = np.zeros((40, 3))
    targets[:, 0] = 1
    targets[::4, 1] = 1
    targets[7, 2] = 1  # a label on one row only
    groups = [f"g{i // 4}" for i in range(40)]
    train, valid = multilabel_validation_split(targets, 0.25, seed=0, groups=groups)
    assert sorted([*train, *valid]) == list(range(40)) and len(valid) > 0
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in valid})
    assert targets[train].sum(axis=0).min() > 0
    assert len(multilabel_validation_split(targets, 0.0, seed=0)[1]) == 0
    weights = balanced_label_weights(targets)
    # Positives and negatives of a label weigh the same in total.
    assert weights[1, 1] * 10 == pytest.approx(weights[0, 1] * 30)
    assert weights[0, 0] == 0  # label 0 has no negative


def test_experiments_run_the_heads_on_multilabel_and_pair_data(
    toy_bert: Path, tmp_path: Path
) -> None:
    """The multi-label runner takes `transformer_multilabel` as it takes `tfidf_ovr`; the
    single-label runner of a text-pair task feeds `transformer` the pairs."""
    import json

    import pandas as pd
    import yaml

    from synthmix.experiment.config import load_experiment
    from synthmix.experiment.results import ResultsStore
    from synthmix.experiment.runner import run_experiment

    plans = {
        "learning_curve": [1.0],
        "synthetic_only": False,
        "half_and_half": False,
        "real_plus_equal": False,
        "synthetic_ratios": [],
    }
    params = {"model": str(toy_bert), "epochs": 15, **SETTINGS}
    for split, seed, n in (("train", 0, 200), ("test", 1, 50)):
        texts, sets = toy_multilabel(n, seed)
        frame = pd.DataFrame({"text": texts, "labels": [json.dumps(list(s)) for s in sets]})
        frame.to_csv(tmp_path / f"ml_{split}.csv", index=False)
        firsts, pairs, labels = toy_pairs(n // 3, seed + 10)
        frame = pd.DataFrame({"text": firsts, "aspect": pairs, "label": labels})
        frame.to_csv(tmp_path / f"pair_{split}.csv", index=False)
    experiments = {
        "multi": {
            "data": {"train": "ml_train.csv", "test": "ml_test.csv", "task": "multi_label"},
            # Toy texts may carry no label: none is forced on them.
            "classifier": {
                "name": "transformer_multilabel",
                "params": {**params, "at_least_one": False},
            },
        },
        "pair": {
            "data": {"train": "pair_train.csv", "test": "pair_test.csv"},
            "classifier": {"name": "transformer", "params": params},
        },
    }
    scores = {}
    for name, body in experiments.items():
        if name == "pair":
            body["data"]["text_pair_column"] = "aspect"  # type: ignore[index]
        config = {"name": name, "plans": plans, "seeds": 1, **body}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        run_dir = tmp_path / f"run-{name}"
        config_path = tmp_path / f"{name}.yaml"
        outcome = run_experiment(load_experiment(config_path), run_dir, jobs=2, progress=False)
        assert outcome.ran == 1
        (record,) = ResultsStore(run_dir).records()
        scores[name] = record["metrics"]["f1_macro"]
    assert scores["multi"] > 0.8 and scores["pair"] > 0.8
