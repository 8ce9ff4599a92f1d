"""`synthmix experiment` and `synthmix report` end to end on multi-label GoEmotions and on
SentiRuEval aspect pairs (small real subsets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import dataset_dir
from synthmix.core.errors import ConfigError, DataError
from synthmix.data.multilabel import load_multilabel
from synthmix.experiment.config import load_experiment
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import run_experiment
from synthmix.quality.config import QualityConfig
from synthmix.quality.files import write_quality
from synthmix.quality.multilabel import measure_multilabel_quality
from synthmix.report.write import write_report
from test_multilabel_quality import HashEncoder

PLANS = {
    "learning_curve": [0.5, 1.0],
    "synthetic_only": False,
    "half_and_half": False,
    "real_plus_equal": False,
    "small_real_fraction": 0.5,
    "synthetic_ratios": [0.5],
}


@pytest.fixture(scope="module")
def goemotions_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("goemotions")
    source = dataset_dir("ru_goemotions")
    train = pd.read_csv(source / "train.csv")
    train.iloc[:300].to_csv(folder / "train.csv", index=False)
    # Other real texts stand in for a pre-generated source, with provenance columns.
    train.iloc[300:700].assign(generator="held-out-real", strategy="none").to_csv(
        folder / "synth.csv", index=False
    )
    pd.read_csv(source / "test.csv").iloc[:200].to_csv(folder / "test.csv", index=False)
    config = {
        "name": "goemotions-small",
        "data": {"train": "train.csv", "test": "test.csv", "task": "multi_label"},
        "sources": [{"name": "eda", "augment": {"alpha": 0.1}}, {"path": "synth.csv"}],
        "plans": PLANS,
        "seeds": 2,
        "classifier": {"name": "tfidf_ovr", "params": {"cv": 2}},
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def test_multilabel_experiment_runs_resumes_and_reports(goemotions_files: Path) -> None:
    config = load_experiment(goemotions_files / "experiment.yaml")
    run_dir = goemotions_files / "run"
    outcome = run_experiment(config, run_dir, jobs=1, progress=False)
    # real 50% and 100%, and 50% real + 50% of each source: 4 cells x 2 seeds
    assert outcome.ran == 8 and outcome.reused == 0
    records = ResultsStore(run_dir).records()
    titles = {r["cell"]["title"] for r in records}
    assert titles == {"50% real", "100% real", "50% real + 50% synthetic"}
    for record in records:
        metrics = record["metrics"]
        assert metrics["task"] == "multi_label"
        assert 0 < metrics["f1_micro"] <= 1 and 0 <= metrics["hamming_loss"] < 1
        # Per label of the training data (all 28 occur in these 300 texts).
        assert sorted(metrics["per_class"]) == metrics["classes"] and len(metrics["classes"]) == 28
        assert len(record["label_predictions"]) == 200
    small = [r for r in records if r["cell"]["title"] == "50% real"]
    assert all(set(r["real_counts"]) == set(small[0]["real_counts"]) for r in small)
    mixed = [r for r in records if r["cell"]["source"] == "synth"]
    assert all(r["synthetic_counts"]["neutral"] >= 40 for r in mixed)
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert info["task"] == "multi_label"
    assert info["data"]["train"]["rows_with_several_labels"] > 0
    again = run_experiment(config, run_dir, jobs=1, progress=False)
    assert again.ran == 0 and again.reused == 8
    # More seeds for the small-real cells alone: only their new fits run.
    config.small_real_seeds = [0, 1, 2]
    more = run_experiment(config, run_dir, jobs=1, progress=False)
    added = [r for r in ResultsStore(run_dir).records() if r["seed"] == 2]
    assert more.ran == len(added) > 0 and more.reused == 8
    assert "100% real" not in {r["cell"]["title"] for r in added}
    # Per-label quality of the file source, where the report looks for it.
    synth = load_multilabel(goemotions_files / "synth.csv")
    real = load_multilabel(goemotions_files / "train.csv")
    config_q = QualityConfig(metrics=("distinct_2", "novelty"), n_boot=10)
    quality = measure_multilabel_quality(synth, real, config_q, encoder=HashEncoder())
    write_quality({**quality, "source_name": "synth"}, run_dir / "quality" / "synth.json")
    paths = write_report(run_dir)
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "## Quality per label" in markdown and "| neutral |" in markdown
    assert "## Which per-label quality metric goes with the per-label gain?" in markdown
    assert "## Multi-label metrics" in markdown
    assert "micro-F1" in markdown and "Hamming loss" in markdown
    several = info["data"]["train"]["rows_with_several_labels"]
    assert f"- train: 300 texts, {several} with two or more labels, 0 with none" in markdown
    assert "synth — 50% real + 50% synthetic" in markdown
    # The test set reloads, so mixes are paired over test texts and seeds, not seeds alone.
    assert "without the test-text bootstrap" not in markdown
    assert "### Mixes against their baselines, in macro- and micro-F1" in markdown
    assert "a resampled text brings all its label decisions" in markdown
    assert (run_dir / "figures" / "per_label_f1_difference.png").is_file()
    html = paths.html.read_text(encoding="utf-8")
    assert 'alt="Per-label F1 against the real-only baseline" src="data:image/png;base64,' in html
    # A run directory written before records kept label predictions still reports, on
    # per-seed scores alone, and says so.
    old = goemotions_files / "run-old"
    old.mkdir()
    shutil.copy(run_dir / "run.json", old / "run.json")
    with (old / "results.jsonl").open("w", encoding="utf-8") as out:
        for record in ResultsStore(run_dir).records():
            record.pop("label_predictions")
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    stale = write_report(old).markdown.read_text(encoding="utf-8")
    assert "Seed-level only:" in stale and "| seed-level only |" in stale
    assert "per_label_f1_difference.png" in stale


def test_multilabel_task_refuses_a_single_label_classifier(goemotions_files: Path) -> None:
    raw = yaml.safe_load((goemotions_files / "experiment.yaml").read_text(encoding="utf-8"))
    raw["classifier"] = {"name": "tfidf_logreg"}
    path = goemotions_files / "single.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match="'tfidf_logreg' predicts one label per text"):
        run_experiment(load_experiment(path), goemotions_files / "run-single", progress=False)


def test_multilabel_source_with_unknown_label_names_its_row(goemotions_files: Path) -> None:
    raw = yaml.safe_load((goemotions_files / "experiment.yaml").read_text(encoding="utf-8"))
    bad = goemotions_files / "bad.csv"
    pd.DataFrame({"text": ["раз", "два"], "labels": ['["joy"]', '["joy", "glee"]']}).to_csv(
        bad, index=False
    )
    raw["sources"] = [{"path": "bad.csv"}]
    path = goemotions_files / "bad.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv: row 2: label 'glee' does not occur"):
        run_experiment(load_experiment(path), goemotions_files / "run-bad", progress=False)


@pytest.mark.slow
def test_aspect_pair_experiment_beats_text_only(tmp_path: Path) -> None:
    source = dataset_dir("sentirueval2015_restaurant_aspects")
    train = pd.read_csv(source / "train.csv")
    test = pd.read_csv(source / "test.csv")
    reviews = train["review_id"].unique()
    train[train["review_id"].isin(reviews[:40])].to_csv(tmp_path / "train.csv", index=False)
    # Pairs of other real reviews stand in for a pre-generated source of pairs.
    train[train["review_id"].isin(reviews[40:80])].assign(generator="held-out").to_csv(
        tmp_path / "synth.csv", index=False
    )
    test[test["review_id"].isin(test["review_id"].unique()[:15])].to_csv(
        tmp_path / "test.csv", index=False
    )
    config = {
        "name": "aspects-small",
        "data": {"train": "train.csv", "test": "test.csv", "text_pair_column": "aspect"},
        "sources": [{"name": "eda", "augment": {"alpha": 0.1}}, {"path": "synth.csv"}],
        "plans": PLANS,
        "seeds": 2,
        "classifiers": [
            {
                "name": "pair_tfidf_logreg",
                "label": "aspect pair",
                "params": {"blocks": ["pair", "context"]},
            },
            {"name": "pair_tfidf_logreg", "label": "text only", "params": {"blocks": ["text"]}},
        ],
    }
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run_dir = tmp_path / "run"
    outcome = run_experiment(load_experiment(tmp_path / "experiment.yaml"), run_dir, jobs=1)
    assert outcome.ran == 16  # 4 cells x 2 seeds x 2 classifiers
    records = ResultsStore(run_dir).records()
    mixed = [r for r in records if r["cell"]["source"] == "synth"]
    assert mixed and all(r["synthetic_counts"] for r in mixed)
    full = {
        r["classifier"]["label"]: r["metrics"]["f1_macro"]
        for r in records
        if r["cell"]["title"] == "100% real" and r["seed"] == 0
    }
    assert full["aspect pair"] > full["text only"] + 0.05
    markdown = write_report(run_dir).markdown.read_text(encoding="utf-8")
    assert "## Classifiers compared" in markdown
    # The test set reloads with its pairs, so mixes are paired over test texts too.
    assert "without the test-text bootstrap" not in markdown
    assert "| synth | 50% real + 50% synthetic |" in markdown


def test_quality_step_measures_every_multilabel_source_once(goemotions_files: Path) -> None:
    from synthmix.experiment.multi_quality import measure_multilabel_source_quality

    config = load_experiment(goemotions_files / "experiment.yaml")
    run_dir = goemotions_files / "run-quality"
    quality = QualityConfig(metrics=("distinct_2", "novelty"), n_boot=10, sample_size=100)
    written = measure_multilabel_source_quality(
        config, run_dir, quality, progress=False, encoder=HashEncoder()
    )
    assert sorted(p.name for p in written) == ["eda.json", "synth.json"]
    eda = json.loads((run_dir / "quality" / "eda.json").read_text(encoding="utf-8"))
    assert eda["task"] == "multi_label" and eda["source_name"] == "eda"
    # EDA rewrites real texts: each label's section has texts, no more than the sample asks.
    assert 0 < eda["label_counts"]["neutral"]["synthetic"] <= 100 * 2
    again = measure_multilabel_source_quality(
        config, run_dir, quality, progress=False, encoder=HashEncoder()
    )
    assert again == []
