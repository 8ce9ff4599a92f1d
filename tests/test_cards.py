from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synthmix.cards.card import DESCRIPTION_TODO, draft_card_yaml, load_card, parse_card
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData


def test_draft_card_lists_classes_counts_and_real_examples(cedr_train: LabeledData) -> None:
    text = draft_card_yaml(cedr_train, task="cedr")
    assert "#   anger: 384" in text
    raw = yaml.safe_load(text)
    assert [c["name"] for c in raw["classes"]] == cedr_train.classes
    anger = raw["classes"][0]
    assert anger["description"].startswith(DESCRIPTION_TODO)
    assert "(384 examples in the data)" in anger["description"]
    real_anger = set(cedr_train.frame.loc[cedr_train.frame["label"] == "anger", "text"])
    assert len(anger["examples"]) == 3
    assert set(anger["examples"]) <= real_anger


def test_drafted_card_loads_back(cedr_train: LabeledData, tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(draft_card_yaml(cedr_train, task="cedr"), encoding="utf-8")
    card = load_card(path)
    assert card.task == "cedr" and card.language == "ru"
    assert card.class_names == cedr_train.classes
    card.check_covers(cedr_train, str(path))


def test_shipped_demo_card_covers_the_demo_data(cedr_train: LabeledData) -> None:
    card_path = Path(__file__).parents[1] / "src/synthmix/demo_data/cedr_emotions/card.yaml"
    card = load_card(card_path)
    card.check_covers(cedr_train, str(card_path))
    assert all(c.keywords and not c.description.startswith("TODO") for c in card.classes)
    assert card.get("no_emotion").shown_name == "без эмоций"


def test_display_name_is_optional_and_falls_back_to_the_label(tmp_path: Path) -> None:
    raw = {
        "task": "t",
        "language": "ru",
        "classes": [
            {"name": "pos", "description": "хорошо", "display_name": " позитив "},
            {"name": "neg", "description": "плохо"},
        ],
    }
    card = parse_card(raw, "card.yaml")
    assert [c.shown_name for c in card.classes] == ["позитив", "neg"]
    assert "display_name" not in card.to_yaml().split("neg", 1)[1]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"task": "t", "language": "ru"}, "card.yaml: missing 'classes'"),
        (
            {"task": "t", "language": "ru", "classes": []},
            "card.yaml: 'classes' must be a non-empty list",
        ),
        (
            {"task": "t", "language": "ru", "classes": [{"name": "joy"}]},
            "card.yaml: class 1 ('joy'): missing 'description'",
        ),
        (
            {
                "task": "t",
                "language": "ru",
                "classes": [{"name": "joy", "description": "радость", "keywords": "рад"}],
            },
            "card.yaml: class 1 ('joy'): 'keywords' must be a list",
        ),
        (
            {
                "task": "t",
                "language": "ru",
                "classes": [
                    {"name": "joy", "description": "a"},
                    {"name": "joy", "description": "b"},
                ],
            },
            "card.yaml: class 'joy' is listed twice",
        ),
        (
            {
                "task": "t",
                "language": "ru",
                "classes": [{"name": "joy", "description": "a"}],
                "lang": "en",
            },
            "card.yaml: unknown key 'lang' (allowed: task, language, classes, description)",
        ),
        (
            {
                "task": "t",
                "language": "ru",
                "classes": [{"name": "joy", "description": "a", "exmples": ["x"]}],
            },
            "card.yaml: class 1 ('joy'): unknown key 'exmples' (allowed: name, description, "
            "keywords, examples, display_name)",
        ),
    ],
)
def test_card_errors(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_card(raw, "card.yaml")
    assert str(caught.value) == expected


def test_card_must_cover_every_label(cedr_train: LabeledData) -> None:
    card = parse_card(
        {"task": "t", "language": "ru", "classes": [{"name": "joy", "description": "радость"}]},
        "card.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        card.check_covers(cedr_train, "card.yaml")
    assert str(caught.value) == (
        "card.yaml: no class for label(s) 'anger', 'fear', 'no_emotion', 'sadness', 'surprise' "
        f"found in {cedr_train.source}"
    )
