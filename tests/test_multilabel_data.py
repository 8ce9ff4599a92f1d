"""Multi-label data, text pairs and their task cards, on the real shared datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import dataset_dir
from synthmix.cards.card import load_card
from synthmix.cards.multilabel import draft_multilabel_card_yaml
from synthmix.core.errors import DataError
from synthmix.data.labeled import load_labeled
from synthmix.data.multilabel import (
    MultiLabelData,
    load_multilabel,
    multilabel_from_frame,
    parse_label_list,
)


@pytest.fixture(scope="module")
def goemotions() -> MultiLabelData:
    return load_multilabel(dataset_dir("ru_goemotions") / "train.csv")


def test_goemotions_label_counts_match_its_readme(goemotions: MultiLabelData) -> None:
    summary = goemotions.summary()
    assert summary["rows"] == 5426 and summary["labels"] == 28
    assert summary["rows_with_several_labels"] == 878
    assert summary["rows_without_label"] == 0
    counts = summary["label_counts"]
    assert max(counts, key=counts.__getitem__) == "neutral"
    # A text counts for every label it carries.
    assert sum(counts.values()) == sum(len(s) for s in goemotions.label_sets)
    top = summary["cooccurrence"][0]
    frame = goemotions.frame
    together = frame["labels"].map(lambda s: set(top["labels"]) <= set(s)).sum()
    assert top["texts"] == together


def test_indicator_rows_follow_label_sets(goemotions: MultiLabelData) -> None:
    small = goemotions.subset(list(range(50)))
    matrix = small.indicator(goemotions.classes)
    assert matrix.shape == (50, 28)
    for row, labels in zip(matrix, small.label_sets, strict=True):
        assert {goemotions.classes[j] for j in row.nonzero()[0]} == set(labels)


def test_delimited_labels_and_empty_label_lists_are_read() -> None:
    frame = pd.DataFrame({"text": ["а", "б", "в"], "tags": ["joy|fear", "", " joy "]})
    data = multilabel_from_frame(frame, labels_column="tags", delimiter="|", source="d.csv")
    assert data.label_sets == [("fear", "joy"), (), ("joy",)]
    assert data.no_label_rows() == [2]
    assert data.summary()["rows_without_label"] == 1
    assert data.cooccurrence() == {("fear", "joy"): 1}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("joy", "row 2: column 'labels': not a JSON list of labels: 'joy'"),
        ('{"a": 1}', "not a JSON list of labels"),
        ('["joy", ["fear"]]', 'a label must be a string, got ["fear"]'),
        ('["joy", null]', "a label must be a string, got null"),
        ('["joy", " "]', "an empty label in the list"),
        ("", "missing label list (write [] for a text with no label)"),
    ],
)
def test_malformed_label_lists_name_file_and_row(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["раз", "два"], "labels": ['["joy"]', value]}).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_multilabel(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: row 2: ")
    assert problem in message
    assert "\n" not in message


def test_jsonl_lists_are_read_as_lists(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    pd.DataFrame({"text": ["раз", "два"], "labels": [["b", "a", "a"], []]}).to_json(
        path, orient="records", lines=True, force_ascii=False
    )
    assert load_multilabel(path).label_sets == [("a", "b"), ()]
    assert parse_label_list([1, 2.0]) == ("1", "2")


def test_text_pairs_keep_the_second_text_and_reject_empty_ones(tmp_path: Path) -> None:
    aspects = dataset_dir("sentirueval2015_restaurant_aspects") / "train.csv"
    data = load_labeled(aspects, text_pair_column="aspect")
    assert data.pairs is not None and len(data.pairs) == len(data) == 2822
    assert data.pairs[0] == "ресторане"
    assert data.class_counts() == {"both": 49, "negative": 380, "neutral": 714, "positive": 1679}
    # The single-label path is unchanged without a pair column.
    assert load_labeled(aspects).pairs is None
    bad = tmp_path / "pairs.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"], "aspect": ["c", " "]}).to_csv(
        bad, index=False
    )
    with pytest.raises(DataError, match=r"pairs.csv: row 2: empty pair text \(column 'aspect'\)"):
        load_labeled(bad, text_pair_column="aspect")
    with pytest.raises(DataError, match=r"no column 'passage'.*set the text pair column name"):
        load_labeled(bad, text_pair_column="passage")


def test_multilabel_card_reports_counts_cooccurrence_and_loads_back(
    goemotions: MultiLabelData, tmp_path: Path
) -> None:
    text = draft_multilabel_card_yaml(goemotions.subset(list(range(400))), task="goemotions")
    assert "rows with no label" in text and "most frequent label pairs:" in text
    assert "#   neutral: " in text
    path = tmp_path / "card.yaml"
    path.write_text(text, encoding="utf-8")
    card = load_card(path)
    assert card.description.startswith("A multi-label task")
    assert len(card.classes) == len(goemotions.subset(list(range(400))).classes)
    raw = yaml.safe_load(text)
    neutral = next(c for c in raw["classes"] if c["name"] == "neutral")
    sets = dict(zip(goemotions.texts, goemotions.label_sets, strict=True))
    assert neutral["examples"] and all("neutral" in sets[t] for t in neutral["examples"])


def test_card_init_cli_multi_label_and_pairs(tmp_path: Path) -> None:
    from synthmix.cli.app import app

    source = dataset_dir("ru_goemotions") / "train.csv"
    small = tmp_path / "small.csv"
    pd.read_csv(source).head(300).to_csv(small, index=False)
    result = CliRunner().invoke(app, ["card", "init", str(small), "--multi-label"])
    assert result.exit_code == 0, result.output
    assert "A multi-label task" in result.output
    broken = tmp_path / "broken.csv"
    pd.DataFrame({"text": ["a"], "labels": ["joy, fear"]}).to_csv(broken, index=False)
    result = CliRunner().invoke(app, ["card", "init", str(broken), "--multi-label"])
    # main() prints a DataError as one "error: ..." line; the runner hands it back raw.
    assert isinstance(result.exception, DataError)
    assert str(result.exception).startswith(f"{broken}: row 1: column 'labels': not a JSON list")
    aspects = dataset_dir("sentirueval2015_restaurant_aspects") / "train.csv"
    args = ["card", "init", str(aspects), "--text-pair-column", "aspect"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "description: 'TODO: say what the second text" in result.output
    assert "#   both: 49" in result.output
