from __future__ import annotations

import random

import pytest

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError
from synthmix.generation.strategies import (
    CompletionFewShotStrategy,
    KeyPointsStrategy,
    clean_item,
    make_strategy,
    parse_completion,
    parse_list,
    strategy_names,
)

JOY = ClassCard(
    name="joy",
    description="Радость: удовольствие, веселье, восторг.",
    keywords=["рад", "ура", "счастье", "смешно", "люблю", "весело"],
)
CARD = TaskCard(task="cedr-emotions", language="ru", classes=[JOY], description="Эмоции.")
REAL = [f"Настоящий текст номер {i}, очень радостный!" for i in range(20)]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # preamble + "1." list
        (
            "Вот 3 примера:\n\n1. Ура, лето!\n2. Я так рад.\n3. Смешно же)",
            ["Ура, лето!", "Я так рад.", "Смешно же)"],
        ),
        # "1)" markers, quotes of several kinds, trailing numbering
        (
            '1) «Ура, лето!»\n2) "Я так рад." (2)\n3) “Смешно же”',
            ["Ура, лето!", "Я так рад.", "Смешно же"],
        ),
        # bullets and a closing remark after a blank line
        ("- Ура, лето!\n• Я так рад.\n\nНадеюсь, это поможет!", ["Ура, лето!", "Я так рад."]),
        # JSON array inside a code fence
        ('```json\n["Ура, лето!", "Я так рад."]\n```', ["Ура, лето!", "Я так рад."]),
        # JSON object with a list field of objects
        (
            '{"texts": [{"text": "Ура, лето!"}, {"text": "Я так рад."}]}',
            ["Ура, лето!", "Я так рад."],
        ),
        # markdown bold numbers and "Текст 1:" labels
        ("**1.** Текст 1: Ура, лето!\n**2.** Текст 2: Я так рад.", ["Ура, лето!", "Я так рад."]),
        # an item continued on the next line
        ("1. Ура,\nлето пришло!\n2. Я так рад.", ["Ура, лето пришло!", "Я так рад."]),
        # plain lines with a preamble, no markers
        ("Конечно! Вот тексты:\nУра, лето!\nЯ так рад.", ["Ура, лето!", "Я так рад."]),
        # a dash inside an item (dialogue) is kept; numbers like 3.14 are not markers
        (
            "1. - Ура, лето!\n2. 3.14 — моё любимое число",
            ["- Ура, лето!", "3.14 — моё любимое число"],
        ),
        # "1:" markers and no space after "1."
        ("1:Ура, лето!\n2.Я так рад.", ["Ура, лето!", "Я так рад."]),
    ],
)
def test_parse_messy_lists(answer: str, expected: list[str]) -> None:
    assert parse_list(answer).texts == expected


def test_parse_failure_is_reported() -> None:
    for answer in ("", "   ", "Примеры:", "```\n```"):
        result = parse_list(answer)
        assert result.failed and result.problem
    short = parse_list("1. Ура!\n2. Рад.", expected=5)
    assert short.note == "expected 5 texts, got 2"


def test_clean_item() -> None:
    assert clean_item("  «„Ура“»  ") == "Ура"
    assert clean_item("Пример №3: текст [4]") == "текст"


def test_parse_completion_stops_at_blank_line_or_class() -> None:
    assert parse_completion(" Ура, лето!\n\nКласс: joy\nТекст: ещё").texts == ["Ура, лето!"]
    assert parse_completion(" Ура, лето!\nКласс: joy").texts == ["Ура, лето!"]
    assert parse_completion("\n\n").failed


