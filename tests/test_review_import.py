"""The way back from human review: a Label Studio export made by the project's own exporter
and edited as reviewers would, and a filled review CSV, come back as labels with provenance
that an experiment source, `label --calibrate` and `--examples` all read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from synthmix.cards.card import load_card
from synthmix.core.errors import SynthmixError
from synthmix.data.labeled import LABEL, TEXT, LabeledData, load_labeled, sample_per_class
from synthmix.labeling.annotators import export_review_csv, label_studio_tasks
from synthmix.labeling.review_import import import_reviews

CARD = Path(__file__).resolve().parents[1] / "src/synthmix/demo_data/cedr_emotions/card.yaml"
CLASSES = ["anger", "fear", "joy", "no_emotion", "sadness", "surprise"]

TEXTS = [
    "Я так рад тебя видеть",  # 1: reviewer accepts the pre-annotation
    "Опять дождь и пусто на душе",  # 2: reviewer changes joy -> sadness
    "Ура, каникулы!",  # 3: reviewer skips (cancelled)
    "Кто-то стучит в окно ночью",  # 4: nobody annotated it
    "Он опять опоздал на встречу",  # 5: two reviewers disagree
    "Какая неожиданная новость",  # 6: two reviewers agree, one a bare user id
    "Просто иду домой",  # 7: the annotators disputed it; a reviewer labels it
]
FINAL = ["joy", "joy", "joy", "fear", "anger", "surprise", None]


def _user(uid: int, email: str) -> dict[str, Any]:
    return {"id": uid, "email": email, "first_name": "", "last_name": ""}


def _annotation(
    aid: int, task: int, user: Any, choice: str | None, cancelled: bool = False
) -> dict[str, Any]:
    """An annotation as Label Studio's JSON export writes it."""
    result = []
    if choice is not None:
        result = [
            {
                "id": f"r{aid}",
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "origin": "manual",
                "value": {"choices": [choice]},
            },
            # A comment box beside the choice: not a label.
            {
                "id": f"c{aid}",
                "from_name": "comment",
                "to_name": "text",
                "type": "textarea",
                "value": {"text": ["проверено"]},
            },
        ]
    return {
        "id": aid,
        "completed_by": user,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2026-12-01T10:00:00.000000Z",
        "updated_at": "2026-12-01T10:00:05.000000Z",
        "draft_created_at": None,
        "lead_time": 5.2,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"u{aid}",
        "import_id": None,
        "last_action": None,
        "task": task,
        "project": 3,
        "updated_by": user["id"] if isinstance(user, dict) else user,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
    }


