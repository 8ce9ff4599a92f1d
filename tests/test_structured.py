"""Structured output: strategies ask for {"texts": [...]} JSON through the server's schema
support; answers are read as JSON first and as a list when a server ignored the schema;
how answers parsed is counted per run."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

import synthmix
from llm_server import cedr_answerer, serve
from synthmix.cards.card import load_card
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import GenerationConfig, generate_until_unique, run_summary
from synthmix.generation.strategies import make_strategy
from synthmix.generation.strategies.parsing import parse_structured, texts_schema
from synthmix.llm import CompletionRequest, OpenAICompatibleBackend

CARD = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
NAMES = {c.shown_name: c.name for c in load_card(CARD).classes}
CLASSES = ["anger", "joy"]


def _as_json(answer: str) -> str:
    items = [m.group(1) for m in re.finditer(r"^\d+\.\s*(.+)$", answer, re.M)]
    return json.dumps({"texts": items}, ensure_ascii=False)


def _generate(url: str, train: LabeledData, **options: Any) -> Any:
    backend = OpenAICompatibleBackend(url, "m", api_key_env=None, **options)
    config = GenerationConfig(
        strategy="few-shot", per_class=6, k=3, classes=CLASSES, dedup=DedupConfig(embedding=False)
    )
    strategy = make_strategy("few-shot", k=3, structured=True)
    card = load_card(CARD)
    return asyncio.run(
        generate_until_unique(backend, strategy, card, train, config, progress=False)
    )


def test_a_schema_goes_out_and_json_answers_are_read_as_such(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    listing = cedr_answerer(cedr_test, names=NAMES)

    def answer(body: dict[str, Any]) -> str:
        return _as_json(listing(body)) if "response_format" in body else listing(body)

    with serve(answer) as server:
        result = _generate(server.url, cedr_train)
    sent = server.bodies[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == texts_schema(5)
    assert "JSON" in server.bodies[0]["messages"][-1]["content"]
    parsing = run_summary(result)["parsing"]
    assert parsing["structured"] and parsing["failures"] == 0
    totals = result.totals()  # answers past the target (spare calls) are not read
    assert parsing["methods"] == {"schema": totals["calls"] - totals["unused_calls"]}
    assert result.data.class_counts() == dict.fromkeys(CLASSES, 6)


def test_a_server_that_ignores_the_schema_falls_back_to_the_list_parser(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    with serve(cedr_answerer(cedr_test, names=NAMES)) as server:
        result = _generate(server.url, cedr_train, structured_format="off")
    assert all("response_format" not in body for body in server.bodies)
    parsing = run_summary(result)["parsing"]
    totals = result.totals()
    assert parsing["methods"] == {"list": totals["calls"] - totals["unused_calls"]}
    assert not parsing["failures"]
    assert result.data.class_counts() == dict.fromkeys(CLASSES, 6)


def test_structured_formats_put_the_schema_where_each_server_reads_it() -> None:
    request = CompletionRequest(prompt="Тексты:", json_schema=texts_schema(3))

    def body(form: str) -> dict[str, Any]:
        backend = OpenAICompatibleBackend(
            "http://127.0.0.1:1", "m", chat=False, structured_format=form
        )
        return backend.payload(request)

    assert body("json_object")["response_format"] == {
        "type": "json_object",
        "schema": texts_schema(3),
    }
    pytest.importorskip("llama_cpp")
    assert "texts" in body("grammar")["grammar"] and "root" in body("grammar")["grammar"]
    assert "response_format" not in body("off") and "grammar" not in body("off")
    with pytest.raises(ConfigError, match="structured_format must be one of"):
        OpenAICompatibleBackend("http://127.0.0.1:1", "m", structured_format="xml")
    # Keys of plain requests through the default format are those they always had.
    plain = OpenAICompatibleBackend("http://127.0.0.1:1", "m")
    assert plain.cache_identity() == {
        "kind": "openai-http",
        "base_url": "http://127.0.0.1:1",
        "model": "m",
    }


@pytest.mark.parametrize(
    ("answer", "method", "texts"),
    [
        ('{"texts": ["Первый текст.", "Второй"]}', "schema", ["Первый текст.", "Второй"]),
        ('```json\n{"texts": ["Один"]}\n```', "schema", ["Один"]),
        ('{"texts": ["Целый текст.", "Обрезан на полусл', "schema-partial", ["Целый текст."]),
        ('{"texts": []}', "schema", []),
        ('{"items": ["Другой ключ"]}', "json", ["Другой ключ"]),
        ("1. Список вместо JSON\n2. Ещё пункт", "list", ["Список вместо JSON", "Ещё пункт"]),
    ],
)
def test_structured_answers_parse_with_fallbacks(answer: str, method: str, texts: list) -> None:
    parsed = parse_structured(answer, 2)
    assert (parsed.method, parsed.texts) == (method, texts)
    assert parsed.failed == (not texts)


def test_completion_strategies_have_no_structured_form() -> None:
    strategy = make_strategy("completion-few-shot", structured=True)
    assert not getattr(strategy, "structured", False)
    plain, structured = make_strategy("few-shot"), make_strategy("few-shot", structured=True)
    assert plain.recipe_hash() != structured.recipe_hash()
