from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthmix.data.labeled import LabeledData
from synthmix.embeddings.encoder import build_encoder
from synthmix.quality.bootstrap import undefined
from synthmix.quality.config import ALL_METRICS, QualityConfig
from synthmix.quality.diversity import (
    compression_ratio,
    distinct_n,
    mean_pairwise_cosine,
    vendi_score,
)
from synthmix.quality.fidelity import frechet_distance, frechet_from_samples, mauve_from_histograms
from synthmix.quality.files import flat_values, summary_lines, write_quality
from synthmix.quality.measure import measure_quality
from synthmix.report.sections.usefulness import analyse, correlate, scatter_png, usefulness_section


class HashEncoder:
    """Random unit vector per distinct text: copies embed identically, other texts are
    nearly orthogonal. Keeps structural tests free of the real encoder's cost."""

    name = "hash-64"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=64))
        vectors = np.asarray(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def labeled(texts: list[str], labels: list[str], source: str = "test") -> LabeledData:
    return LabeledData(pd.DataFrame({"text": texts, "label": labels}), source)


# --- hand-computed values ----------------------------------------------------------------


def test_distinct_n_counts_lowercased_word_ngrams_within_texts() -> None:
    texts = ["Мама мыла раму", "мама мыла окно", "Мама, мыла!"]
    # unigrams: 8 in all, 4 distinct; bigrams: мама-мыла ×3, мыла-раму, мыла-окно;
    # trigrams: two, both distinct (n-grams never span two texts).
    assert distinct_n(texts, 1) == pytest.approx(4 / 8)
    assert distinct_n(texts, 2) == pytest.approx(3 / 5)
    assert distinct_n(texts, 3) == pytest.approx(1.0)


def test_vendi_score_is_n_for_orthogonal_and_1_for_identical_vectors() -> None:
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)
    assert vendi_score(np.ones((7, 3))) == pytest.approx(1.0)
    # More texts than dimensions takes the dual Gram matrix; same answer.
    assert vendi_score(np.vstack([np.eye(3)] * 4)) == pytest.approx(3.0)


def test_mean_pairwise_cosine_excludes_self_pairs() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairs: (0,1)=0, (0,2)=1, (1,2)=0
    assert mean_pairwise_cosine(vectors) == pytest.approx(1 / 3)


def test_frechet_distance_matches_closed_form_for_gaussians() -> None:
    mean_shift = np.array([1.0, -2.0, 0.5, 0.0])
    scales = np.array([1.0, 2.0, 0.5, 3.0])
    closed = float(mean_shift @ mean_shift + np.sum((1 - scales) ** 2))
    exact = frechet_distance(np.zeros(4), np.eye(4), mean_shift, np.diag(scales**2))
    assert exact == pytest.approx(closed)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 4))
    y = mean_shift + rng.normal(size=(20_000, 4)) * scales
    assert frechet_from_samples(x, y) == pytest.approx(closed, abs=0.1)


