"""Paired comparisons: their statistics, their error rates on pure noise, and the report
verdicts built on them."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from run_records import result_record
from synthmix.data.labeled import load_labeled
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_SYNTHETIC, Cell
from synthmix.experiment.results import ResultsStore, encode_predictions
from synthmix.experiment.run_dir import write_run_info
from synthmix.report import write_report
from synthmix.report.cells import cell_summaries
from synthmix.report.evidence import Evidence, class_comparisons, mix_comparisons
from synthmix.report.testset import fingerprint
from synthmix.stats.classification import evaluate
from synthmix.stats.paired import (
    TextResampler,
    Verdict,
    correct,
    paired_comparison,
)

CLASSES = ["a", "b", "c"]
ALL_REAL = Cell(REAL_ONLY, 1.0)
SMALL = Cell(REAL_ONLY, 0.1)
MIX = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "llm")


def _predict(rng: np.random.Generator, gold: np.ndarray, accuracy: float) -> np.ndarray:
    """Each text right with probability `accuracy`, else a uniformly drawn wrong class."""
    wrong = (gold + rng.integers(1, len(CLASSES), size=gold.size)) % len(CLASSES)
    return np.where(rng.random(gold.size) < accuracy, gold, wrong)


def _improve(rng: np.random.Generator, gold: np.ndarray, base: np.ndarray, share: float) -> None:
    """Set a `share` of the baseline's errors right: the same model, slightly better."""
    errors = np.flatnonzero(base != gold)
    fixed = rng.choice(errors, size=int(share * errors.size), replace=False)
    base[fixed] = gold[fixed]


# --- statistics ----------------------------------------------------------------------------


def test_resampled_f1_is_scikit_learns_weighted_f1_macro() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(3, size=120)
    predictions = _predict(rng, gold, 0.6)
    resampler = TextResampler(gold, 4, resamples=5, seed=1)  # class 3 is never present

    assert resampler.observed_f1_macro(predictions) == pytest.approx(
        f1_score(gold, predictions, labels=range(4), average="macro", zero_division=0)
    )
    for weights, value in zip(resampler.weights, resampler.f1_macro(predictions), strict=True):
        expected = f1_score(
            gold, predictions, labels=range(4), average="macro", zero_division=0,
            sample_weight=weights,
        )  # fmt: skip
        assert value == pytest.approx(expected, abs=1e-6)
    assert resampler.weights.sum(axis=1).tolist() == [120] * 5


def test_seed_level_fallback_is_the_paired_t_test() -> None:
    candidate, baseline = [0.61, 0.58, 0.66, 0.60], [0.57, 0.57, 0.61, 0.58]
    result = paired_comparison(candidate, baseline)
    expected = stats.ttest_rel(candidate, baseline)

    assert not result.text_level
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.difference == pytest.approx(0.03)
    assert result.p_improvement == 1.0


def test_corrected_p_values_are_holms_from_statsmodels() -> None:
    rng = np.random.default_rng(3)
    comparisons = [
        paired_comparison(rng.normal(shift, 0.02, 5), rng.normal(0, 0.02, 5))
        for shift in (0.0, 0.01, 0.03, 0.05, -0.04, 0.0)
    ]
    corrected = correct(comparisons)
    _, expected, _, _ = multipletests([c.p_value for c in comparisons], method="holm")

    assert [c.p_adjusted for c in corrected] == pytest.approx(list(expected))
    assert {c.family for c in corrected} == {6}
    for result in corrected:
        survived = result.p_adjusted < 0.05
        assert (result.verdict is not Verdict.NO_EFFECT) == survived
        if survived:
            assert result.verdict is (Verdict.HELPED if result.difference > 0 else Verdict.HURT)


def test_one_seed_is_never_a_finding() -> None:
    result = correct([paired_comparison([0.9], [0.1])])[0]

    assert math.isnan(result.p_value) and result.verdict is Verdict.NO_EFFECT


