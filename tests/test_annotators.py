"""Agreement statistics against textbook values; annotators and moderator against the
scripted loopback server; review exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from llm_server import ScriptedServer, prompt_text, serve
from synthmix.cards.card import TaskCard, load_card
from synthmix.core.errors import SynthmixError
from synthmix.labeling.annotators import (
    Annotator,
    Moderator,
    agreement_report,
    annotate,
    cohen_kappa,
    disagreements,
    export_label_studio,
    export_review_csv,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    label_studio_tasks,
    resolve,
)
from synthmix.llm import AnswerCache, CachedBackend, OpenAICompatibleBackend

CARD = Path(__file__).resolve().parents[1] / "src/synthmix/demo_data/cedr_emotions/card.yaml"


# ---------------------------------------------------------------------------- statistics


def test_cohen_kappa_hand_computed_table() -> None:
    # 2x2 table (Wikipedia, "Cohen's kappa"): yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2/0.5 = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # Missing answers are left out pairwise.
    assert cohen_kappa([*a, None], [*b, "yes"]) == pytest.approx(0.4)


def test_fleiss_kappa_wikipedia_example() -> None:
    # Fleiss (1971) layout as on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[1, 1], [2, 1]]))


def test_krippendorff_alpha_nominal_hand_and_textbook() -> None:
    # By hand: units (a,a), (a,b), (b,b). Coincidences o_aa = 2, o_ab = o_ba = 1,
    # o_bb = 2; n = 6, n_a = n_b = 3; alpha = 1 - 5 * 2 / (3*3*2) = 1 - 10/18 = 0.444.
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "b"], ["b", "b"]]) == pytest.approx(4 / 9)
    # Krippendorff (2011), 4 coders x 12 units with missing values: nominal alpha 0.743.
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[None if c[u] is None else str(c[u]) for c in coders] for u in range(12)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)


# ------------------------------------------------------------------------ annotators, moderator

VERDICT = "Метка: sadness\nОбоснование: Текст говорит о тоске из-за дождя, а не о радости."
EXPLANATION = "Слово «рад» прямо называет радость; против метки ничего нет."


def _answer(body: dict[str, Any]) -> str:
    text = prompt_text(body)
    if "Ответы разметчиков" in text:
        # A small base model parrots the answer format instead of choosing.
        return "Метка: <метка>\nОбоснование: <одно-два предложения>" if "шум" in text else VERDICT
    if "Объясни" in text:
        return EXPLANATION
    field, open_text = re.findall(r"Текст: (.*)\n(Метка|Эмоция):\s*$", text)[-1][::-1]
    # Annotator "b" (template field "Эмоция") hears sadness in rain; "a" always joy.
    return "sadness" if field == "Эмоция" and "дождь" in open_text else "joy"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve(_answer) as running:
        yield running


@pytest.fixture(scope="module")
def card() -> TaskCard:
    return load_card(CARD)


def _backend(server: ScriptedServer, tmp_path: Path) -> CachedBackend:
    http = OpenAICompatibleBackend(server.url, "test-model", api_key_env=None, timeout_s=5.0)
    return CachedBackend(http, AnswerCache(tmp_path / "cache.sqlite"))


TEXTS = ["Я так рад тебя видеть", "Опять дождь и пусто на душе", "Ура, каникулы!"]


def test_annotators_moderator_sees_only_disagreements(
    card: TaskCard, server: ScriptedServer, tmp_path: Path
) -> None:
    backend = _backend(server, tmp_path)
    annotators = [
        Annotator("a", card, backend, k=1),
        Annotator("b", card, backend, k=1, templates={"field": "Эмоция"}),
    ]
    table = annotate(annotators, TEXTS)
    assert list(table["a"]) == ["joy", "joy", "joy"]
    assert list(table["b"]) == ["joy", "sadness", "joy"]
    assert disagreements(table, ["a", "b"]) == [1]
    moderator = Moderator(card, backend)
    resolved = resolve(table, ["a", "b"], moderator)
    assert list(resolved["label"]) == ["joy", "sadness", "joy"]
    assert list(resolved["source"]) == ["agreement", "moderator", "agreement"]
    assert "тоске" in resolved.at[1, "rationale"]
    moderated = [b for b in server.bodies if "Ответы разметчиков" in prompt_text(b)]
    assert len(moderated) == 1  # only the disputed text reached the moderator
    prompt = prompt_text(moderated[0])
    assert "- a: joy\n- b: sadness" in prompt and "Число голосов не довод" in prompt
    assert moderator.explain(TEXTS[0], "joy") == EXPLANATION
    unmoderated = resolve(table, ["a", "b"], None)
    assert unmoderated.at[1, "label"] is None and unmoderated.at[1, "source"] == "disputed"


def test_a_verdict_without_a_label_leaves_the_text_disputed(
    card: TaskCard, server: ScriptedServer, tmp_path: Path
) -> None:
    table = pd.DataFrame({"text": ["шум за окном", TEXTS[1]], "a": ["joy"] * 2, "b": ["anger"] * 2})
    resolved = resolve(table, ["a", "b"], Moderator(card, _backend(server, tmp_path)))
    assert resolved.at[0, "label"] is None and resolved.at[0, "source"] == "disputed"
    assert resolved.at[0, "rationale"] == "moderator gave no label"
    assert resolved.at[1, "label"] == "sadness" and resolved.at[1, "source"] == "moderator"


def test_agreement_report_with_gold(card: TaskCard) -> None:
    table = pd.DataFrame(
        {
            "text": ["t1", "t2", "t3", "t4"],
            "a": ["joy", "joy", "sadness", "anger"],
            "b": ["joy", "sadness", "sadness", None],
            "c": ["joy", "joy", "sadness", "anger"],
        }
    )
    gold = ["joy", "sadness", "sadness", "anger"]
    report = agreement_report(table, ["a", "b", "c"], card.class_names, gold)
    assert report["cohen_kappa"]["a~c"] == pytest.approx(1.0)
    assert report["fleiss_items"] == 3  # t4 has a missing answer
    assert report["krippendorff_alpha"] < 1.0
    assert report["vs_gold"]["b"]["accuracy"] == pytest.approx(0.75)
    matrix = report["vs_gold"]["a"]["confusion_matrix"]
    sad, joy = card.class_names.index("sadness"), card.class_names.index("joy")
    assert matrix[sad][joy] == 1  # a called the sad t2 joy


def test_review_exports(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": TEXTS, "label": ["joy", "sadness", None]})
    export_review_csv(frame, tmp_path / "review.csv")
    raw = (tmp_path / "review.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(tmp_path / "review.csv", encoding="utf-8-sig")
    assert list(back.columns) == ["text", "label", "human_label"] and back.at[0, "text"] == TEXTS[0]
    tasks = label_studio_tasks(
        TEXTS, {"cascade": ["joy", "sadness", None]}, scores={"cascade": [0.9, 0.7, 0.1]}
    )
    export_label_studio(tasks, tmp_path / "tasks.json")
    loaded = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert loaded[0]["data"]["text"] == TEXTS[0]
    prediction = loaded[1]["predictions"][0]
    assert prediction["model_version"] == "cascade" and prediction["score"] == 0.7
    assert prediction["result"][0]["value"] == {"choices": ["sadness"]}
    assert prediction["result"][0]["type"] == "choices"
    assert loaded[2]["predictions"] == []


# ---------------------------------------------------------------------------- CLI


def _annotators_yaml(server: ScriptedServer, folder: Path, **changes: Any) -> Path:
    backend = {"base_url": server.url, "model": "test-model", "api_key_env": None}
    config: dict[str, Any] = {
        "annotators": [
            # One annotator in the backend-spec shape, the other in the older one: both name
            # the same server, so they share one backend.
            {"name": "a", "backend": {"kind": "openai", **backend}, "k": 1},
            {
                "name": "b",
                "backend": "openai",
                "backend_params": backend,
                "k": 1,
                "templates": {"field": "Эмоция"},
            },
        ],
        "moderator": {"backend": "openai", "backend_params": backend},
        "cache": str(folder / "cache.sqlite"),
        **changes,
    }
    path = folder / "annotators.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _annotate_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from synthmix.cli.app import app

    return CliRunner().invoke(app, ["annotate", *args])


def test_annotate_command_moderates_explains_and_reruns_from_cache(
    server: ScriptedServer, tmp_path: Path
) -> None:
    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS, "human": ["joy", "sadness", "surprise"]}).to_csv(data)
    config = _annotators_yaml(server, tmp_path)
    out = tmp_path / "out" / "review.csv"
    args = [str(data), "--card", str(CARD), "--out", str(out), "--annotators", str(config)]
    args += ["--gold-column", "human", "--explain", "--label-studio", str(tmp_path / "ls.json")]
    result = _annotate_cli(*args)
    assert result.exit_code == 0, result.output

    review = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert list(review["a"]) == ["joy", "joy", "joy"]
    assert list(review["b"]) == ["joy", "sadness", "joy"]
    assert list(review["label"]) == ["joy", "sadness", "joy"]
    assert list(review["source"]) == ["agreement", "moderator", "agreement"]
    assert set(review["explanation"]) == {EXPLANATION}
    assert list(review["gold"]) == ["joy", "sadness", "surprise"]
    assert "human_label" in review.columns

    agreement = json.loads((out.parent / "review.agreement.json").read_text(encoding="utf-8"))
    expected_kappa = cohen_kappa_score(["joy"] * 3, ["joy", "sadness", "joy"])
    assert agreement["cohen_kappa"]["a~b"] == pytest.approx(expected_kappa)
    assert agreement["vs_gold"]["a"]["accuracy"] == pytest.approx(1 / 3)
    assert agreement["vs_gold"]["b"]["accuracy"] == pytest.approx(2 / 3)
    assert agreement["final"]["by_source"] == {"agreement": 2, "moderator": 1}
    assert agreement["final"]["accuracy_on_decided"] == pytest.approx(2 / 3)
    assert [b["model"] for b in agreement["backends"]] == ["test-model"]  # one shared backend
    assert [a["templates"] for a in agreement["config"]["annotators"]] == [
        None,
        {"field": "Эмоция"},
    ]
    assert "Krippendorff" in result.output and "b vs gold: accuracy 0.667" in result.output

    tasks = json.loads((tmp_path / "ls.json").read_text(encoding="utf-8"))
    assert [p["model_version"] for p in tasks[1]["predictions"]] == ["a", "b", "final"]
    assert tasks[1]["predictions"][2]["result"][0]["value"] == {"choices": ["sadness"]}
    assert tasks[1]["data"] == {"text": TEXTS[1], "row": 2}  # review-import traces it back

    # Annotators and moderator share one backend: 3 + 3 labels, 1 verdict, 3 explanations.
    assert len(server.bodies) == 10
    again = _annotate_cli(*args)
    assert again.exit_code == 0, again.output
    assert len(server.bodies) == 10  # every answer came from the cache
    assert pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False).equals(review)


@pytest.mark.parametrize(
    ("rows", "changes", "expected"),
    [
        ({"human": ["joy", "", "joy"]}, {}, "texts.csv: row 2: empty gold label"),
        ({"human": ["joy", "грусть", "joy"]}, {}, "row 2: gold label 'грусть' is not a class"),
        ({}, {"annotators": [{"name": "solo"}]}, "at least two annotators"),
        ({}, {"moderator": {"backend": "openai", "temperature": 0}}, "unknown key 'temperature'"),
        ({}, {"annotators": [{"name": "x", "k": -1}, {"name": "y"}]}, "k must be a whole"),
    ],
)
def test_annotate_mistakes_are_one_line(
    server: ScriptedServer,
    tmp_path: Path,
    rows: dict[str, list[str]],
    changes: dict[str, Any],
    expected: str,
) -> None:
    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS, **rows}).to_csv(data)
    args = [str(data), "--card", str(CARD), "--out", str(tmp_path / "review.csv")]
    args += ["--annotators", str(_annotators_yaml(server, tmp_path, **changes))]
    args += ["--gold-column", "human"] if rows else []
    result = _annotate_cli(*args)
    assert result.exit_code != 0
    assert isinstance(result.exception, SynthmixError)
    assert expected in str(result.exception) and "\n" not in str(result.exception)
    assert server.bodies == []  # a mistake is caught before anything is paid for


def test_explain_without_a_moderator_fails_before_any_call(
    server: ScriptedServer, tmp_path: Path
) -> None:
    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(data)
    config = _annotators_yaml(server, tmp_path, moderator=None)
    result = _annotate_cli(
        str(data), "--card", str(CARD), "--out", str(tmp_path / "r.csv"),
        "--annotators", str(config), "--explain",
    )  # fmt: skip
    assert "--explain needs a moderator" in str(result.exception)
    assert server.bodies == []
    without = _annotate_cli(
        str(data), "--card", str(CARD), "--out", str(tmp_path / "r.csv"),
        "--annotators", str(config),
    )  # fmt: skip
    assert without.exit_code == 0, without.output
    review = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(review["source"]) == ["agreement", "disputed", "agreement"]
    assert review.at[1, "label"] == ""  # left for a human