@pytest.mark.parametrize("n", [6, 40])  # fewer and more samples than dimensions
def test_fast_frechet_equals_sqrtm_formula(n: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 10)), rng.normal(size=(n + 3, 10)) + 0.3
    expected = frechet_distance(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    assert frechet_from_samples(x, y) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_compression_ratio_is_lower_for_repetitive_texts(cedr_train: LabeledData) -> None:
    varied = cedr_train.texts[:60]
    repetitive = [varied[0]] * 60
    assert compression_ratio(repetitive) < compression_ratio(varied) / 2


def test_mauve_of_identical_histograms_is_1_and_falls_as_they_separate() -> None:
    p = np.array([0.25, 0.25, 0.25, 0.25])
    assert mauve_from_histograms(p, p) == pytest.approx(1.0)
    near = mauve_from_histograms(p, np.array([0.3, 0.3, 0.2, 0.2]))
    far = mauve_from_histograms(p, np.array([0.0, 0.0, 0.5, 0.5]))
    assert 1.0 > near > far


def test_leak_share_and_exact_copies_find_planted_copies() -> None:
    real = labeled([f"реальный текст номер {i}" for i in range(50)], ["a", "b"] * 25)
    novel = [f"новый текст {i}" for i in range(40)]
    synth = labeled(novel + real.texts[:10], ["a", "b"] * 25)
    config = QualityConfig(metrics=("novelty",), n_boot=50)
    result = measure_quality(synth, real, config, encoder=HashEncoder())
    overall = result["overall"]
    assert overall["leak_share"]["value"] == pytest.approx(10 / 50)
    assert overall["exact_copy_share"]["value"] == pytest.approx(10 / 50)
    assert overall["leak_share"]["n"] == 50
    assert overall["leak_share"]["low"] <= 0.2 <= overall["leak_share"]["high"]
    assert overall["nn_real_similarity"]["p99"]["value"] == pytest.approx(1.0, abs=1e-5)
    assert set(result["per_class"]) == {"a", "b"}


def test_every_metric_has_value_interval_and_sample_size(
    cedr_train: LabeledData, tmp_path: Path
) -> None:
    synth, real = cedr_train.subset(range(0, 150)), cedr_train.subset(range(150, 300))
    config = QualityConfig(n_boot=20, min_class_size=10, self_bleu_sample=20)
    result = measure_quality(synth, real, config, encoder=HashEncoder())
    overall = result["overall"]
    assert list(overall) == list(ALL_METRICS)
    for name, entry in overall.items():
        parts = entry.values() if name == "nn_real_similarity" else [entry]
        for part in parts:
            assert part["n"] > 0 and part["n_boot"] == 20, name
            assert part["low"] <= part["value"] <= part["high"], name
    assert overall["c2st_auc"]["n_real"] == len(real)
    path = write_quality(result, tmp_path / "q.json")
    reread = json.loads(path.read_text(encoding="utf-8"))
    assert flat_values(reread["overall"])["nn_real_similarity.p90"] > 0

    lines = summary_lines(reread)
    assert len(lines) == 1 + len(flat_values(reread["overall"]))
    p90 = overall["nn_real_similarity"]["p90"]
    expected = f"{p90['value']:9.3f}  [{p90['low']:.3f}, {p90['high']:.3f}]"
    p90_line = next(line for line in lines if line.startswith("nn_real_similarity.p90"))
    assert p90_line.endswith(expected)
    reread["overall"]["mauve"] = undefined("too few texts", n=5).to_dict()
    assert summary_lines(reread)[-1].split() == ["mauve", "-", "too", "few", "texts"]


# --- fidelity metrics separate real text from word salad ----------------------------------


def _shuffle_words(data: LabeledData, seed: int) -> LabeledData:
    rng = np.random.default_rng(seed)

    def shuffled(text: str) -> str:
        words = text.split()
        rng.shuffle(words)
        return " ".join(words)

    frame = data.frame.assign(text=[shuffled(t) for t in data.texts])
    return LabeledData(frame, "shuffled")


@pytest.fixture(scope="module")
def fidelity(cedr_train: LabeledData) -> dict[str, dict[str, Any]]:
    order = np.random.default_rng(0).permutation(len(cedr_train))
    real = cedr_train.subset(order[:400])
    other = cedr_train.subset(order[400:800])
    salad = _shuffle_words(cedr_train.subset(order[800:1200]), seed=1)
    encoder = build_encoder()
    config = QualityConfig(metrics=("fidelity",), per_class=False, n_boot=50)
    return {
        name: measure_quality(synth, real, config, encoder)["overall"]
        for name, synth in (("real", other), ("salad", salad))
    }


def test_mauve_is_higher_for_real_than_for_shuffled_words(fidelity: dict[str, Any]) -> None:
    real, salad = fidelity["real"]["mauve"], fidelity["salad"]["mauve"]
    assert real["value"] > salad["value"] + 0.1
    assert real["low"] > salad["value"]


def test_frechet_is_lower_for_real_than_for_shuffled_words(fidelity: dict[str, Any]) -> None:
    real, salad = fidelity["real"]["frechet_distance"], fidelity["salad"]["frechet_distance"]
    assert real["high"] < salad["low"]


def test_c2st_cannot_tell_real_from_real_but_spots_shuffled_words(
    fidelity: dict[str, Any],
) -> None:
    real, salad = fidelity["real"]["c2st_auc"], fidelity["salad"]["c2st_auc"]
    assert abs(real["value"] - 0.5) < 0.07
    assert real["low"] < 0.5 < real["high"]
    assert salad["value"] > 0.75 and salad["low"] > real["high"]


# --- which metric predicts usefulness ------------------------------------------------------


def test_perfect_monotone_relation_has_rank_correlation_1() -> None:
    f1 = {f"s{i}": 0.5 + 0.03 * i for i in range(8)}
    metric = {f"s{i}": float(i**2) for i in range(8)}
    correlation = correlate("m", metric, f1, n_boot=200)
    assert correlation.spearman == pytest.approx(1.0)
    assert correlation.kendall == pytest.approx(1.0)
    reverse = correlate("m", {k: -v for k, v in metric.items()}, f1, n_boot=200)
    assert reverse.spearman == pytest.approx(-1.0)


def test_analysis_names_reliable_predictor_or_none() -> None:
    rng = np.random.default_rng(0)
    sources = [f"s{i}" for i in range(8)]
    f1 = {s: 0.5 + 0.03 * i for i, s in enumerate(sources)}
    quality = {s: {"good": float(i), "noise": float(rng.normal())} for i, s in enumerate(sources)}
    analysis = analyse(quality, f1, n_boot=200)
    assert analysis.best is not None and analysis.best.metric == "good"
    assert analysis.rows()[0][0] == "good"
    assert scatter_png(analysis.best).startswith(b"\x89PNG")
    only_noise = {s: {"noise": q["noise"]} for s, q in quality.items()}
    assert analyse(only_noise, f1, n_boot=200).best is None
    assert "needs at least" in analyse(dict(list(quality.items())[:2]), f1).verdict


def test_a_metric_on_which_one_source_differs_is_not_a_predictor() -> None:
    # The demo's case: leak share is 0 for every LLM source and > 0 for the rule-based one,
    # which also scores lowest.
    f1 = {"eda": 0.52, "a": 0.53, "b": 0.531, "c": 0.532, "d": 0.533, "e": 0.534}
    leak_share = {s: (0.02 if s == "eda" else 0.0) for s in f1}
    correlation = correlate("leak_share", leak_share, f1, n_boot=500)
    assert correlation.spearman < -0.5
    # Resamples without "eda" (a third of them) tie completely and count as no association.
    assert correlation.spearman_high == 0.0
    assert not correlation.reliable
    assert analyse({s: {"leak_share": v} for s, v in leak_share.items()}, f1).best is None


def _record(source: str, f1: float, seed: int) -> dict[str, Any]:
    cell = {
        "plan": "small_real_plus_synthetic",
        "source": source,
        "real_fraction": 0.1,
        "synthetic_ratio": 1.0,
        "title": "10% real + 100% synthetic",
    }
    metrics = {
        "f1_macro": f1,
        "f1_weighted": f1,
        "accuracy": f1,
        "classes": ["a"],
        "per_class": {"a": {"f1": f1}},
    }
    key = f"small_real_plus_synthetic|{source}|0.1|1"
    return {
        "key": f"{key}|{seed}",
        "cell_key": key,
        "cell": cell,
        "train_size": 100,
        "shortfall": {},
        "metrics": metrics,
    }


def test_usefulness_section_reads_run_and_renders(tmp_path: Path) -> None:
    sources = {"alpha": 0.40, "beta": 0.50, "gamma": 0.55, "delta": 0.60}
    # Two seeds per cell, ±0.01 around the mean the analysis should use.
    lines = [
        json.dumps(_record(s, f1 + delta, seed))
        for s, f1 in sources.items()
        for seed, delta in ((0, 0.01), (1, -0.01))
    ]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    quality = {
        s: {"overall": {"mauve": {"value": f1 * 2}, "c2st_auc": {"value": 1 - f1}}}
        for s, f1 in sources.items()
    }
    section = usefulness_section(tmp_path, quality)
    assert "| mauve | +1.00 |" in section.markdown
    assert "c2st_auc" in section.html and "data:image/png;base64" in section.html
    assert set(section.figures) == {"usefulness_mauve.png", "usefulness_c2st_auc.png"}
