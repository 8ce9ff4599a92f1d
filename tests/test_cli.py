"""The command line as a user runs it: a real subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthmix.data import load_labeled
from synthmix.results import ResultsStore


def synthmix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthmix", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_user_mistakes_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nХорошо,joy\n,joy\n", encoding="utf-8")
    result = synthmix("card", "init", str(bad))
    assert result.returncode == 2
    assert result.stderr == f"error: {bad}: row 2: empty text\n"
    assert "Traceback" not in result.stderr

    missing = synthmix("experiment", str(tmp_path / "nope.yaml"))
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: {tmp_path / 'nope.yaml'}: file not found\n",
    )

    not_a_run = synthmix("report", str(tmp_path))
    assert not_a_run.stderr == (
        f"error: {tmp_path}: not an experiment run directory (no run.json)\n"
    )


def test_card_init_to_stdout_and_file(experiment_files: Path, tmp_path: Path) -> None:
    result = synthmix("card", "init", str(experiment_files / "train.csv"), "--task", "emo")
    assert result.returncode == 0, result.stderr
    card = yaml.safe_load(result.stdout)
    assert card["task"] == "emo"
    assert [c["name"] for c in card["classes"]] == [
        "anger",
        "fear",
        "joy",
        "no_emotion",
        "sadness",
        "surprise",
    ]
    out = tmp_path / "card.yaml"
    written = synthmix("card", "init", str(experiment_files / "train.csv"), "--out", str(out))
    assert written.returncode == 0 and written.stdout == ""
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["classes"] == card["classes"]


def test_augment_writes_a_source(experiment_files: Path, tmp_path: Path) -> None:
    out = tmp_path / "eda.jsonl"
    result = synthmix(
        "augment", str(experiment_files / "train.csv"), "--per-class", "20", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    source = load_labeled(out)
    assert set(source.class_counts().values()) == {20}
    assert set(source.frame["strategy"]) == {"eda"}


def test_experiment_then_report(experiment_files: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((experiment_files / "experiment.yaml").read_text(encoding="utf-8"))
    config["plans"] = {
        "learning_curve": [1.0],
        "synthetic_ratios": [1.0],
        "synthetic_only": False,
        "half_and_half": False,
    }
    config["seeds"] = 1
    config["data"] = {k: str(experiment_files / v) for k, v in config["data"].items()}
    config["sources"][0]["path"] = str(experiment_files / "synth.csv")
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = synthmix("experiment", str(path), "--out", "run", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # all real, 10% real, and the source's real+equal and 10% + 100% cells
    assert len(ResultsStore(tmp_path / "run").records()) == 4
    assert f"report: {Path('run') / 'report.html'}" in result.stdout
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "heldout" in html and "data:image/png;base64" in html
    again = synthmix("report", "run", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


@pytest.mark.slow
def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    # The LLM sources are covered by the generation tests; here they would take minutes.
    result = synthmix(
        "demo", "--out", str(tmp_path / "demo"), "--seeds", "2", "--llm-per-class", "0"
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "demo" / "run"
    records = ResultsStore(run).records()
    plans = {r["cell"]["plan"] for r in records}
    assert plans == {
        "real_only",
        "synthetic_only",
        "half_and_half",
        "real_plus_equal",
        "small_real_plus_synthetic",
    }
    assert len(records) == 12 * 2
    all_real = [r["metrics"]["f1_macro"] for r in records if r["cell_key"] == "real_only|-|1|0"]
    # The documented sanity figure for TF-IDF + balanced logistic regression on CEDR.
    assert all(0.66 < f1 < 0.72 for f1 in all_real)
    ten = [r["metrics"]["f1_macro"] for r in records if r["cell_key"] == "real_only|-|0.1|0"]
    assert all(0.45 < f1 < 0.60 for f1 in ten)
    markdown = (run / "report.md").read_text(encoding="utf-8")
    for figure in ("f1_vs_synthetic_ratio.png", "learning_curve.png", "per_class_f1.png"):
        assert (run / "figures" / figure).stat().st_size > 10_000
        assert figure in markdown
    frame = pd.read_json(run / "results.jsonl", lines=True)
    assert frame["key"].is_unique


def test_keywords_to_yaml_and_into_a_card(experiment_files: Path, tmp_path: Path) -> None:
    train = str(experiment_files / "train.csv")
    result = synthmix("keywords", train, "--top-k", "5", "--min-count", "2")
    assert result.returncode == 0, result.stderr
    words = yaml.safe_load(result.stdout)
    assert sorted(words) == ["anger", "fear", "joy", "no_emotion", "sadness", "surprise"]
    assert all(1 <= len(v) <= 5 for v in words.values())
    assert "бояться" in words["fear"] or "страх" in words["fear"]

    card = tmp_path / "card.yaml"
    assert synthmix("card", "init", train, "--out", str(card)).returncode == 0
    out = tmp_path / "card_kw.yaml"
    updated = synthmix(
        "keywords",
        train,
        "--top-k",
        "5",
        "--min-count",
        "2",
        "--card",
        str(card),
        "--out",
        str(out),
    )
    assert updated.returncode == 0, updated.stderr
    classes = {c["name"]: c for c in yaml.safe_load(out.read_text(encoding="utf-8"))["classes"]}
    assert classes["fear"]["keywords"] == words["fear"]
