"""The command line as a user runs it: a real subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthmix.data.labeled import LABEL, TEXT, LabeledData, load_labeled, sample_per_class
from synthmix.experiment.results import ResultsStore

CLASSES = ["anger", "fear", "joy", "no_emotion", "sadness", "surprise"]


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


LABEL_CARD = Path(__file__).resolve().parents[1] / "src/synthmix/demo_data/cedr_emotions/card.yaml"


@pytest.fixture(scope="module")
def label_files(cedr_test: LabeledData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small slice of CEDR test: 36 sentences with their labels hidden, and a disjoint
    gold set of 60 hand-labeled ones; a fast offline cascade (keywords -> embeddings)."""
    folder = tmp_path_factory.mktemp("label")
    short = cedr_test.frame[cedr_test.frame[TEXT].str.len() < 120].reset_index(drop=True)
    picked = sample_per_class(LabeledData(short, cedr_test.source), dict.fromkeys(CLASSES, 16), 0)
    by_class = picked.frame.groupby(LABEL, sort=False).cumcount()
    picked.frame[by_class < 6][[TEXT]].to_csv(folder / "unlabeled.csv", index=False)
    picked.frame[by_class >= 6][[TEXT, LABEL]].to_csv(folder / "gold.csv", index=False)
    cascade = {"stages": [{"type": "keywords"}, {"type": "embedding"}]}  # calibrated
    (folder / "cascade.yaml").write_text(yaml.safe_dump(cascade), encoding="utf-8")
    return folder


def test_label_calibrates_and_writes_labels_and_report(label_files: Path) -> None:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    out = label_files / "out" / "labeled.jsonl"
    args = ["label", str(label_files / "unlabeled.csv"), "--card", str(LABEL_CARD)]
    args += ["--cascade", str(label_files / "cascade.yaml"), "--out", str(out)]
    args += ["--calibrate", str(label_files / "gold.csv"), "--target-precision", "0.6"]
    args += ["--criterion", "point", "--holdout", "0.3", "--fallback"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_json(out, lines=True)
    assert len(rows) == 36  # with --fallback every text gets a label, guesses undecided
    columns = ["row", "text", "label", "confidence", "stage", "decided", "scores"]
    assert list(rows.columns) == columns
    hidden = pd.read_csv(label_files / "unlabeled.csv")[TEXT].tolist()
    assert rows["text"].tolist() == hidden  # one row per input text, in order
    assert set(rows["label"].dropna()) <= set(CLASSES)
    assert set(rows.loc[rows["decided"], "stage"]) <= {"keywords", "embedding"}
    assert (rows.loc[rows["decided"], "confidence"] > 0).all()
    assert all(set(scores) <= {"keywords", "embedding"} for scores in rows["scores"])

    report = json.loads(out.with_name("labeled.report.json").read_text(encoding="utf-8"))
    calibration = report["calibration"]
    assert calibration["target_precision"] == 0.6 and calibration["criterion"] == "point"
    assert [s["name"] for s in calibration["calibration"]] == ["keywords", "embedding"]
    assert calibration["calibration"][0]["reached"] == 42  # 70% of the 60 gold texts
    assert calibration["holdout"]["texts"] == 18
    labeling = report["labeling"]
    keywords, embedding = labeling["stages"]
    assert labeling["texts"] == 36 and keywords["reached"] == 36
    assert embedding["reached"] == 36 - keywords["decided"]
    assert labeling["fallback"]["reached"] == embedding["reached"] - embedding["decided"]
    assert labeling["accuracy_decided"] is None  # the labels stayed hidden
    # The per-stage report, as the user sees it.
    assert "target precision 0.6 (point)" in result.output
    assert "held-out check:" in result.output
    assert f"wrote 36 labels to {out}" in result.output
    for name in ("keywords", "embedding"):
        assert re.search(rf"^  {name} +threshold .*: reached \d+, decided \d+", result.output, re.M)


def test_label_input_mistakes_are_one_line(label_files: Path, tmp_path: Path) -> None:
    options = ["--card", str(LABEL_CARD), "--out", str(tmp_path / "labeled.jsonl")]
    options += ["--cascade", str(label_files / "cascade.yaml")]
    renamed = tmp_path / "sentences.csv"
    pd.read_csv(label_files / "unlabeled.csv").rename(columns={TEXT: "sentence"}).to_csv(
        renamed, index=False
    )
    no_column = synthmix("label", str(renamed), *options)
    assert no_column.returncode == 2
    assert no_column.stderr == (f"error: {renamed}: no column 'text'; set the text column name\n")

    gold = pd.read_csv(label_files / "gold.csv")
    gold.loc[3, LABEL] = "happiness"
    bad_gold = tmp_path / "gold.csv"
    gold.to_csv(bad_gold, index=False)
    unlabeled = str(label_files / "unlabeled.csv")
    unknown = synthmix("label", unlabeled, *options, "--calibrate", str(bad_gold))
    assert unknown.returncode == 2
    assert unknown.stderr == (
        f"error: {LABEL_CARD}: no class for label(s) 'happiness' found in {bad_gold}\n"
    )
    unlabeled_gold = tmp_path / "unlabeled_gold.csv"
    gold[[TEXT]].to_csv(unlabeled_gold, index=False)
    no_labels = synthmix("label", unlabeled, *options, "--calibrate", str(unlabeled_gold))
    assert no_labels.returncode == 2
    assert no_labels.stderr == (
        f"error: {unlabeled_gold}: no column 'label' (columns: text); set the label column name\n"
    )
    for result in (no_column, unknown, no_labels):
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "labeled.jsonl").exists()


def test_cli_starts_without_loading_the_heavy_libraries() -> None:
    """`synthmix --help` and argument errors must not wait for scikit-learn, pandas or
    torch; the package's re-exports load on first use."""
    probe = (
        "import sys, synthmix.cli.app, synthmix; "
        "heavy = sorted(m for m in ('sklearn', 'pandas', 'scipy', 'torch') if m in sys.modules); "
        "print(heavy, synthmix.TfidfLogReg.__name__, 'load_card' in dir(synthmix))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["[]", "TfidfLogReg", "True"], done.stderr
