"""Persona pools and the persona strategy: the bundled Gemma model for real growth, and a
scripted OpenAI-compatible server on 127.0.0.1 for exact counts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import synthmix
from llm_server import ScriptedServer, prompt_text, serve
from synthmix.augment.eda import normalize
from synthmix.cards.card import ClassCard, TaskCard, load_card
from synthmix.cli.app import app
from synthmix.core.errors import ConfigError, DataError
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.generation.personas import (
    PersonaConfig,
    build_persona_pool,
    load_personas,
    load_pool,
    parse_persona,
    persona_to_persona_prompt,
    save_pool,
    text_to_persona_prompt,
)
from synthmix.generation.plan import GenerationPlan, GeneratorSpec, run_plan
from synthmix.generation.strategies import PersonaStrategy, make_strategy
from synthmix.llm import AnswerCache, CachedBackend, LlamaCppBackend, OpenAICompatibleBackend
from synthmix.llm.redaction import RedactionConfig

CARD_PATH = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
FAST = DedupConfig(embedding=False)  # the embedding stage has its own tests in test_dedup

TEACHER = "Учительница музыки из Казани, поёт в церковном хоре."
STUDENT = "Студент-программист из Новосибирска, по вечерам играет в компьютерные игры."
LEAKED = "Вчера опять отключили горячую воду во всём доме, сколько можно терпеть"
# Seed text -> the persona the scripted model describes for it.
PLANTED = {
    "Ура, каникулы начались!": TEACHER,
    "Дети опять принесли пятёрки.": "учительница музыки из Казани — поёт в церковном хоре!",
    "Код наконец скомпилировался.": STUDENT,
    "Всю ночь сидел над задачей.": (
        "Студент-программист из Новосибирска, играет по вечерам в компьютерные игры онлайн."
    ),
    "Помидоры в этом году уродились.": "пенсионер из Твери, выращивает помидоры на даче.",
    LEAKED: LEAKED,
    "Ну и погода сегодня.": "Кто-то.",
    "Что-то мне не по себе.": "Вот описание:",
}
EXPANDED = {
    "коллега": "Завуч той же школы, строгая, но справедливая, ведёт историю.",
    "сосед": "Пожилой сосед по лестничной клетке, бывший моряк, держит рыжего кота.",
}


def _persona_answer(body: dict[str, Any]) -> str:
    text = prompt_text(body)
    relation = re.search(r"окружения — (\w+)", text)
    if relation:
        return EXPANDED[relation.group(1)]
    seed = re.search(r"Текст:\n«(.*)»", text)
    assert seed, text
    return PLANTED.get(seed.group(1), "Человек, чей текст был скрыт при редактировании.")


@pytest.fixture
def persona_server() -> Iterator[ScriptedServer]:
    with serve(_persona_answer) as server:
        yield server


def _http(server: ScriptedServer, cache: Path) -> CachedBackend:
    backend = OpenAICompatibleBackend(server.url, "test-model", api_key_env=None)
    return CachedBackend(backend, AnswerCache(cache))


# --------------------------------------------------------------------------- pools


def test_planted_duplicates_are_counted_exactly_and_a_rerun_is_free(
    persona_server: ScriptedServer, tmp_path: Path
) -> None:
    config = PersonaConfig(text_share=1.0, relations=["коллега", "сосед"], dedup=FAST)
    backend = _http(persona_server, tmp_path / "cache.db")
    pool = asyncio.run(build_persona_pool(backend, list(PLANTED), size=4, config=config))
    report = pool.report
    # Texts: 8 calls; "Вот описание:" reads as nothing, "Кто-то." is a fragment; of the
    # other six, the teacher and the student pairs lose one each (exact, MinHash), the
    # pensioner copies a worked example of the template (exact) and one echoes its seed
    # text (real-leak). Expansion then asks until both relations have answered once;
    # every further answer repeats one of them (exact).
    # With seed 0 the sixth expansion draws the second relation: 6 calls, 4 repeats.
    assert (report.text_calls, report.parse_failures, report.rejected) == (8, 1, 1)
    assert report.persona_calls == 6
    assert report.calls == 14 == persona_server.count
    assert report.returned == 13
    assert report.removed == {"exact": 2 + 4, "minhash": 1, "real-leak": 1}
    assert pool.filters == {"degenerate": 1, "near-duplicate": 7, "real-leak": 1}
    assert (report.kept, report.stopped_by) == (4, "size")
    texts = {normalize(p.persona) for p in pool.personas}
    assert len(texts) == 4 and normalize(TEACHER) in texts and normalize(LEAKED) not in texts
    expanded = [p for p in pool.personas if p.source == "persona"]
    assert {p.relation for p in expanded} == {"коллега", "сосед"}
    assert all(p.parent in {q.persona for q in pool.personas} for p in expanded)
    assert [p.source for p in pool.personas].count("text") == 2

    # Same settings again: every answer from the cache, the same pool, no request.
    again = asyncio.run(build_persona_pool(backend, list(PLANTED), size=4, config=config))
    assert persona_server.count == report.calls
    assert again.report.cached_calls == again.report.calls == report.calls
    assert again.personas == pool.personas

    out = tmp_path / "pool" / "personas.jsonl"
    report_file = save_pool(pool, out)
    assert load_pool(out) == pool.personas and load_personas(out) == pool.texts
    saved = json.loads(report_file.read_text(encoding="utf-8"))
    assert saved["kept"] == 4 and saved["removed"]["minhash"] == 1
    assert saved["config"]["relations"] == ["коллега", "сосед"]


def test_call_budget_stops_the_pool(persona_server: ScriptedServer, tmp_path: Path) -> None:
    config = PersonaConfig(max_calls=3, dedup=FAST, concurrency=1)
    backend = _http(persona_server, tmp_path / "cache.db")
    pool = asyncio.run(build_persona_pool(backend, list(PLANTED), size=10, config=config))
    assert (pool.report.calls, pool.report.stopped_by) == (3, "max_calls")
    assert persona_server.count == 3


def test_seed_texts_are_redacted_before_they_leave(
    persona_server: ScriptedServer, tmp_path: Path
) -> None:
    secret = "Пишите мне на ivan.petrov@mail.ru или звоните +7 916 123-45-67, отвечу сразу"
    config = PersonaConfig(
        dedup=FAST, redaction=RedactionConfig(enabled=True, ner=False), text_share=1.0
    )
    backend = _http(persona_server, tmp_path / "cache.db")
    pool = asyncio.run(build_persona_pool(backend, [secret], size=1, config=config))
    sent = json.dumps(persona_server.bodies, ensure_ascii=False)
    assert "ivan.petrov" not in sent and "123-45-67" not in sent and "[EMAIL]" in sent
    assert pool.redaction is not None and pool.redaction["applied"] is True
    assert pool.report.kept == 1


def test_bundled_gemma_grows_a_deduplicated_pool_and_reruns_from_cache(
    gemma: LlamaCppBackend, tmp_path: Path
) -> None:
    card = load_card(CARD_PATH)
    seeds = [example for class_card in card.classes for example in class_card.examples]
    backend = CachedBackend(gemma, AnswerCache(tmp_path / "cache.db"))
    config = PersonaConfig(dedup=FAST, max_calls=12)
    pool = asyncio.run(build_persona_pool(backend, seeds, size=6, config=config))
    report = pool.report
    assert report.kept == len(pool.personas) == 6 and report.stopped_by == "size"
    assert {p.source for p in pool.personas} == {"text", "persona"}
    assert report.calls == report.text_calls + report.persona_calls <= 12
    assert report.returned == report.calls - report.parse_failures
    dropped = report.rejected + sum(report.removed.values())
    assert report.kept == report.returned - dropped
    keys = [normalize(p.persona) for p in pool.personas]
    assert len(set(keys)) == 6 and all(re.search("[а-яё]", k) for k in keys)
    assert not set(keys) & {normalize(s) for s in seeds}
    requests = gemma.stats.requests

    again = asyncio.run(build_persona_pool(backend, seeds, size=6, config=config))
    assert gemma.stats.requests == requests  # nothing asked twice
    assert again.personas == pool.personas


def test_persona_prompts_and_answers() -> None:
    short = text_to_persona_prompt("Опять кошмары мучают, хочу спать", PersonaConfig())
    detailed = text_to_persona_prompt("Опять кошмары мучают", PersonaConfig(level="detailed"))
    assert short.text.endswith("Текст: Опять кошмары мучают, хочу спать\nАвтор:")
    assert "одной строкой" in short.messages[-1]["content"]
    assert "2–3 предложениях" in detailed.messages[-1]["content"] and detailed.text != short.text
    english = persona_to_persona_prompt(
        "a nurse from Leeds", "neighbour", PersonaConfig("short", "en")
    )
    assert english.text.endswith("Person: a nurse from Leeds\nSomeone close (neighbour):")
    custom = PersonaConfig(templates={"detail_short": "тремя словами"})
    assert "тремя словами" in text_to_persona_prompt("x", custom).messages[-1]["content"]
    with pytest.raises(ConfigError, match="unknown persona template"):
        PersonaConfig(templates={"nope": "x"})
    with pytest.raises(ConfigError, match="persona level"):
        PersonaConfig(level="huge")

    assert parse_persona(" менеджер из Москвы, ездит на машине.\nТекст: ещё") == (
        "менеджер из Москвы, ездит на машине."
    )
    assert parse_persona("Вот описание:\n1. **Автор:** «Врач из Твери, любит рыбалку»") == (
        "Врач из Твери, любит рыбалку"
    )
    assert parse_persona("Врач из Твери.\nЛюбит рыбалку.", "detailed") == (
        "Врач из Твери. Любит рыбалку."
    )
    assert parse_persona("Примеры:") == "" and parse_persona("\n\n") == ""


def test_pool_files_report_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="persona pool not found"):
        load_pool(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"persona": "врач из Твери"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="row 2: not valid JSON"):
        load_pool(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        load_pool(empty)


# ------------------------------------------------------------------------ strategy

JOY = ClassCard(
    "joy",
    "Радость: удовольствие, веселье, восторг.",
    keywords=["ура", "счастье", "люблю", "весело"],
    examples=["Ура, каникулы!", "Как же я рада тебя видеть!"],
    display_name="радость",
)
FEAR = ClassCard("fear", "Страх: испуг, тревога.", examples=["Боюсь темноты."])
CARD = TaskCard(task="emotions", language="ru", classes=[JOY, FEAR])
POOL = [
    "пенсионер из Твери, выращивает помидоры на даче",
    "студентка-медик из Томска, много дежурит",
    "водитель автобуса из Самары, отец троих детей",
]


def test_persona_strategy_prompts_carry_a_sampled_persona() -> None:
    strategy = make_strategy("persona", k=1, personas=POOL)
    assert isinstance(strategy, PersonaStrategy)
    chosen = set()
    for seed in range(12):
        prompt = strategy.build(JOY, CARD, random.Random(seed), list(JOY.examples), JOY.keywords)
        persona = next(p for p in POOL if p in prompt.text)
        chosen.add(persona)
        assert persona in prompt.messages[-1]["content"]
        assert "«радость»" in prompt.text and "joy" not in prompt.text
        assert sum(e in prompt.text for e in JOY.examples) == 1  # k=1
        assert "Используй в текстах" in prompt.messages[-1]["content"]  # keywords: chat only
        assert not {"счастье", "люблю", "весело"} & set(re.findall(r"\w+", prompt.text))
        assert prompt.text.endswith("\n1.")
        assert prompt.answer_prefix == "1." and prompt.expected == 5
    assert chosen == set(POOL)  # each call samples; over 12 calls every persona shows up
    same = strategy.build(JOY, CARD, random.Random(3), [], []).text
    assert same == strategy.build(JOY, CARD, random.Random(3), [], []).text
    assert "Примеры" not in same  # no examples
    with_keywords = make_strategy(
        "persona", personas=POOL, templates={"persona_completion_keywords": "Слова: {keywords}\n"}
    )
    text = with_keywords.build(JOY, CARD, random.Random(0), [], JOY.keywords).text
    assert re.search(r"\nСлова: \w+, \w+, \w+\nТексты этого автора", text)

    other_pool = make_strategy("persona", k=1, personas=POOL[:2])
    assert other_pool.recipe_hash() != strategy.recipe_hash()
    assert make_strategy("persona", k=1, personas=list(POOL)).recipe_hash() == (
        strategy.recipe_hash()
    )
    with pytest.raises(ConfigError, match="needs a persona pool"):
        make_strategy("persona")


def _texts_answer(body: dict[str, Any]) -> str:
    """Three texts that name the persona of the prompt; words drawn per prompt, so
    different calls give different (not near-duplicate) texts."""
    text = prompt_text(body)
    persona = re.search(r"Автор текстов — (.+)", text)
    assert persona, text
    words = ["солнце", "дождь", "поезд", "письмо", "кофе", "море"]
    words += ["снег", "город", "книга", "песня", "окно", "дача"]
    digest = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
    lines = []
    for i in range(3):
        picked = [words[(digest >> (4 * (4 * i + j))) % len(words)] for j in range(4)]
        lines.append(f"{i + 1}. Я {persona.group(1).split()[0]}, и вот: {' '.join(picked)} {i}")
    return "\n".join(lines)


def test_generation_with_the_persona_strategy(tmp_path: Path) -> None:
    strategy = make_strategy("persona", texts_per_call=3, k=1, personas=POOL)
    config = GenerationConfig(strategy="persona", per_class=6, texts_per_call=3, seed=1)
    with serve(_texts_answer) as server:
        backend = _http(server, tmp_path / "cache.db")
        result = asyncio.run(
            generate_until_unique(backend, strategy, CARD, None, config, progress=False)
        )
        bodies = [prompt_text(b) for b in server.bodies]
    assert result.data.class_counts() == {"joy": 6, "fear": 6}
    assert set(result.data.frame["strategy"]) == {"persona"}
    assert set(result.data.frame["prompt_hash"]) == {strategy.recipe_hash()}
    used = {p for body in bodies for p in POOL if p in body}
    assert len(used) >= 2 and all(any(p in body for p in POOL) for body in bodies)


def test_plan_with_a_persona_pool(tmp_path: Path) -> None:
    pool = tmp_path / "personas.jsonl"
    pool.write_text(
        "".join(json.dumps({"persona": p}, ensure_ascii=False) + "\n" for p in POOL),
        encoding="utf-8",
    )
    card = tmp_path / "card.yaml"
    card.write_text(CARD.to_yaml(), encoding="utf-8")
    with serve(_texts_answer) as server:
        plan = GenerationPlan(
            card=str(card),
            strategies=["persona"],
            personas="personas.jsonl",
            per_class=3,
            texts_per_call=3,
            cache=str(tmp_path / "cache.db"),
            out="synthetic.jsonl",
            base_dir=tmp_path,
            generators=[GeneratorSpec(kind="openai", base_url=server.url, model="test-model")],
        )
        result = run_plan(plan, progress=False)
    assert result.data.class_counts() == {"joy": 3, "fear": 3}
    assert set(result.data.frame["strategy"]) == {"persona"}
    plan.personas = None
    with pytest.raises(ConfigError, match="needs a persona pool"):
        run_plan(plan, progress=False)


# ------------------------------------------------------------------------------ CLI


def test_personas_command_builds_a_pool(
    persona_server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHMIX_TEST_KEY", "sk-test")
    card = tmp_path / "card.yaml"
    card.write_text(CARD.to_yaml(), encoding="utf-8")
    data = tmp_path / "train.csv"
    rows = "\n".join(f'"{t}",joy' for t in PLANTED)
    data.write_text(f"text,label\n{rows}\n", encoding="utf-8")
    out = tmp_path / "personas.jsonl"
    args = ["personas", "--card", str(card), "--data", str(data), "--size", "3"]
    args += ["--out", str(out), "--relation", "коллега", "--relation", "сосед"]
    args += ["--no-embedding-dedup", "--backend", "openai", "--base-url", persona_server.url]
    args += ["--model", "test-model", "--api-key-env", "SYNTHMIX_TEST_KEY"]
    args += ["--cache", str(tmp_path / "cache.db")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote 3 personas to {out}" in result.output
    assert len(load_pool(out)) == 3
    assert json.loads((tmp_path / "personas.report.json").read_text(encoding="utf-8"))["kept"] == 3


def test_cli_mistakes_are_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "synthmix", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    bad_level = run("personas", "--card", str(CARD_PATH), "--out", "x.jsonl", "--level", "huge")
    assert bad_level.returncode == 2
    assert list(tmp_path.iterdir()) == []  # a rejected option leaves no output and no lock
    assert bad_level.stderr == ("error: persona level must be one of short, detailed, got 'huge'\n")
    no_pool = run("generate", "--card", str(CARD_PATH), "--strategy", "persona")
    assert no_pool.returncode == 2 and "Traceback" not in no_pool.stderr
    assert no_pool.stderr.startswith("error: command line: strategy 'persona' needs a persona")
    assert len(no_pool.stderr.splitlines()) == 1
