"""TF-IDF on n-gram counts computed once per text: the per-fit weighting equals
scikit-learn's vectorizers on the fit's rows, and F1 matches the per-cell path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

from synthmix.classifiers.features import NgramSpec, TfidfWeights
from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData, stratified_fraction
from synthmix.stats.classification import evaluate


@pytest.fixture(scope="module")
def small(cedr_train: LabeledData, cedr_test: LabeledData) -> tuple[LabeledData, LabeledData]:
    return stratified_fraction(cedr_train, 0.1, seed=0), stratified_fraction(
        cedr_test, 400 / len(cedr_test), seed=0
    )


def test_per_fit_weights_equal_tfidf_transformers_on_the_same_rows(
    small: tuple[LabeledData, LabeledData],
) -> None:
    """On the fit's own count rows: the n-grams passing min_df (1 for words, 2 for chars),
    then smoothed IDF, sublinear TF and L2 norm per block, as scikit-learn computes them."""
    train, _ = small
    spec = NgramSpec()
    counts = spec.counts(train.texts[:300])
    weights = TfidfWeights.fit(counts, spec.n_features, min_df=(1, 2))
    blocks = []
    for block, min_df in ((slice(0, spec.n_features), 1), (slice(spec.n_features, None), 2)):
        part = counts[:, block].tocsc()
        part = part[:, np.flatnonzero(np.diff(part.indptr) >= min_df)]
        blocks.append(TfidfTransformer(sublinear_tf=True).fit_transform(part))
    expected = sp.hstack(blocks).toarray()
    # The fit keeps its columns most frequent first; `expected`'s are in hashed-id order.
    position = np.searchsorted(np.sort(weights.columns), weights.columns)
    assert np.allclose(weights.transform(counts).toarray(), expected[:, position], atol=1e-6)


def test_hashed_counts_keep_nearly_every_ngram(small: tuple[LabeledData, LabeledData]) -> None:
    """Hash collisions merge a few n-grams (about n^2 / 2m of n in m = 2^20 buckets: 12 of
    4939 word n-grams here), and two char n-grams seen once can share a bucket that then
    passes min_df=2 (68 more than 7744)."""
    train, _ = small
    texts = train.texts[:300]
    spec = NgramSpec()
    weights = TfidfWeights.fit(spec.counts(texts), spec.n_features, min_df=(1, 2))
    word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2)).fit(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2).fit(texts)
    assert 0 <= len(word.vocabulary_) - weights.n_word <= len(word.vocabulary_) // 100
    n_char = weights.n_columns - weights.n_word
    assert abs(len(char.vocabulary_) - n_char) <= len(char.vocabulary_) // 50


def test_fit_on_texts_equals_fit_on_stored_counts(small: tuple[LabeledData, LabeledData]) -> None:
    train, test = small
    spec = NgramSpec()
    on_texts = TfidfLogReg(random_state=1).fit(train.texts, train.labels)
    # Counts of a larger set of texts, of which the fit selects its own rows.
    everything = spec.counts([*test.texts, *train.texts])
    rows = np.arange(len(test), len(test) + len(train))
    on_counts = TfidfLogReg(random_state=1).fit_counts(everything[rows], train.labels)
    assert np.array_equal(
        on_texts.predict(test.texts), on_counts.predict_counts(everything[: len(test)])
    )
    assert set(on_counts.timings_) == {"featurise_s", "fit_s"}


def test_idf_ignores_rows_outside_the_fit(small: tuple[LabeledData, LabeledData]) -> None:
    """A text that only another cell trains on changes nothing in this cell's model."""
    train, _ = small
    spec = NgramSpec()
    mine = spec.counts(train.texts)
    alone = TfidfLogReg(random_state=0).fit_counts(mine, train.labels)
    stored = spec.counts([*train.texts, "совершенно посторонний текст другой ячейки"])
    shared = TfidfLogReg(random_state=0).fit_counts(stored[: len(train)], train.labels)
    assert np.array_equal(alone.weights_.columns, shared.weights_.columns)
    assert np.array_equal(alone.model_.coef_, shared.model_.coef_)


def test_hashed_f1_matches_the_per_cell_path(small: tuple[LabeledData, LabeledData]) -> None:
    """F1 parity on a small real sample over 3 seeds; benchmarks/bench_grid.py checks the
    0.005 bound on full data (a small test set's F1 moves more than that per seed)."""
    train, test = small
    scores: dict[str, list[float]] = {"hashed": [], "per_cell": []}
    for seed in range(3):
        for features, params in (("hashed", {}), ("per_cell", {"tol": 1e-3, "max_iter": 1000})):
            model = TfidfLogReg(features=features, random_state=seed, **params)
            predicted = model.fit(train.texts, train.labels).predict(test.texts)
            scores[features].append(
                evaluate(test.labels, predicted.tolist(), train.classes)["f1_macro"]
            )
    assert np.mean(scores["hashed"]) == pytest.approx(np.mean(scores["per_cell"]), abs=0.02)
    assert np.mean(scores["hashed"]) > 0.4


def test_method_names_features_and_tolerance() -> None:
    assert TfidfLogReg().method() == (
        "hashed n-gram counts 2^20, per-fit IDF, float32; sag tol=0.05 max_iter=100"
    )
    assert TfidfLogReg(solver="saga", tol=1e-2).method().endswith("; saga tol=0.01 max_iter=100")
    assert TfidfLogReg(features="per_cell", tol=1e-3, max_iter=1000).method() == (
        "per-cell TfidfVectorizer; saga tol=0.001 max_iter=1000"
    )
    with pytest.raises(ConfigError, match="features must be one of hashed, per_cell"):
        TfidfLogReg(features="hashing").fit(["a b", "c d"], ["x", "y"])
    with pytest.raises(ConfigError, match="solver must be one of sag, saga, lbfgs, got 'sgd'"):
        TfidfLogReg(solver="sgd").fit(["a b", "c d"], ["x", "y"])


def test_hashed_features_are_float32_in_frequency_order(
    small: tuple[LabeledData, LabeledData],
) -> None:
    """The solver sees float32 features, most frequent n-grams first; the model is fitted
    on them (sag keeps the dtype) and predicts on counts of unseen texts."""
    train, test = small
    spec = NgramSpec()
    counts = spec.counts(train.texts)
    model = TfidfLogReg(random_state=0).fit_counts(counts, train.labels)
    features = model.weights_.transform(counts)
    assert features.dtype == np.float32 and model.model_.coef_.dtype == np.float32
    df = np.diff(features.tocsc().indptr)
    assert np.all(df[:-1] >= df[1:])
    assert model.model_.n_iter_[0] < model.max_iter
    assert len(model.predict_counts(spec.counts(test.texts))) == len(test)
