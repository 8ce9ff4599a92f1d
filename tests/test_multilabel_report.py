"""The multi-label report's paired per-text bootstrap, its per-label heatmap and its fallback
to per-seed scores, on hand-made records (no fits: each test takes well under a second)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from synthmix.data.multilabel import MultiLabelData
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_SYNTHETIC, Cell
from synthmix.quality.config import QualityConfig
from synthmix.quality.multilabel import measure_multilabel_quality
from synthmix.report.cells import cell_summaries
from synthmix.report.evidence import Evidence, mix_comparisons
from synthmix.report.plots import RARE_SUPPORT, per_label_grid
from synthmix.report.sections.multilabel import multilabel_section
from synthmix.report.sections.multilabel_quality import (
    PER_LABEL_TITLE,
    PREDICTS_TITLE,
    label_gains,
    per_label_sections,
)
from synthmix.stats.multilabel import evaluate_multilabel
from synthmix.stats.paired import MultiLabelResampler, Verdict
from test_multilabel_quality import HashEncoder

LABELS = ["anger", "joy", "rare", "sadness"]
TEXTS = 400
SEEDS = (0, 1, 2, 3, 4)
CLASSIFIER = "tfidf_ovr"
SMALL = Cell(REAL_ONLY, 0.1)
FULL = Cell(REAL_ONLY, 1.0)
BETTER = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "better")
SAME = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "same")


def _gold(rng: np.random.Generator) -> np.ndarray:
    gold = (rng.random((TEXTS, len(LABELS))) < [0.3, 0.3, 0.0, 0.3]).astype(np.int8)
    gold[:5, 2] = 1  # "rare": 5 test texts
    return gold


def _noisy(gold: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    """Gold with a share `flip` of its text-label decisions wrong."""
    return np.where(rng.random(gold.shape) < flip, 1 - gold, gold).astype(np.int8)


def _record(cell: Cell, seed: int, gold: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "key": f"{cell.key}|{seed}|{CLASSIFIER}",
        "cell_key": cell.key,
        "cell": cell.describe(),
        "seed": seed,
        "classifier": {"name": CLASSIFIER, "label": CLASSIFIER, "params": {}},
        "train_size": 100,
        "shortfall": {},
        "metrics": evaluate_multilabel(gold, predicted, LABELS),
        "label_predictions": [np.flatnonzero(row).tolist() for row in predicted],
    }


def _gold_sets(gold: np.ndarray) -> list[tuple[str, ...]]:
    return [tuple(LABELS[j] for j in np.flatnonzero(row)) for row in gold]


@pytest.fixture(scope="module")
def run() -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A planted improvement: `better` gets 15% of decisions wrong where its 10%-real
    baseline gets 25%; `same` predicts exactly what the baseline predicts, seed by seed."""
    rng = np.random.default_rng(7)
    gold = _gold(rng)
    records = []
    for seed in SEEDS:
        baseline = _noisy(gold, 0.25, rng)
        records += [
            _record(SMALL, seed, gold, baseline),
            _record(SAME, seed, gold, baseline),
            _record(BETTER, seed, gold, _noisy(gold, 0.15, rng)),
            _record(FULL, seed, gold, _noisy(gold, 0.1, rng)),
        ]
    return gold, records


def test_resampled_scores_match_scikit_learn_on_the_resampled_texts() -> None:
    rng = np.random.default_rng(0)
    gold = _gold(rng)
    predicted = np.stack([_noisy(gold, 0.2, rng), _noisy(gold, 0.3, rng)])
    resampler = MultiLabelResampler(gold, resamples=4, seed=3)
    drawn = np.repeat(np.arange(TEXTS), resampler.weights[2].astype(int))
    for average, scores in (("macro", resampler.f1_macro), ("micro", resampler.f1_micro)):
        expected = f1_score(gold[drawn], predicted[1][drawn], average=average, zero_division=0)
        assert scores(predicted)[1, 2] == pytest.approx(expected, abs=1e-6)
    assert resampler.f1_per_class(predicted[0]).shape == (4, len(LABELS))