def _exported(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The project's tasks after a round through Label Studio: ids, predictions as stored
    objects, no annotations yet (reviewers add them)."""
    out = []
    for number, task in enumerate(copy.deepcopy(tasks), start=1):
        predictions = [
            {**p, "id": 100 + i, "created_ago": "2 hours", "score": None, "task": number}
            for i, p in enumerate(task["predictions"])
        ]
        out.append(
            {
                "id": number,
                "annotations": [],
                "file_upload": "tasks.json",
                "drafts": [],
                "predictions": predictions,
                "data": task["data"],
                "meta": {},
                "created_at": "2026-12-01T09:00:00.000000Z",
                "updated_at": "2026-12-01T10:00:05.000000Z",
                "inner_id": number,
                "total_annotations": 0,
                "cancelled_annotations": 0,
                "total_predictions": len(predictions),
                "project": 3,
            }
        )
    return out


@pytest.fixture
def reviewed_export(tmp_path: Path) -> Path:
    """Tasks from the exporter (as `synthmix annotate --label-studio` writes them), reviewed."""
    predictions = {"a": ["joy", "joy", "joy", "fear", "anger", "surprise", "joy"]}
    predictions["b"] = ["joy", "sadness", "joy", "fear", "anger", "surprise", "sadness"]
    predictions["final"] = FINAL
    rows = {"row": list(range(1, len(TEXTS) + 1))}
    tasks = _exported(label_studio_tasks(TEXTS, predictions, data=rows))
    anna, boris = _user(1, "anna@example.org"), _user(2, "boris@example.org")
    tasks[0]["annotations"] = [_annotation(11, 1, anna, "joy")]
    tasks[1]["annotations"] = [_annotation(12, 2, anna, "sadness")]
    tasks[2]["annotations"] = [_annotation(13, 3, anna, None, cancelled=True)]
    tasks[4]["annotations"] = [
        _annotation(15, 5, anna, "anger"),
        _annotation(16, 5, boris, "sadness"),
    ]
    tasks[5]["annotations"] = [
        _annotation(17, 6, anna, "surprise"),
        _annotation(18, 6, 7, "surprise"),
    ]
    tasks[6]["annotations"] = [
        _annotation(19, 7, boris, None, cancelled=True),
        _annotation(20, 7, anna, "no_emotion"),
    ]
    path = tmp_path / "project-3-at-2026-12-01.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_a_reviewed_label_studio_export_comes_back_with_provenance(reviewed_export: Path) -> None:
    result = import_reviews([reviewed_export], load_card(CARD), str(CARD))
    by_text = {row[TEXT]: row for row in result.labels}
    assert list(by_text) == [TEXTS[0], TEXTS[1], TEXTS[5], TEXTS[6]]  # in the export's order
    accepted, changed, agreed, new = (by_text[TEXTS[i]] for i in (0, 1, 5, 6))
    assert accepted[LABEL] == "joy" and accepted["changed"] is False
    assert accepted["original_label"] == "joy" and accepted["reviewer"] == "anna@example.org"
    assert accepted["task_id"] == 1 and accepted["annotation_id"] == [11]
    assert accepted["review_file"] == str(reviewed_export) and accepted["review_row"] == 1
    assert accepted["source_row"] == 1  # the annotated input's row, carried in task data
    assert accepted["decided"] is True
    assert changed[LABEL] == "sadness" and changed["original_label"] == "joy"
    assert changed["changed"] is True and changed["annotation_id"] == [12]
    assert agreed["reviewer"] == "anna@example.org, user 7" and agreed["reviewers"] == 2
    assert agreed["resolved_by"] == "agreement" and agreed["annotation_id"] == [17, 18]
    assert new[LABEL] == "no_emotion" and new["original_label"] is None and new["changed"] is None
    assert new["annotation_id"] == [20]  # boris's cancelled annotation did not count

    [conflict] = result.conflicts
    assert conflict[TEXT] == TEXTS[4] and conflict["original_label"] == "anger"
    assert [(v[LABEL], v["reviewer"]) for v in conflict["votes"]] == [
        ("anger", "anna@example.org"),
        ("sadness", "boris@example.org"),
    ]
    counts = result.counts()
    assert {k: counts[k] for k in ("imported", "accepted", "changed", "new", "conflicts")} == {
        "imported": 4,
        "accepted": 2,
        "changed": 1,
        "new": 1,
        "conflicts": 1,
    }
    assert counts["skipped_by_reason"] == {"cancelled": 1, "unannotated": 1}
    assert counts["cancelled_annotations"] == 2


def test_ground_truth_settles_a_disagreement_only_when_it_names_one_label(
    reviewed_export: Path, tmp_path: Path
) -> None:
    tasks = json.loads(reviewed_export.read_text(encoding="utf-8"))
    tasks[4]["annotations"][1]["ground_truth"] = True
    settled = tmp_path / "settled.json"
    settled.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    result = import_reviews([settled], load_card(CARD), str(CARD))
    row = next(r for r in result.labels if r[TEXT] == TEXTS[4])
    assert row[LABEL] == "sadness" and row["resolved_by"] == "ground_truth"
    assert row["reviewer"] == "boris@example.org" and row["reviewers"] == 2
    assert result.conflicts == []


def _review_csv(path: Path, labels: list[str | None], human: list[str]) -> Path:
    frame = pd.DataFrame({TEXT: TEXTS[: len(labels)], LABEL: labels, "source": "agreement"})
    frame["human_label"] = human
    export_review_csv(frame, path)
    return path


def test_filled_review_csvs_come_back_and_two_reviewers_disagreeing_is_a_conflict(
    tmp_path: Path,
) -> None:
    card = load_card(CARD)
    # "без эмоций" is the card's display name of no_emotion: what a reviewer may type.
    first = _review_csv(tmp_path / "r1.csv", FINAL[:4], ["joy", "sadness", "", " без эмоций "])
    result = import_reviews([first], card, str(CARD), reviewer="vera")
    assert [(r[TEXT], r[LABEL], r["changed"]) for r in result.labels] == [
        (TEXTS[0], "joy", False),
        (TEXTS[1], "sadness", True),
        (TEXTS[3], "no_emotion", True),
    ]
    assert {r["reviewer"] for r in result.labels} == {"vera"}
    assert [r["review_row"] for r in result.labels] == [1, 2, 4]
    assert result.counts()["skipped_by_reason"] == {"blank": 1}

    kept = import_reviews([first], card, str(CARD), blank="keep")
    assert [r[LABEL] for r in kept.labels][2] == "joy"  # the blank row's label stands

    # A second reviewer's copy of the same file: agreement where they agree, else conflict.
    second = _review_csv(tmp_path / "r2.csv", FINAL[:4], ["joy", "anger", "", "no_emotion"])
    frame = pd.read_csv(second, encoding="utf-8-sig", keep_default_na=False)
    frame.assign(reviewer="gleb").to_csv(second, index=False)
    both = import_reviews([first, second], card, str(CARD), reviewer="vera")
    assert [r[TEXT] for r in both.conflicts] == [TEXTS[1]]
    assert [v["reviewer"] for v in both.conflicts[0]["votes"]] == ["vera", "gleb"]
    joy = both.labels[0]
    assert joy["reviewer"] == "vera, gleb" and joy["review_file"] == f"{first}, {second}"


@pytest.fixture(scope="module")
def gold_review(cedr_test: LabeledData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 CEDR test sentences in a review CSV: a reviewer confirmed 50 labels and corrected
    10 that had been set wrong before review."""
    folder = tmp_path_factory.mktemp("gold_review")
    short = cedr_test.frame[cedr_test.frame[TEXT].str.len() < 120].reset_index(drop=True)
    picked = sample_per_class(LabeledData(short, cedr_test.source), dict.fromkeys(CLASSES, 10), 0)
    frame = picked.frame[[TEXT, LABEL]].reset_index(drop=True)
    before = frame[LABEL].copy()
    wrong = frame.index[::6]
    before[wrong] = [CLASSES[(CLASSES.index(v) + 1) % 6] for v in frame.loc[wrong, LABEL]]
    review = pd.DataFrame({TEXT: frame[TEXT], LABEL: before, "human_label": frame[LABEL]})
    export_review_csv(review, folder / "review.csv")
    unlabeled = short[~short[TEXT].isin(set(frame[TEXT]))].head(12)
    unlabeled[[TEXT]].to_csv(folder / "unlabeled.csv", index=False)
    cascade = {"stages": [{"type": "keywords"}]}
    (folder / "cascade.yaml").write_text(yaml.safe_dump(cascade), encoding="utf-8")
    return folder


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_imported_review_is_gold_for_label_and_a_source_for_experiments(
    gold_review: Path, cedr_test: LabeledData, tmp_path: Path
) -> None:
    from synthmix.experiment.sources import SourceConfig, load_sources

    gold = tmp_path / "gold.jsonl"
    done = _cli("review-import", str(gold_review / "review.csv"), "--card", str(CARD),
                "--out", str(gold), "--reviewer", "vera")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "60 reviewed labels: 50 accepted, 10 changed, 0 new" in done.output
    report = json.loads((tmp_path / "gold.report.json").read_text(encoding="utf-8"))
    assert report["counts"]["changed"] == 10 and report["counts"]["conflicts"] == 0
    assert (tmp_path / "gold.conflicts.jsonl").read_text(encoding="utf-8") == ""
    loaded = load_labeled(gold)
    assert len(loaded) == 60 and loaded.class_counts() == dict.fromkeys(CLASSES, 10)

    # As a source: every row is kept (decided) and its provenance travels along.
    train = LabeledData(cedr_test.frame.head(200), "train")
    [source] = load_sources(
        [SourceConfig(path=str(gold), name="reviewed")], tmp_path, train
    ).values()
    assert len(source) == 60 and set(source.frame["reviewer"]) == {"vera"}

    # As the gold set of `synthmix label`: calibrated on it, 30% held out.
    out = tmp_path / "labeled.jsonl"
    labeled = _cli("label", str(gold_review / "unlabeled.csv"), "--card", str(CARD),
                   "--cascade", str(gold_review / "cascade.yaml"), "--calibrate", str(gold),
                   "--out", str(out))  # fmt: skip
    assert labeled.exit_code == 0, labeled.output
    calibration = json.loads((tmp_path / "labeled.report.json").read_text(encoding="utf-8"))
    assert calibration["calibration"]["calibration"][0]["reached"] == 42  # 70% of 60
    assert calibration["calibration"]["holdout"]["texts"] == 18


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t[1]["annotations"][0]["result"][0]["value"].update(choices=["happiness"]),
            "task 2 (annotation 12, anna@example.org): label 'happiness' is not a class of "
            "the card",
        ),
        (
            lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=["joy", "fear"]),
            "task 1 (annotation 11, anna@example.org): 2 choices",
        ),
        (lambda t: t[3]["data"].pop("text"), "task 4: no text under data.text"),
        (
            lambda t: [
                r.update(from_name="emotion")
                for x in t
                for a in x["annotations"]
                for r in a["result"]
            ],
            "no choices named 'label' (found emotion); pass the labeling config's Choices name",
        ),
    ],
)
def test_bad_label_studio_exports_are_one_line(
    reviewed_export: Path, tmp_path: Path, edit: Any, expected: str
) -> None:
    tasks = json.loads(reviewed_export.read_text(encoding="utf-8"))
    edit(tasks)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    result = _cli(
        "review-import", str(path), "--card", str(CARD), "--out", str(tmp_path / "g.jsonl")
    )
    assert isinstance(result.exception, SynthmixError), result.output
    message = str(result.exception)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message
    assert not (tmp_path / "g.jsonl").exists()