def _noise_grid(
    rng: np.random.Generator, resampler: TextResampler, text_level: bool, seeds: int
) -> list[Any]:
    """10 comparisons of two setups that are equally good: each seed draws its own accuracy
    (between-seed spread 0.03) for each of them."""
    comparisons = []
    for _ in range(10):
        fits = [
            [_predict(rng, resampler.gold, 0.7 + rng.normal(0, 0.03)) for _ in range(seeds)]
            for _ in range(2)
        ]
        scores = [[resampler.observed_f1_macro(p) for p in side] for side in fits]
        if text_level:
            resampled = [np.vstack([resampler.f1_macro(p) for p in side]) for side in fits]
            comparisons.append(paired_comparison(*scores, *resampled, texts=resampler.texts))
        else:
            comparisons.append(paired_comparison(*scores))
    return correct(comparisons)


@pytest.mark.parametrize("text_level", [True, False])
def test_false_positive_rate_on_pure_noise_grids_is_at_most_nominal(text_level: bool) -> None:
    rng = np.random.default_rng(11)
    gold = rng.integers(len(CLASSES), size=150)
    resampler = TextResampler(gold, len(CLASSES), resamples=200, seed=5)
    grids = [_noise_grid(rng, resampler, text_level, seeds=3) for _ in range(200)]

    any_finding = np.mean([any(c.verdict is not Verdict.NO_EFFECT for c in g) for g in grids])
    raw = np.mean([c.p_value < 0.05 for g in grids for c in g])
    # 200 grids: the binomial standard error at 5% is 0.015, so 0.08 is two of them of slack.
    assert any_finding <= 0.08
    assert raw <= 0.05 + 0.015


def test_consistent_small_gain_with_large_seed_spread_is_detected() -> None:
    rng = np.random.default_rng(2)
    gold = rng.integers(len(CLASSES), size=600)
    resampler = TextResampler(gold, len(CLASSES), seed=0)
    baselines = [_predict(rng, gold, accuracy) for accuracy in (0.5, 0.62, 0.75, 0.88, 0.7)]
    candidates = [base.copy() for base in baselines]
    for candidate in candidates:
        _improve(rng, gold, candidate, 0.08)
    observed = [[resampler.observed_f1_macro(p) for p in side] for side in (candidates, baselines)]
    resampled = [
        np.vstack([resampler.f1_macro(p) for p in side]) for side in (candidates, baselines)
    ]
    result = correct([paired_comparison(*observed, *resampled, texts=gold.size)])[0]

    # Unpaired, the two sets of scores overlap completely: the seeds move both together.
    assert np.std(observed[1]) > 5 * result.difference / 2
    assert result.verdict is Verdict.HELPED
    assert 0 < result.low < result.difference < result.high
    assert result.p_improvement > 0.95


# --- the report ----------------------------------------------------------------------------


def _text_level_run(
    run_dir: Path, gold: np.ndarray, predictions: dict[Cell, list[np.ndarray]]
) -> Path:
    """A run directory whose test file and run.json let the report reload the gold labels."""
    run_dir.mkdir(parents=True)
    labels = [CLASSES[i] for i in gold]
    test = run_dir / "test.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(gold.size)], "label": labels}).to_csv(
        test, index=False
    )
    data = load_labeled(test, "text", "label")
    write_run_info(
        run_dir,
        {
            "name": "paired",
            "config": {"data": {"text_column": "text", "label_column": "label"}},
            "seeds": list(range(len(next(iter(predictions.values()))))),
            "classifier": {"name": "tfidf_logreg", "params": {}},
            "data": {
                "test": {
                    "source": str(test),
                    "rows": gold.size,
                    "sha256_16": fingerprint(data),
                },
                "sources": {"llm": {"source": "llm.csv", "rows": 90}},
            },
        },
    )
    store = ResultsStore(run_dir)
    for cell, fits in predictions.items():
        for seed, predicted in enumerate(fits):
            record = result_record(cell, seed, 0.0, CLASSES)
            decoded = [CLASSES[i] for i in predicted]
            record["metrics"] = evaluate(labels, decoded, CLASSES)
            record["predictions"] = encode_predictions(decoded, CLASSES)
            store.append(record)
    return run_dir


def _headline(html: str) -> str:
    match = re.search(r'<section class="headline">(.*?)</section>', html, re.S)
    assert match is not None
    return match.group(1)