def test_planted_improvement_is_found_and_identical_predictions_are_not(
    run: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    gold, records = run
    evidence = Evidence(records, gold_sets=_gold_sets(gold))
    versus = mix_comparisons(cell_summaries(records), evidence, CLASSIFIER)
    better, same = versus[BETTER.key].result, versus[SAME.key].result
    assert better.text_level and better.texts == TEXTS
    assert better.verdict is Verdict.HELPED and better.difference > 0.05
    assert same.difference == 0 and same.verdict is Verdict.NO_EFFECT
    # Holm over the report's two comparisons, as statsmodels computes it.
    _, holm, _, _ = multipletests([better.p_value, same.p_value], method="holm")
    assert [better.p_adjusted, same.p_adjusted] == pytest.approx(list(holm))
    assert better.family == same.family == 2 and better.p_adjusted >= better.p_value
    # The test texts' noise counts: identical per-seed differences would give a zero spread.
    assert better.text_variance > 0
    micro = evidence.compare((CLASSIFIER, BETTER.key), (CLASSIFIER, SMALL.key), metric="f1_micro")
    assert micro is not None and micro.text_level and micro.difference > 0.05


def test_section_shows_paired_table_and_per_label_heatmap(
    run: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    gold, records = run
    cells = cell_summaries(records)
    evidence = Evidence(records, gold_sets=_gold_sets(gold))
    versus = mix_comparisons(cells, evidence, CLASSIFIER)
    support = dict(zip(LABELS, gold.sum(axis=0).tolist(), strict=True))
    info = {"task": "multi_label", "data": {"test": {"class_counts": support}}}
    section = multilabel_section(records, CLASSIFIER, info, cells, evidence, versus)
    assert section.figures["per_label_f1_difference.png"].startswith(b"\x89PNG")
    assert "| better — 10% real + 100% synthetic | 10% real alone | +0." in section.markdown
    assert "| texts and seeds |" in section.markdown
    assert "rare (n=5) *" not in section.markdown  # tick labels live in the figure
    assert f"(1 of {len(LABELS)}) have fewer than {RARE_SUPPORT} test texts" in section.markdown
    rows, labels, values = per_label_grid(cells, versus, support)
    assert [row.key for row in rows] == [BETTER.key, SAME.key]
    assert labels[-1] == "rare" and sorted(labels) == LABELS  # most test texts first
    by_cell = {c.key: c for c in cells}
    joy = labels.index("joy")
    assert values[0, joy] == pytest.approx(
        by_cell[BETTER.key].per_class["joy"] - by_cell[SMALL.key].per_class["joy"]
    )
    assert np.all(values[1] == 0)


def test_records_without_label_predictions_fall_back_to_seed_level(
    run: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    gold, records = run
    old = [{k: v for k, v in r.items() if k != "label_predictions"} for r in records]
    cells = cell_summaries(old)
    evidence = Evidence(old, gold_sets=_gold_sets(gold))
    versus = mix_comparisons(cells, evidence, CLASSIFIER)
    assert not versus[BETTER.key].result.text_level
    assert "seed-level only" in evidence.reason
    section = multilabel_section(old, CLASSIFIER, {"task": "multi_label"}, cells, evidence, versus)
    assert "| seed-level only |" in section.markdown
    assert "per-seed scores only" in section.markdown


def test_per_label_quality_sections_list_labels_and_rank_metrics_against_label_gains(
    run: tuple[np.ndarray, list[dict[str, Any]]],
) -> None:
    _, records = run
    cells = cell_summaries(records)
    rng = np.random.default_rng(1)

    def source(name: str, words: int) -> MultiLabelData:
        texts = [" ".join(f"w{rng.integers(words)}" for _ in range(6)) for _ in range(60)]
        sets = [tuple(sorted({LABELS[i % 4], LABELS[(i * 7) % 4]})) for i in range(60)]
        return MultiLabelData(pd.DataFrame({"text": texts, "labels": sets}), name)

    real = source("real", 50)
    config = QualityConfig(metrics=("distinct_1", "distinct_2", "novelty"), n_boot=10)
    quality = {
        name: measure_multilabel_quality(source(name, words), real, config, HashEncoder())
        for name, words in (("better", 30), ("same", 80))
    }
    gains = label_gains(cells, SMALL_REAL_PLUS_SYNTHETIC, 1.0)
    assert set(gains) == {(s, label) for s in ("better", "same") for label in LABELS}
    assert all(gain == 0 for (s, _), gain in gains.items() if s == "same")
    sections = per_label_sections(quality, cells, SMALL_REAL_PLUS_SYNTHETIC, 1.0, n_boot=50)
    assert [s.title for s in sections] == [PER_LABEL_TITLE, PREDICTS_TITLE]
    table = sections[0].markdown
    assert "### better" in table and "### same" in table
    # Text i carries labels i % 4 and 3i % 4: joy and sadness every other text, anger and
    # rare one in four; most synthetic texts first.
    assert "| joy | 30 | 30 |" in table and "| anger | 15 | 15 |" in table
    assert table.index("| joy |") < table.index("| anger |")
    assert "| distinct_2 |" in sections[1].markdown and "| 8 |" in sections[1].markdown


def test_multilabel_test_set_reloads_only_while_its_fingerprint_matches(tmp_path: Any) -> None:
    from synthmix.data.multilabel import load_multilabel
    from synthmix.experiment.multi_runner import _fingerprint
    from synthmix.report.testset import load_test_labels

    path = tmp_path / "test.csv"
    pd.DataFrame({"text": ["раз", "два"], "labels": ['["joy"]', '["joy", "anger"]']}).to_csv(
        path, index=False
    )
    info = {
        "config": {"data": {"task": "multi_label"}},
        "data": {"test": {"source": str(path), "sha256_16": _fingerprint(load_multilabel(path))}},
    }
    assert load_test_labels(info).label_sets == [("joy",), ("anger", "joy")]
    pd.DataFrame({"text": ["раз", "два"], "labels": ['["joy"]', '["anger"]']}).to_csv(
        path, index=False
    )
    changed = load_test_labels(info)
    assert changed.label_sets is None and "has changed since the run" in changed.reason