def test_bad_review_files_are_one_line(tmp_path: Path) -> None:
    csv = _review_csv(tmp_path / "review.csv", FINAL[:3], ["joy", "радость!", ""])
    unknown = _cli(
        "review-import", str(csv), "--card", str(CARD), "--out", str(tmp_path / "g.jsonl")
    )
    assert str(unknown.exception) == (
        f"{csv}: row 2: label 'радость!' is not a class of the card ({CARD})"
    )
    blank = _review_csv(tmp_path / "blank.csv", FINAL[:2], ["", ""])
    nothing = _cli(
        "review-import", str(blank), "--card", str(CARD), "--out", str(tmp_path / "g.jsonl")
    )
    assert "no reviewed label to import" in str(nothing.exception)
    assert "skipped 2 (blank 2)" in str(nothing.exception)
    minimal = tmp_path / "min.json"  # Label Studio's JSON-MIN export: flat rows, no 'data'
    minimal.write_text(json.dumps([{"id": 1, "text": "Ура", "label": "joy"}]), encoding="utf-8")
    flat = _cli(
        "review-import", str(minimal), "--card", str(CARD), "--out", str(tmp_path / "g.jsonl")
    )
    assert "no column 'human_label'; nor Label Studio tasks with 'data'" in str(flat.exception)
    for result in (unknown, nothing, flat):
        assert isinstance(result.exception, SynthmixError) and "\n" not in str(result.exception)