@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_builds_both_prompt_forms(name: str) -> None:
    strategy = make_strategy(name, language="ru", texts_per_call=4, k=3, personas=["учитель"])
    if strategy.preparation_prompt(JOY, CARD, REAL) is not None:
        strategy.accept_preparation("joy", "1. отпуск\n2. подарки\n3. встреча с друзьями")
    prompt = strategy.build(JOY, CARD, random.Random(1), REAL, JOY.keywords)
    assert prompt.messages[-1]["role"] == "user"
    assert "joy" in prompt.messages[-1]["content"] and "joy" in prompt.text
    chat = prompt.request(chat=True, temperature=0.9, sample_index=2)
    plain = prompt.request(chat=False, temperature=0.9)
    assert chat.messages is not None and chat.sample_index == 2
    assert plain.prompt == prompt.text
    assert len(strategy.recipe_hash()) == 12


def test_few_shot_resamples_examples_per_call_and_is_seeded() -> None:
    strategy = make_strategy("few-shot", k=3)
    one = strategy.build(JOY, CARD, random.Random("0:joy:1"), REAL, []).text
    again = strategy.build(JOY, CARD, random.Random("0:joy:1"), REAL, []).text
    other = strategy.build(JOY, CARD, random.Random("0:joy:2"), REAL, []).text
    assert one == again and one != other
    assert sum(text in one for text in REAL) == 3
    assert "Напиши 5 новых текстов класса «joy»" in one


def test_fskw_adds_a_sample_of_keywords() -> None:
    strategy = make_strategy("fskw", k=2)
    user = strategy.build(JOY, CARD, random.Random(0), REAL, JOY.keywords).messages[-1]
    used = [k for k in JOY.keywords if k in user["content"]]
    assert len(used) == 5  # n_keywords of 6


def test_english_templates_and_overrides() -> None:
    card = TaskCard(task="t", language="en", classes=[JOY])
    text = make_strategy("zero-shot").build(JOY, card, random.Random(0), [], []).text
    assert "Write 5 different texts" in text
    custom = make_strategy("zero-shot", templates={"zero_shot": "Дай {n} текстов про {name}."})
    assert "Дай 5 текстов про joy." in custom.build(JOY, CARD, random.Random(0), [], []).text
    assert custom.recipe_hash() != make_strategy("zero-shot").recipe_hash()
    with pytest.raises(ConfigError, match="unknown prompt template"):
        make_strategy("zero-shot", templates={"nope": "x"})


def test_completion_prompt_for_base_models() -> None:
    strategy = make_strategy("completion-few-shot", k=2)
    assert isinstance(strategy, CompletionFewShotStrategy)
    prompt = strategy.build(JOY, CARD, random.Random(0), REAL, [])
    assert prompt.text.endswith("\n\nКласс: joy\nТекст:")
    assert prompt.text.count("Класс: joy\nТекст: Настоящий") == 2
    assert prompt.stop == ["\n\n", "Класс:"]


def test_strategies_needing_examples_say_so() -> None:
    with pytest.raises(ConfigError, match="needs real examples"):
        make_strategy("paraphrase").build(JOY, CARD, random.Random(0), [], [])
    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("magic")


def test_display_name_replaces_the_label_id_in_prompts() -> None:
    neutral = ClassCard(
        name="no_emotion",
        description="Нет эмоций: нейтральное сообщение.",
        examples=["Поезд отправляется в восемь утра."],
        display_name="без эмоций",
    )
    card = TaskCard(task="cedr", language="ru", classes=[neutral])
    for name in ("zero-shot", "few-shot", "completion-few-shot"):
        prompt = make_strategy(name).build(
            neutral, card, random.Random(0), list(neutral.examples), []
        )
        assert "без эмоций" in prompt.text, name
        assert "no_emotion" not in prompt.text, name


def test_key_points_find_their_class_by_id_when_a_display_name_is_set() -> None:
    joy = ClassCard(name="joy", description=JOY.description, display_name="радость")
    card = TaskCard(task="cedr", language="ru", classes=[joy])
    strategy = KeyPointsStrategy()
    strategy.accept_preparation("joy", "1. лето\n2. подарки\n3. встреча")
    prompt = strategy.build(joy, card, random.Random(0), REAL, [])
    assert "«радость»" in prompt.text
