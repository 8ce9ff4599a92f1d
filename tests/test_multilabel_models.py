"""Multi-label and text-pair classifiers, metrics and mixing on small real subsets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss

from conftest import dataset_dir
from synthmix.classifiers.multilabel import (
    TfidfOneVsRest,
    apply_thresholds,
    tune_relative_cut,
    tune_thresholds,
)
from synthmix.classifiers.pair_features import pair_context
from synthmix.classifiers.pairs import PairTfidfLogReg
from synthmix.classifiers.registry import ClassifierConfig, build_classifier
from synthmix.data.labeled import LabeledData, load_labeled, stratified_fraction
from synthmix.data.multilabel import MultiLabelData, load_multilabel
from synthmix.data.pairs import join_pairs, split_pair
from synthmix.experiment.mixing import (
    HALF_AND_HALF,
    REAL_ONLY,
    SMALL_REAL_PLUS_SYNTHETIC,
    Cell,
)
from synthmix.experiment.multimix import (
    compose_multilabel,
    sample_per_label,
    stratified_multilabel_fraction,
)
from synthmix.stats.multilabel import evaluate_multilabel


@pytest.fixture(scope="module")
def goemotions() -> MultiLabelData:
    return load_multilabel(dataset_dir("ru_goemotions") / "train.csv")


@pytest.fixture(scope="module")
def goemotions_test() -> MultiLabelData:
    return load_multilabel(dataset_dir("ru_goemotions") / "test.csv")


@pytest.fixture(scope="module")
def aspects() -> tuple[LabeledData, LabeledData]:
    folder = dataset_dir("sentirueval2015_restaurant_aspects")
    train = load_labeled(folder / "train.csv", text_pair_column="aspect")
    test = load_labeled(folder / "test.csv", text_pair_column="aspect")
    return stratified_fraction(train, 0.4, seed=0), stratified_fraction(test, 0.1, seed=0)


def test_metrics_match_scikit_learn_on_a_hand_made_case() -> None:
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    metrics = evaluate_multilabel(gold, pred, ["a", "b", "c"])
    assert metrics["f1_micro"] == pytest.approx(f1_score(gold, pred, average="micro"))
    assert metrics["f1_macro"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert metrics["f1_samples"] == pytest.approx(f1_score(gold, pred, average="samples"))
    assert metrics["hamming_loss"] == pytest.approx(3 / 12)
    assert metrics["subset_accuracy"] == metrics["accuracy"] == 0.5
    assert metrics["per_class"]["b"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }


def test_thresholds_maximise_each_labels_f1() -> None:
    gold = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    scores = np.array([[0.3, 0.9], [0.2, 0.1], [0.1, 0.2], [0.05, 0.8]])
    thresholds = tune_thresholds(gold, scores)
    # Label 0: 0.2 catches both positives and no negative; label 1 needs more than 0.2 but
    # at most 0.8 (the one nearest 0.5 among the best).
    assert 0.1 < thresholds[0] <= 0.2
    assert 0.2 < thresholds[1] <= 0.8 and abs(thresholds[1] - 0.5) < 0.03


def test_one_vs_rest_learns_goemotions_and_beats_fixed_thresholds(
    goemotions: MultiLabelData, goemotions_test: MultiLabelData
) -> None:
    train = goemotions.subset(range(600))
    test = goemotions_test.subset(range(400))
    model = TfidfOneVsRest(cv=2, random_state=0).fit(train.texts, train.label_sets)
    classes = list(model.classes_)
    gold = test.indicator(classes)
    predicted = model.predict_indicator(test.texts)
    assert predicted.shape == gold.shape and (predicted.sum(axis=1) >= 1).all()
    tuned = evaluate_multilabel(gold, predicted, classes)
    fixed = (model.predict_proba(test.texts) >= 0.5).astype(int)
    assert tuned["f1_macro"] > f1_score(gold, fixed, average="macro", zero_division=0)
    # Far above chance (predicting `neutral` for every text gives micro-F1 about 0.3).
    assert tuned["f1_micro"] > 0.3
    assert tuned["hamming_loss"] == pytest.approx(hamming_loss(gold, predicted))
    assert model.predict(test.texts[:3]) == [
        tuple(np.asarray(classes)[row.astype(bool)]) for row in predicted[:3]
    ]
    # Thresholds come from the training data: the same fit on other test texts keeps them.
    assert np.all((model.thresholds_ > 0) & (model.thresholds_ < 1))
    # The relative cut prunes weak companions (3.0 labels per text without it here, 1.19 in
    # the gold labels) without costing macro-F1.
    uncut = apply_thresholds(model.predict_proba(test.texts), model.thresholds_, True, 0.0)
    assert model.relative_cut_ == 0.5
    assert predicted.sum(axis=1).mean() < 0.85 * uncut.sum(axis=1).mean()
    uncut_macro = f1_score(gold, uncut, average="macro", zero_division=0)
    assert tuned["f1_macro"] >= uncut_macro - 0.005
    # Predictions average the fold models whose out-of-fold probabilities tuned the thresholds.
    assert len(model.models_) == 2
    features = model._features(test.texts[:5])
    assert np.allclose(
        model.predict_proba(test.texts[:5]),
        np.mean([m.predict_proba(features) for m in model.models_], axis=0),
    )


def test_relative_cut_prunes_weak_companions_and_is_tuned_on_the_given_rows() -> None:
    thresholds = np.array([0.2, 0.2, 0.2])
    proba = np.array([[0.9, 0.25, 0.1], [0.3, 0.28, 0.05], [0.1, 0.1, 0.15]])
    assert apply_thresholds(proba, thresholds).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    # Label 1 passes its threshold but at 0.28 of the best ratio on row 0: cut at 0.5.
    pruned = apply_thresholds(proba, thresholds, relative_cut=0.5)
    assert pruned.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert apply_thresholds(proba, thresholds, at_least_one=False).tolist()[2] == [0, 0, 0]
    # Gold: one label per row; the weak second label of row 0 is wrong, row 1's right.
    gold = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert tune_relative_cut(gold, proba, thresholds, at_least_one=True) == pytest.approx(0.3)
    # Nothing to prune: the smallest cut (none) wins the tie.
    assert tune_relative_cut(gold[[1, 2]], proba[[1, 2]], thresholds, True) == 0.0


def test_pair_classifier_uses_the_aspect(aspects: tuple[LabeledData, LabeledData]) -> None:
    train, test = aspects
    assert train.pairs is not None and test.pairs is not None
    x_train = join_pairs(train.texts, train.pairs)
    x_test = join_pairs(test.texts, test.pairs)
    assert split_pair(x_train[0]) == (train.texts[0], train.pairs[0])
    scores = {}
    for name, blocks in (("text only", ["text"]), ("pair", ["pair", "context"])):
        config = ClassifierConfig("pair_tfidf_logreg", {"blocks": blocks})
        model = build_classifier(config, seed=0).fit(x_train, train.labels)
        scores[name] = f1_score(test.labels, model.predict(x_test), average="macro")
    # One review holds several aspects with different sentiments: text alone cannot tell them.
    assert scores["pair"] > scores["text only"] + 0.03


def test_pair_context_finds_inflected_aspects() -> None:
    text = "Кухня отличная. Обслуживания почти не было, официант грубил весь вечер."
    assert pair_context(text, "обслуживание", window=3) == "кухня отличная почти не было"
    assert pair_context(text, "интерьер", window=3) == ""
    model = PairTfidfLogReg(blocks=["text", "pair", "context"])
    texts = join_pairs(["хорошо очень", "плохо совсем"], ["еда", "еда"])
    assert list(model.fit(texts, ["pos", "neg"]).predict(texts)) == ["pos", "neg"]


def test_stratified_fraction_keeps_label_shares_and_rare_labels(
    goemotions: MultiLabelData,
) -> None:
    sample = stratified_multilabel_fraction(goemotions, 0.05, seed=3)
    assert abs(len(sample) - 0.05 * len(goemotions)) < 30
    full, got = goemotions.label_counts(), sample.label_counts()
    assert set(got) == set(full)  # grief (13 texts) and pride (15) included
    for label in ("neutral", "admiration", "gratitude"):
        assert got[label] == pytest.approx(0.05 * full[label], rel=0.25)
    again = stratified_multilabel_fraction(goemotions, 0.05, seed=3)
    assert again.texts == sample.texts
    assert stratified_multilabel_fraction(goemotions, 0.05, seed=4).texts != sample.texts


def test_sample_per_label_meets_targets_and_records_what_it_cannot(
    goemotions: MultiLabelData,
) -> None:
    pool = goemotions.subset(range(2000))
    available = pool.label_counts()
    targets = {"neutral": 50, "joy": 20, "grief": available["grief"] + 5}
    drawn = sample_per_label(pool, targets, seed=0)
    counts = drawn.label_counts()
    assert counts["joy"] >= 20 and counts["neutral"] >= 50
    assert counts["grief"] == available["grief"]  # every grief text, still short
    assert all(set(labels) & set(targets) for labels in drawn.label_sets)
    assert counts["neutral"] < 50 + 10  # the greedy draw avoids overshooting companions


def test_compose_multilabel_cells(goemotions: MultiLabelData) -> None:
    real = goemotions.subset(range(1500))
    synthetic = goemotions.subset(range(1500, 4000))
    small = compose_multilabel(Cell(REAL_ONLY, 0.1), real, None, seed=0)
    assert set(small.real_counts) == set(real.classes) and not small.synthetic_counts
    mixed = compose_multilabel(
        Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.5, "held-out"), real, synthetic, seed=0
    )
    # The real sample of a fraction and seed is the same with or without synthetic texts.
    frame = mixed.data.frame
    assert sorted(frame.loc[frame["origin"] == "real", "text"]) == sorted(small.data.texts)
    want = {label: int(np.floor(0.5 * n + 0.5)) for label, n in real.label_counts().items()}
    for label, n in want.items():
        assert mixed.synthetic_counts.get(label, 0) + mixed.shortfall.get(label, 0) >= n
    half = compose_multilabel(Cell(HALF_AND_HALF, 0.5, 0.5, "held-out"), real, synthetic, 1)
    assert {"real", "synthetic"} == set(half.data.frame["origin"])


@pytest.mark.slow
def test_embedding_one_vs_rest_learns_and_embeds_pairs_with_their_interaction(
    goemotions: MultiLabelData, goemotions_test: MultiLabelData
) -> None:
    from synthmix.classifiers.multilabel import EmbeddingOneVsRest

    # The offline encoder embeds about 10 texts/s on 2 busy cores: few texts.
    train = goemotions.subset(range(100))
    test = goemotions_test.subset(range(60))
    model = EmbeddingOneVsRest(cv=2).fit(train.texts, train.label_sets)
    classes = list(model.classes_)
    gold = test.indicator(classes)
    tuned = evaluate_multilabel(gold, model.predict_indicator(test.texts), classes)
    # Better than predicting the most frequent label (neutral) for every text.
    always = np.zeros_like(gold)
    always[:, classes.index("neutral")] = 1
    assert tuned["f1_macro"] > evaluate_multilabel(gold, always, classes)["f1_macro"] + 0.05
    pairs = join_pairs(["Официант был груб.", "Десерт чудесный."], ["официант", "десерт"])
    paired = EmbeddingOneVsRest(cv=2).fit(pairs, [("negative",), ("positive",)])
    features = paired._features(pairs)
    width = features.shape[1] // 3
    assert np.allclose(
        features[:, 2 * width :], features[:, :width] * features[:, width : 2 * width]
    )