def test_label_issues_go_to_label_studio_and_come_back_corrected(
    cedr_train: LabeledData, tmp_path: Path
) -> None:
    """label-issues -> Label Studio -> review-import: a reviewer who knows the true labels
    fixes the planted flips, and each row traces back to the data file and row."""
    import numpy as np

    from synthmix.data.labeled import stratified_fraction

    truth = stratified_fraction(cedr_train, 0.1, seed=0).frame
    noisy = truth.copy()
    rng = np.random.default_rng(0)
    flips = rng.choice(len(noisy), 8, replace=False)
    for i in flips:
        noisy.loc[i, LABEL] = CLASSES[(CLASSES.index(noisy.loc[i, LABEL]) + 1) % 6]
    data = tmp_path / "data.csv"
    noisy.to_csv(data, index=False)
    tasks_path = tmp_path / "issues-tasks.json"
    done = _cli("label-issues", str(data), "--out", str(tmp_path / "issues.csv"),
                "--label-studio", str(tasks_path))  # fmt: skip
    assert done.exit_code == 0, done.output
    tasks = _exported(json.loads(tasks_path.read_text(encoding="utf-8")))
    assert tasks[0]["data"]["origin"] == "real" and tasks[0]["data"]["file"] == str(data)
    reviewed = tasks[:-3]  # the reviewer stopped three short of the end
    for number, task in enumerate(reviewed, start=1):
        correct = truth.loc[task["data"]["row"] - 1, LABEL]
        task["annotations"] = [_annotation(number, number, _user(1, "anna@example.org"), correct)]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")

    result = import_reviews([export], load_card(CARD), str(CARD))
    assert len(result.labels) == len(tasks) - 3
    assert result.counts()["skipped_by_reason"] == {"unannotated": 3}
    flipped_rows = {int(i) + 1 for i in flips}
    for row in result.labels:
        assert row["source_file"] == str(data) and row["origin"] == "real"
        assert row[LABEL] == truth.loc[row["source_row"] - 1, LABEL]
        assert row["original_label"] == noisy.loc[row["source_row"] - 1, LABEL]
        assert row["changed"] is (row["source_row"] in flipped_rows)
    assert sum(r["changed"] for r in result.labels) >= 4  # most flips were flagged


def test_the_command_prints_one_error_line(reviewed_export: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    tasks = json.loads(reviewed_export.read_text(encoding="utf-8"))
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["тоска"]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    args = [str(path), "--card", str(CARD), "--out", str(tmp_path / "gold.jsonl")]
    done = subprocess.run(
        [sys.executable, "-m", "synthmix", "review-import", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {path}: task 2 (annotation 12, anna@example.org): label 'тоска' is not a "
        f"class of the card ({CARD})\n"
    )