def test_report_calls_a_consistent_gain_helped_and_noise_no_effect(tmp_path: Path) -> None:
    """Five seeds whose baselines range from F1 0.45 to 0.75; the mix fixes a tenth of each
    seed's errors, so it is better on every seed by a few points."""
    rng = np.random.default_rng(4)
    gold = rng.integers(len(CLASSES), size=500)
    small = [_predict(rng, gold, accuracy) for accuracy in (0.45, 0.6, 0.75, 0.55, 0.68)]
    mix = [base.copy() for base in small]
    for predicted in mix:
        _improve(rng, gold, predicted, 0.1)
    full = [_predict(rng, gold, 0.9) for _ in small]
    noise = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 0.5, "llm")
    noisy = [_predict(rng, gold, accuracy) for accuracy in (0.45, 0.6, 0.75, 0.55, 0.68)]
    run = _text_level_run(
        tmp_path / "run", gold, {ALL_REAL: full, SMALL: small, MIX: mix, noise: noisy}
    )
    html = write_report(run).html.read_text(encoding="utf-8")
    headline = _headline(html)

    cells = {c.key: c for c in cell_summaries(ResultsStore(run).records())}
    assert cells[MIX.key].f1_macro.overlaps(cells[SMALL.key].f1_macro)  # unpaired: "noise"
    assert "Best cell with synthetic data: llm — 10% real + 100% synthetic" in headline
    assert re.search(r"100% synthetic[^<]*helped: \+0\.0\d\d vs 10% real alone", headline)
    assert "paired bootstrap over the 500 test texts" in headline
    assert "Holm" in headline and "Dror et al. 2018" in headline
    assert "Bouthillier et al. 2021" in headline
    assert "per-seed scores only" not in headline
    ranking = html[html.index("<h2>Ranking</h2>") :]
    assert "no detectable effect" in ranking and "helped" in ranking


def test_report_on_records_without_predictions_falls_back_to_seeds(tmp_path: Path) -> None:
    write_run_info(tmp_path, {"name": "old", "data": {"sources": {"llm": {"rows": 9}}}})
    store = ResultsStore(tmp_path)
    for cell, values in {
        ALL_REAL: [0.70, 0.71, 0.72],
        SMALL: [0.50, 0.51, 0.52],
        MIX: [0.55, 0.57, 0.56],
    }.items():
        for seed, value in enumerate(values):
            record = result_record(cell, seed, value, CLASSES)
            record.pop("predictions", None)
            store.append(record)
    headline = _headline(write_report(tmp_path).html.read_text(encoding="utf-8"))

    assert "synthetic data helped" in headline
    assert "1 of 1 comparisons used per-seed scores only (paired t over seeds" in headline
    assert "their records hold no per-text test predictions" in headline


def test_report_says_why_when_the_test_file_changed(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    gold = rng.integers(len(CLASSES), size=200)
    fits = {cell: [_predict(rng, gold, 0.6) for _ in range(3)] for cell in (ALL_REAL, SMALL, MIX)}
    run = _text_level_run(tmp_path / "run", gold, fits)
    test = run / "test.csv"
    test.write_text(test.read_text(encoding="utf-8").replace("text 0,", "edited,"), "utf-8")
    headline = _headline(write_report(run).html.read_text(encoding="utf-8"))

    assert "comparisons used per-seed scores only" in headline
    assert f"the test set {test} has changed since the run" in headline


def test_per_class_differences_are_tested_per_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    gold = rng.integers(len(CLASSES), size=600)
    small = [_predict(rng, gold, accuracy) for accuracy in (0.5, 0.6, 0.7, 0.55, 0.65)]
    mix = [base.copy() for base in small]
    for predicted in mix:
        # Better on class "a" only: its errors on texts of class a are fixed.
        errors = np.flatnonzero((predicted != gold) & (gold == 0))
        predicted[errors[: int(0.5 * errors.size)]] = 0
    run = _text_level_run(tmp_path / "run", gold, {ALL_REAL: small, SMALL: small, MIX: mix})
    records = ResultsStore(run).records()
    cells = cell_summaries(records)
    evidence = Evidence(records, [CLASSES[i] for i in gold])
    versus = mix_comparisons(cells, evidence, "tfidf_logreg")
    per_class = class_comparisons(cells, evidence, "tfidf_logreg", versus)

    assert per_class[MIX.key, "a"].verdict is Verdict.HELPED
    assert per_class[MIX.key, "a"].family == len(CLASSES)
    assert per_class[MIX.key, "b"].difference == pytest.approx(0.0, abs=0.05)
