"""Label issues by confident learning (cleanlab) on real CEDR samples with planted flips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthmix.core.errors import ConfigError, DataError
from synthmix.data.labeled import LabeledData, sample_per_class, stratified_fraction
from synthmix.labeling.issues import IssueConfig, find_label_issues


def _flip(data: LabeledData, share: float, seed: int) -> tuple[LabeledData, np.ndarray]:
    """`data` with `share` of its rows relabeled to another class, and those rows."""
    rng = np.random.default_rng(seed)
    frame = data.frame.copy()
    flips = np.sort(rng.choice(len(frame), round(share * len(frame)), replace=False))
    classes = data.classes
    for i in flips:
        frame.loc[i, "label"] = rng.choice([c for c in classes if c != frame.loc[i, "label"]])
    return LabeledData(frame, data.source), flips


@pytest.fixture(scope="module")
def real_sample(cedr_train: LabeledData) -> LabeledData:
    return stratified_fraction(cedr_train, 0.1, seed=0)


def test_planted_label_flips_in_a_real_sample_are_found(real_sample: LabeledData) -> None:
    noisy, flips = _flip(real_sample, 0.05, seed=0)
    issues = find_label_issues(noisy)
    flagged = set(np.flatnonzero(issues.flagged))
    recall = len(flagged & set(flips)) / len(flips)
    precision = len(flagged & set(flips)) / len(flagged)
    # Measured: recall 0.76, precision 0.17 (5% of the texts are flipped; CEDR's own labels
    # are noisy and its classes overlap, so many flags are real ambiguities).
    assert recall >= 0.6
    assert precision >= 2.5 * len(flips) / len(noisy)
    # The flipped texts' given labels score lower than the rest.
    assert issues.quality[flips].mean() < 0.5 * np.delete(issues.quality, flips).mean()
    review = issues.review_frame()
    assert len(review) == len(flagged)
    assert review["label_quality"].is_monotonic_increasing
    assert (review["label"] != review["suggested_label"]).mean() > 0.8
    assert set(review["row"]) == {i + 1 for i in flagged}


def test_synthetic_texts_with_wrong_labels_stand_out_against_real_ones(
    cedr_train: LabeledData, real_sample: LabeledData
) -> None:
    rest = cedr_train.frame[~cedr_train.frame["text"].isin(set(real_sample.texts))]
    pool = LabeledData(rest.reset_index(drop=True), "synthetic")
    held_out = sample_per_class(pool, dict.fromkeys(real_sample.classes, 40), 1)
    synthetic, flips = _flip(held_out, 0.25, seed=2)
    issues = find_label_issues(real_sample, synthetic, IssueConfig(folds=4))
    dropped = issues.flagged_rows("synthetic")
    recall = len(set(dropped) & set(flips)) / len(flips)
    clean = len(synthetic) - len(flips)
    false_drops = len(set(dropped) - set(flips)) / clean
    assert recall >= 0.6 and false_drops < 0.35
    counts = issues.counts()
    assert counts["synthetic"]["texts"] == len(synthetic)
    assert counts["synthetic"]["flagged"] == len(dropped)
    assert counts["real"]["texts"] == len(real_sample)
    assert issues.folds == 4


def test_bad_inputs_are_one_line_errors(real_sample: LabeledData) -> None:
    odd = LabeledData(pd.DataFrame({"text": ["a", "b", "c"], "label": ["joy", "xx", "joy"]}), "s")
    with pytest.raises(DataError) as error:
        find_label_issues(real_sample, odd)
    assert str(error.value).startswith("s: row 2: label 'xx' does not occur in the real data")
    lonely = LabeledData(
        pd.DataFrame({"text": ["раз", "два", "три"], "label": ["joy", "joy", "fear"]}), "tiny.csv"
    )
    with pytest.raises(DataError, match="class 'fear' has one text"):
        find_label_issues(lonely)
    with pytest.raises(ConfigError, match="filter_by must be one of"):
        find_label_issues(real_sample, config=IssueConfig(filter_by="all"))


def _synthmix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthmix", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_writes_a_review_file_and_errors_in_one_line(
    real_sample: LabeledData, tmp_path: Path
) -> None:
    small = stratified_fraction(real_sample, 0.5, seed=0)
    noisy, flips = _flip(small, 0.05, seed=3)
    data = tmp_path / "data.csv"
    noisy.frame.to_csv(data, index=False)
    synth = tmp_path / "synth.jsonl"
    texts = ["Я так счастлив сегодня, ура!", "Мне очень страшно одному"]
    synth_frame = pd.DataFrame({"text": texts, "label": ["fear", "fear"]})
    synth_frame.to_json(synth, orient="records", lines=True, force_ascii=False)
    out = tmp_path / "review.csv"
    done = _synthmix("label-issues", str(data), "--synthetic", str(synth), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote ") and f"to {out}" in done.stdout
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the Cyrillic
    review = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert list(review.columns) == [
        "text", "label", "suggested_label", "label_quality", "p_given", "p_suggested",
        "origin", "file", "row", "human_label",
    ]  # fmt: skip
    assert set(review["human_label"]) == {""}
    real_rows = set(review.loc[review["origin"] == "real", "row"])
    assert len(real_rows & {i + 1 for i in flips}) >= len(flips) // 2
    assert set(review.loc[review["origin"] == "synthetic", "file"]) <= {str(synth)}
    report = json.loads((tmp_path / "review.report.json").read_text(encoding="utf-8"))
    assert report["counts"]["real"]["texts"] == len(noisy)
    assert report["counts"]["synthetic"]["texts"] == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nРаз,joy\nДва,joy\nТри,anger\nЧетыре,anger\n", encoding="utf-8")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("text,label\nПять,joy\nШесть,love\n", encoding="utf-8")
    failed = _synthmix("label-issues", str(bad), "--synthetic", str(wrong), "--out", str(out))
    assert failed.returncode == 2
    assert failed.stderr == (
        f"error: {wrong}: row 2: label 'love' does not occur in the real data ({bad})\n"
    )
