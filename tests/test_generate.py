from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from typer.testing import CliRunner

import synthmix
from llm_server import ScriptedServer, cedr_answerer, prompt_text, serve
from synthmix.augment.eda import normalize
from synthmix.cards.card import ClassCard, TaskCard, load_card
from synthmix.cli.app import app
from synthmix.core.errors import ConfigError
from synthmix.core.plugins import Registry
from synthmix.data.labeled import LabeledData
from synthmix.dedup import DedupConfig
from synthmix.generation.filters import Candidate, DegenerateFilter, FilterChain, is_degenerate
from synthmix.generation.generate import (
    PROVENANCE,
    GenerationConfig,
    generate_until_unique,
    run_summary,
)
from synthmix.generation.personas import PersonaConfig, build_persona_pool
from synthmix.generation.strategies import (
    ListStrategy,
    make_strategy,
    register_strategy,
    registry,
    strategy_names,
)
from synthmix.llm import (
    AnswerCache,
    CachedBackend,
    CompletionRequest,
    CompletionResult,
    OpenAICompatibleBackend,
    cache_key,
)

CARD_PATH = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
CLASSES = ["anger", "fear", "joy"]
# The demo card names classes in Russian in its prompts ("гнев" for anger).
NAMES = {c.shown_name: c.name for c in load_card(CARD_PATH).classes}


class ScriptedBackend:
    """In-process backend: answers from a function of the call number; costs 1.0."""

    name = "scripted"
    model = "scripted-model"
    chat = True
    is_remote = False

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls = 0
        self.requests: list[CompletionRequest] = []

    def cache_identity(self) -> dict[str, str]:
        return {"kind": self.name, "model": self.model}

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        self.calls += 1
        self.requests.append(request)
        text = self.answer(self.calls)  # type: ignore[operator]
        return CompletionResult(texts=[text], prompt_tokens=10, completion_tokens=20, cost=1.0)


def _tiny_card() -> TaskCard:
    classes = [
        ClassCard("joy", "Радость.", examples=["Ура, каникулы!"]),
        ClassCard("fear", "Страх.", examples=["Боюсь темноты."]),
    ]
    return TaskCard(task="emotions", language="ru", classes=classes)


def test_yield_duplicates_and_leaks_are_counted_exactly() -> None:
    # Every answer: a copy of a real text (leak), a repeated text (duplicate after the
    # first call) and one new text; asks for 3 texts per call.
    def answer(n: int) -> str:
        return f"Вот:\n1. «Ура, каникулы!»\n2. Общий текст.\n3. Новый текст номер {n}."

    backend = ScriptedBackend(answer)
    config = GenerationConfig(
        strategy="zero-shot", per_class=5, texts_per_call=3, concurrency=1, classes=["joy"]
    )
    result = asyncio.run(
        generate_until_unique(backend, "zero-shot", _tiny_card(), None, config, progress=False)
    )
    joy = result.classes["joy"]
    # call 1 keeps 2 (shared + new); then ceil(3/3)=1 call at a time, each keeps 1 new.
    assert (joy.calls, joy.texts_returned, joy.leaks, joy.duplicates) == (4, 12, 4, 3)
    assert (joy.unique, joy.kept, joy.stopped_by) == (5, 5, "target")
    assert joy.yield_ == pytest.approx(5 / 12)
    assert joy.cost == 4.0 and joy.prompt_tokens == 40
    assert len(result.data) == 5 and result.data.class_counts() == {"joy": 5}


def test_call_budget_and_cost_budget_stop_generation(tmp_path: Path) -> None:
    same = ScriptedBackend(lambda n: "1. Один и тот же текст.")
    config = GenerationConfig(strategy="zero-shot", per_class=10, max_calls_per_class=4)
    result = asyncio.run(
        generate_until_unique(same, "zero-shot", _tiny_card(), None, config, progress=False)
    )
    assert [r.stopped_by for r in result.classes.values()] == ["max_calls", "max_calls"]
    assert result.classes["joy"].calls == 4 and result.classes["joy"].kept == 1
    assert result.classes["fear"].kept == 0  # same text again: duplicate across classes

    fresh = ScriptedBackend(lambda n: f"1. Первый текст {n}.\n2. Ещё текст {n}.")
    config = GenerationConfig(strategy="zero-shot", per_class=100, max_cost=2.5, concurrency=1)
    result = asyncio.run(
        generate_until_unique(fresh, "zero-shot", _tiny_card(), None, config, progress=False)
    )
    assert result.classes["joy"].calls == 3 and result.classes["joy"].stopped_by == "max_cost"
    assert result.classes["fear"].calls == 0 and result.classes["fear"].stopped_by == "max_cost"
    assert result.totals()["cost"] == 3.0
    summary = run_summary(result)
    assert summary["classes"]["joy"]["kept"] == 6 and summary["totals"]["calls"] == 3


@pytest.fixture
def cedr_server(cedr_test: LabeledData) -> Iterator[ScriptedServer]:
    with serve(cedr_answerer(cedr_test, names=NAMES)) as server:
        yield server


def test_cedr_generation_reaches_exact_counts(
    cedr_server: ScriptedServer, cedr_train: LabeledData, tmp_path: Path
) -> None:
    backend = CachedBackend(
        OpenAICompatibleBackend(cedr_server.url, "test-model", api_key_env=None),
        AnswerCache(tmp_path / "cache.db"),
    )
    config = GenerationConfig(strategy="fskw", per_class=12, k=4, seed=3, classes=CLASSES)
    card = load_card(CARD_PATH)
    result = asyncio.run(
        generate_until_unique(backend, "fskw", card, cedr_train, config, progress=False)
    )
    data = result.data
    assert data.class_counts() == dict.fromkeys(CLASSES, 12)
    assert list(data.frame.columns) == ["text", "label", *PROVENANCE]
    assert set(data.frame["generator"]) == {"test-model"}
    assert set(data.frame["strategy"]) == {"fskw"}
    assert data.frame["call_id"].is_unique
    keys = [normalize(t) for t in data.texts]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {normalize(t) for t in cedr_train.texts}
    for label in CLASSES:
        report = result.classes[label]
        # Answers past the target (spare calls) are paid and cached but not read.
        read = report.calls - report.unused_calls
        assert report.kept == 12 and report.texts_returned == 5 * read
        dropped = report.duplicates + report.near_duplicates + report.leaks
        assert report.unique == report.texts_returned - dropped
        assert report.yield_ == pytest.approx(report.unique / report.texts_returned)
    assert result.totals()["calls"] == cedr_server.count
    # Same settings again: everything from the cache, same rows, no request.
    again = asyncio.run(
        generate_until_unique(backend, "fskw", card, cedr_train, config, progress=False)
    )
    pd.testing.assert_frame_equal(again.data.frame, data.frame)
    assert cedr_server.count == result.totals()["calls"]


def test_backend_faults_reach_the_generation_report(
    cedr_server: ScriptedServer, cedr_train: LabeledData, tmp_path: Path
) -> None:
    """Retries are not hidden: the run's report entry counts them by cause."""
    from llm_server import Reply

    cedr_server.script = [Reply(status=500), Reply(status=429), Reply(status=200, body="{x")]
    backend = CachedBackend(
        OpenAICompatibleBackend(cedr_server.url, "m", api_key_env=None, backoff_base_s=0.01),
        AnswerCache(tmp_path / "cache.db"),
    )
    config = GenerationConfig(strategy="zero-shot", per_class=2, classes=CLASSES[:2])
    result = asyncio.run(
        generate_until_unique(backend, "zero-shot", load_card(CARD_PATH), None, config, False)
    )
    faults = run_summary(result)["faults"]
    assert faults["retries"] == 3 and faults["failed_calls"] == 0
    assert faults["faults"] == {"HTTP 429": 1, "HTTP 500": 1, "malformed body": 1}
    assert run_summary(result)["redaction"] == {"applied": False}  # loopback: not redacted


def test_leaked_real_texts_are_dropped(cedr_train: LabeledData) -> None:
    with serve(cedr_answerer(cedr_train, leak=True, names=NAMES)) as server:
        backend = OpenAICompatibleBackend(server.url, "test-model", api_key_env=None)
        config = GenerationConfig(
            strategy="few-shot", per_class=5, max_calls_per_class=2, classes=["joy"]
        )
        card = load_card(CARD_PATH)
        result = asyncio.run(
            generate_until_unique(backend, "few-shot", card, cedr_train, config, progress=False)
        )
    joy = result.classes["joy"]
    assert joy.kept == 0 and joy.leaks == joy.texts_returned == 10


_SCRIPT = """
import asyncio, sys
from synthmix.cards.card import load_card
from synthmix.data.labeled import load_labeled
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.llm import AnswerCache, CachedBackend, OpenAICompatibleBackend

url, cache, out, card, train = sys.argv[1:6]
backend = CachedBackend(
    OpenAICompatibleBackend(url, "test-model", api_key_env=None, max_concurrency=2),
    AnswerCache(cache),
)
config = GenerationConfig(
    strategy="few-shot", per_class=15, k=3, seed=7, concurrency=2,
    classes=["anger", "fear", "joy"],
    spare_calls=False,  # the test counts requests: spare calls depend on timing
)
result = asyncio.run(generate_until_unique(
    backend, "few-shot", load_card(card), load_labeled(train), config, progress=False
))
result.data.frame.to_csv(out, index=False)
"""


def _start(script: Path, server: ScriptedServer, cache: Path, out: Path, train: Path):
    args = [sys.executable, str(script), server.url, str(cache), str(out)]
    return subprocess.Popen([*args, str(CARD_PATH), str(train)])


def test_kill_minus_9_then_rerun_reuses_every_cached_answer(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    train = Path(cedr_train.source)
    with serve(cedr_answerer(cedr_test, names=NAMES), delay_s=0.1) as server:
        full = _start(script, server, tmp_path / "full.db", tmp_path / "full.csv", train)
        assert full.wait(timeout=30) == 0
        full_requests = server.count

        killed = _start(script, server, tmp_path / "resume.db", tmp_path / "resume.csv", train)
        deadline = time.monotonic() + 20
        while server.count < full_requests + 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(killed.pid, signal.SIGKILL)
        assert killed.wait(timeout=10) == -signal.SIGKILL
        assert not (tmp_path / "resume.csv").exists()  # killed before it finished
        time.sleep(0.2)  # let the server finish replies to the dead client
        before_rerun = server.count
        cached = len(AnswerCache(tmp_path / "resume.db"))  # opens fine after kill -9
        assert 0 < cached < full_requests

        rerun = _start(script, server, tmp_path / "resume.db", tmp_path / "resume.csv", train)
        assert rerun.wait(timeout=30) == 0
        rerun_requests = server.count - before_rerun

    assert rerun_requests == full_requests - cached  # nothing cached was asked again
    full_rows = pd.read_csv(tmp_path / "full.csv")
    resumed_rows = pd.read_csv(tmp_path / "resume.csv")
    pd.testing.assert_frame_equal(resumed_rows, full_rows)
    assert full_rows["label"].value_counts().to_dict() == dict.fromkeys(CLASSES, 15)


def test_key_points_runs_its_preparation_call_first() -> None:
    prompts: list[str] = []

    class Recording(ScriptedBackend):
        async def complete(self, request: CompletionRequest) -> CompletionResult:
            assert request.messages is not None
            prompts.append(request.messages[-1]["content"])
            return await super().complete(request)

    backend = Recording(
        lambda n: f"1. долгий отпуск {n}\n2. новые подарки {n}\n3. встреча друзей {n}"
    )
    config = GenerationConfig(strategy="key-points", per_class=6, texts_per_call=3)
    config.classes = ["joy"]
    result = asyncio.run(
        generate_until_unique(backend, "key-points", _tiny_card(), None, config, progress=False)
    )
    assert "характерных для класса «joy»" in prompts[0]  # step 1: key points
    assert "долгий отпуск 1" in prompts[1]  # step 2 writes about the points found
    assert result.classes["joy"].calls == 3 and result.classes["joy"].kept == 6


@pytest.mark.parametrize(
    ("text", "degenerate"),
    [
        ("1.", True),
        ("(1) (2) (3) (4)", True),
        ("Удивительно", True),
        ("не побоищем , не побоищем , не побоищем , не побоищем , не побоищем", True),
        ("А-а-а-а-а-а-а-а-а", True),
        ("Опять кошмары мучают, хочу спать", False),
        ("Непонятно же", False),
    ],
)
def test_degenerate_outputs_are_rejected(text: str, degenerate: bool) -> None:
    assert is_degenerate(text) is degenerate


def test_near_duplicates_and_near_copies_of_real_texts_do_not_count_as_unique() -> None:
    # Call n: a near-copy of the card's real example (one word added), a near-duplicate
    # of the previous call's new text (one word changed), and a genuinely new text.
    real = "Ура, наконец-то каникулы и можно спать до обеда каждый день"
    card = TaskCard(
        task="emotions", language="ru", classes=[ClassCard("joy", "Радость.", examples=[real])]
    )
    places = ["море", "горы", "озеро", "дачу", "реку", "пляж"]
    people = ["мамой", "друзьями", "сестрой", "дедушкой", "соседями", "классом"]

    def base(n: int) -> str:
        return f"Сегодня мы с {people[n]} едем на {places[n]} и очень рады"

    def answer(n: int) -> str:
        previous = base(n - 1).replace("Сегодня", "Завтра")
        return f"1. {real} {['снова', 'опять', 'вновь'][n - 1]}\n2. {previous}\n3. {base(n)}"

    config = GenerationConfig(
        strategy="zero-shot", per_class=4, texts_per_call=3, concurrency=1, classes=["joy"]
    )
    result = asyncio.run(
        generate_until_unique(ScriptedBackend(answer), "zero-shot", card, None, config, False)
    )
    joy = result.classes["joy"]
    # Call 1 keeps its new text and the "previous" one (base(0) was never seen); calls
    # 2-3 keep one new text each and drop one near-copy of the real example and one
    # near-duplicate each.
    assert (joy.calls, joy.kept, joy.leaks, joy.near_duplicates) == (3, 4, 3, 2)
    assert result.dedup is not None
    assert result.dedup["removed"] == {"real-leak": 3, "minhash": 2}
    assert real not in json.dumps(result.dedup, ensure_ascii=False)

    off = replace(config, dedup=DedupConfig(minhash=False, leak_check=False))
    plain = asyncio.run(
        generate_until_unique(ScriptedBackend(answer), "zero-shot", card, None, off, False)
    )
    assert plain.classes["joy"].near_duplicates == 0 and plain.classes["joy"].leaks == 0


def test_last_text_of_an_answer_cut_at_max_tokens_is_dropped() -> None:
    class Cut(ScriptedBackend):
        async def complete(self, request: CompletionRequest) -> CompletionResult:
            result = await super().complete(request)
            result.finish_reasons = ["length" if self.calls % 2 else "stop"]
            return result

    backend = Cut(lambda n: f"1. Целый текст номер {n} про лето.\n2. Оборванный текст {n} про")
    config = GenerationConfig(
        strategy="zero-shot", per_class=3, texts_per_call=2, concurrency=1, classes=["joy"]
    )
    result = asyncio.run(
        generate_until_unique(backend, "zero-shot", _tiny_card(), None, config, progress=False)
    )
    joy = result.classes["joy"]
    # Call 1 was cut (keeps 1), call 2 stopped normally (keeps 2).
    assert (joy.calls, joy.truncated, joy.kept) == (2, 1, 3)
    assert not any(t.startswith("Оборванный текст 1") for t in result.data.texts)
    assert "Оборванный текст 2 про" in result.data.texts


def test_cli_sends_base_model_prompts_to_the_completions_endpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`--completions` makes an OpenAI-compatible server get plain prompts with stop
    sequences; the default chat endpoint with completion-few-shot draws a warning (a base
    model behind a chat template rambles to max_tokens)."""
    card = tmp_path / "card.yaml"
    card.write_text(_tiny_card().to_yaml(), encoding="utf-8")

    def answer(body: dict[str, Any]) -> str:
        digest = hashlib.sha256(prompt_text(body).encode("utf-8")).hexdigest()[:8]
        return f" Совсем новый текст {digest} про лето\n\n"

    common = ["generate", "--card", str(card), "--strategy", "completion-few-shot"]
    common += ["--per-class", "2", "--backend", "openai", "--model", "base-model"]
    common += ["--api-key-env", "SYNTHMIX_UNSET_KEY", "--cache", str(tmp_path / "cache.db")]
    with serve(answer) as server:
        args = [*common, "--base-url", server.url, "--out", str(tmp_path / "a.jsonl")]
        result = CliRunner().invoke(app, [*args, "--completions"])
        assert result.exit_code == 0, result.output
        assert server.count > 0
        assert all(path.endswith("/v1/completions") for path in server.paths)
        assert all("prompt" in body and body.get("stop") for body in server.bodies)
        assert "sends chat messages" not in caplog.text

        sent = server.count
        args = [*common, "--base-url", server.url, "--out", str(tmp_path / "b.jsonl")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert all(path.endswith("/v1/chat/completions") for path in server.paths[sent:])
        assert "completion-few-shot writes prompts for base models" in caplog.text


# --------------------------------------------------------------------- filter chain


class _Banned:
    """A filter added after the built-in ones (as a classifier filter would be)."""

    name = "banned"

    def keep(self, candidate: Candidate) -> bool:
        return "Сегодня" not in candidate.text


def test_filter_chain_counts_what_each_filter_drops() -> None:
    real = "Ура, наконец-то каникулы и можно спать до обеда каждый день"
    card = TaskCard(
        task="emotions", language="ru", classes=[ClassCard("joy", "Радость.", examples=[real])]
    )
    places = ["море", "горы", "озеро", "дачу"]
    people = ["мамой", "друзьями", "сестрой", "дедушкой"]

    def base(n: int) -> str:
        return f"Сегодня мы с {people[n]} едем на {places[n]} и очень рады"

    def answer(n: int) -> str:
        items = [
            real,  # real-copy
            f"{real} {['снова', 'опять', 'вновь'][n - 1]}",  # real-leak (near-copy)
            "Удивительно",  # degenerate
            "Общий текст про лето.",  # new once, then exact
            base(n - 1).replace("Сегодня", "Завтра"),  # near-duplicate of base(n - 1)
            base(n),  # banned (after the dedup has accepted it)
            f"Оборванный текст {n} про",  # truncated when the answer was cut
        ]
        return "\n".join(f"{i}. {text}" for i, text in enumerate(items, start=1))

    class Cut(ScriptedBackend):
        async def complete(self, request: CompletionRequest) -> CompletionResult:
            result = await super().complete(request)
            result.finish_reasons = ["length" if self.calls % 2 else "stop"]
            return result

    config = GenerationConfig(
        strategy="zero-shot", per_class=10, texts_per_call=7, concurrency=1,
        max_calls_per_class=3, classes=["joy"],
    )  # fmt: skip
    result = asyncio.run(
        generate_until_unique(
            Cut(answer), "zero-shot", card, None, config, progress=False, filters=[_Banned()]
        )
    )
    assert result.filters == {
        "real-copy": 3,
        "real-leak": 3,
        "degenerate": 3,
        "exact": 2,
        "near-duplicate": 2,
        "banned": 3,
        "truncated": 2,
    }
    joy = result.classes["joy"]
    # Reports keep their fields: both leak filters count as leaks, a plugged-in filter's
    # drops as rejected (with the degenerate ones).
    assert (joy.leaks, joy.rejected, joy.duplicates, joy.near_duplicates) == (6, 6, 2, 2)
    assert (joy.truncated, joy.kept, joy.texts_returned, joy.stopped_by) == (2, 3, 21, "max_calls")
    assert sorted(result.data.texts) == sorted(
        ["Общий текст про лето.", base(0).replace("Сегодня", "Завтра"), "Оборванный текст 2 про"]
    )

    chain = FilterChain([DegenerateFilter(), _Banned()])
    verdicts = [chain.run(Candidate(t)) for t in ("Ура", "Сегодня ясно и тепло", "Ясно и тепло")]
    assert verdicts == ["degenerate", "banned", None]
    assert chain.dropped == {"degenerate": 1, "banned": 1}


# ----------------------------------------------------------------------- strategies


@dataclass
class _Shout(ListStrategy):
    """A third-party strategy: its own body, and it needs real examples."""

    needs_examples: ClassVar[bool] = True
    name: str = "shout"

    def body(
        self, fields: dict[str, Any], rng: Any, real_examples: list[str], keywords: list[str]
    ) -> str:
        return f"КРИЧИ {fields['n']} текстов про «{fields['name']}»!"


@pytest.fixture
def shout() -> Iterator[None]:
    saved = dict(registry.STRATEGIES._entries)
    register_strategy("shout", _Shout)
    yield
    registry.STRATEGIES._entries = saved


def test_a_strategy_registered_at_runtime_is_usable_by_name(shout: None) -> None:
    prompts: list[str] = []

    class Recording(ScriptedBackend):
        async def complete(self, request: CompletionRequest) -> CompletionResult:
            assert request.messages is not None
            prompts.append(request.messages[-1]["content"])
            return await super().complete(request)

    backend = Recording(lambda n: f"1. Громкий текст номер {n}.\n2. Ещё один громкий {n}.")
    config = GenerationConfig(strategy="shout", per_class=4, texts_per_call=2, classes=["joy"])
    result = asyncio.run(
        generate_until_unique(backend, "shout", _tiny_card(), None, config, progress=False)
    )
    assert "КРИЧИ 2 текстов про «joy»!" in prompts[0]
    assert set(result.data.frame["strategy"]) == {"shout"} and len(result.data) == 4
    assert "shout" in strategy_names()


def test_a_strategy_from_an_entry_point_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed distribution's entry point in `synthmix.strategies` makes its strategy
    selectable by name, with its declared needs."""
    (tmp_path / "my_strategies.py").write_text(
        "from synthmix.generation.strategies import FewShotStrategy\n"
        "class Plugged(FewShotStrategy):\n    pass\n",
        "utf-8",
    )
    info = tmp_path / "my_strategies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-strategies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\nplugged = my_strategies:Plugged\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh: Registry[registry.StrategyFactory] = Registry(registry.ENTRY_POINT_GROUP, "", {})
    monkeypatch.setattr(registry, "STRATEGIES", fresh)
    assert strategy_names() == ["plugged"]
    assert registry.declares("plugged", "needs_examples")
    strategy = make_strategy("plugged", k=1)
    assert type(strategy).__name__ == "Plugged"
    prompt = strategy.build(JOY_EXAMPLES, _tiny_card(), random.Random(0), ["Ура, каникулы!"], [])
    assert "Ура, каникулы!" in prompt.text
    sys.modules.pop("my_strategies", None)


JOY_EXAMPLES = ClassCard("joy", "Радость.", examples=["Ура, каникулы!"])


def test_a_strategy_needing_examples_without_any_is_a_one_line_error(
    shout: None, tmp_path: Path
) -> None:
    bare = TaskCard(task="emotions", language="ru", classes=[ClassCard("joy", "Радость.")])
    config = GenerationConfig(strategy="shout", per_class=2)
    backend = ScriptedBackend(lambda n: "1. Текст.")
    with pytest.raises(ConfigError) as caught:
        asyncio.run(generate_until_unique(backend, "shout", bare, None, config, progress=False))
    message = str(caught.value)
    assert message.startswith("strategy 'shout' needs real examples of every class")
    assert "'joy'" in message and "\n" not in message and backend.calls == 0

    card = tmp_path / "card.yaml"
    card.write_text(bare.to_yaml(), encoding="utf-8")
    for strategy, expected in (
        ("few-shot", f"error: {card}: strategies ['few-shot'] need examples, and class 'joy'"),
        ("magic", "error: command line: unknown strategy 'magic' (available: completion-few-shot,"),
    ):
        command = [sys.executable, "-m", "synthmix", "generate", "--card", str(card)]
        run = subprocess.run(
            [*command, "--strategy", strategy, "--out", str(tmp_path / "out.jsonl")],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith(expected) and len(run.stderr.splitlines()) == 1


# ------------------------------------------------------------ cache keys and outputs

# Digests of the requests (their cache keys), rows and totals of fixed runs, recorded with
# the code before the generation engine was shared by generate and personas: a change
# here means cached answers would no longer be found, or the outputs moved. Re-recorded when
# live calls became a sliding window (classes overlapping): the rows and the set of requests
# are those of before, except that few-shot (chat), paraphrase and key-points make one or two
# calls more past their target (a call started before an answer with more texts than asked
# for came back); every request of before is still made, so its cached answer is found.
# Re-recorded when answers past the target stopped being read (spare calls): requests and
# rows unchanged (checked strategy by strategy); the totals count fewer texts returned and
# carry `unused_calls`.
BUILTIN_STRATEGIES = ["zero-shot", "few-shot", "fskw", "paraphrase", "key-points"]
BUILTIN_STRATEGIES += ["completion-few-shot", "persona"]
REPLAY_DIGESTS = {
    "zero-shot:True": "b8465643716f75af",
    "zero-shot:False": "250738ab75a1f1e2",
    "few-shot:True": "b4af76d3a0fb35a2",
    "few-shot:False": "97068afd3acaae97",
    "fskw:True": "60e6850c0a75b408",
    "fskw:False": "fb6b3303303c7315",
    "paraphrase:True": "8129fb117f8b59a2",
    "paraphrase:False": "cb43365028ea30e7",
    "key-points:True": "c4653a9097b3d475",
    "key-points:False": "69dac55b2b8b7ec8",
    "completion-few-shot:True": "38c282e562d76121",
    "completion-few-shot:False": "224440c48279b99c",
    "persona:True": "ded2e8583059841d",
    "persona:False": "ea8e4a2f53c205eb",
    "pool:short": "918ae1fad3e64e5c",
    "pool:detailed": "37fb3e6c8f6ed406",
}
_WORDS = [
    "солнце",
    "дождь",
    "поезд",
    "письмо",
    "кофе",
    "море",
    "снег",
    "город",
    "книга",
    "песня",
    "окно",
    "дача",
    "гнев",
    "страх",
]


class _KeyedBackend:
    """Answers as a function of the request's cache key: lists of varying length, some
    fragments and copies of a card example, some answers cut at max_tokens."""

    name = "fake"
    model = "fake-model"
    is_remote = False

    def __init__(self, chat: bool, example: str) -> None:
        self.chat = chat
        self.example = example
        self.keys: list[str] = []

    def cache_identity(self) -> dict[str, str]:
        return {"kind": "fake", "model": self.model}

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        key = cache_key(self.cache_identity(), request)
        self.keys.append(key)
        d = int(key, 16)
        lines = []
        for i in range(1 + d % 5):
            words = [_WORDS[(d >> (4 * (3 * i + j) + 7)) % len(_WORDS)] for j in range(4)]
            lines.append(f"{i + 1}. Текст про {' '.join(words)} номер {d % 7 + i % 3}")
        if d % 11 == 0:
            lines.append("1.")
        if d % 13 == 0:
            lines.append(self.example)
        return CompletionResult(
            texts=["\n".join(lines)],
            prompt_tokens=d % 50,
            completion_tokens=d % 70,
            cost=0.01 * (d % 4),
            finish_reasons=["length" if d % 3 == 0 else "stop"],
        )


def _digest(*parts: Any) -> str:
    body = json.loads(json.dumps(list(parts), ensure_ascii=False, default=str))
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()[:16]


def test_requests_and_outputs_replay_those_of_earlier_versions(cedr_train: LabeledData) -> None:
    card = load_card(CARD_PATH)
    example = card.classes[0].examples[0]
    personas = ["учитель из Казани", "врач из Твери", "студент из Томска"]

    async def runs() -> dict[str, str]:
        found = {}
        for name in BUILTIN_STRATEGIES:
            for chat in (True, False):
                backend = _KeyedBackend(chat, example)
                config = GenerationConfig(
                    strategy=name, per_class=6, texts_per_call=3, k=3, seed=2, concurrency=3,
                    max_cost=3.0 if name == "fskw" else None, dedup=DedupConfig(embedding=False),
                )  # fmt: skip
                strategy = make_strategy(name, texts_per_call=3, k=2, personas=personas)
                real = cedr_train if name == "paraphrase" else None
                result = await generate_until_unique(
                    backend, name if name != "persona" else strategy, card, real, config, False
                )
                rows = result.data.frame.astype(str).values.tolist()
                totals = run_summary(result)["totals"]
                found[f"{name}:{chat}"] = _digest(_keys(backend), rows, totals)
        seeds = [e for c in card.classes for e in c.examples]
        for level in ("short", "detailed"):
            backend = _KeyedBackend(True, example)
            config = PersonaConfig(level=level, dedup=DedupConfig(embedding=False), concurrency=3)
            pool = await build_persona_pool(backend, seeds, 8, config)
            summary = {**pool.summary(), "wall_s": 0}
            personas_out = [p.to_dict() for p in pool.personas]
            found[f"pool:{level}"] = _digest(_keys(backend), personas_out, summary)
        return found

    assert asyncio.run(runs()) == REPLAY_DIGESTS


def _keys(backend: _KeyedBackend) -> str:
    # The set of requests, not their order: a run's classes send calls side by side.
    return hashlib.sha256("".join(sorted(backend.keys)).encode()).hexdigest()


def test_long_real_examples_are_clipped_in_prompts(cedr_train: LabeledData) -> None:
    """A whole document in one cell would go out in every request; prompts quote its start."""
    card = _tiny_card()
    long_text = "очень " * 3000 + "длинный текст"
    real = LabeledData(
        pd.DataFrame({"text": [long_text, "короткий пример"], "label": ["joy", "fear"]}), "r"
    )
    backend = ScriptedBackend(lambda n: f"1. Текст номер {n}.\n2. Ещё один {n}.")
    config = GenerationConfig(
        strategy="few-shot", per_class=1, k=1, concurrency=1, max_example_chars=300
    )
    asyncio.run(generate_until_unique(backend, "few-shot", card, real, config, progress=False))
    prompts = [r.input_text() for r in backend.requests]
    assert prompts and all(len(p) < 2000 for p in prompts)
    assert any("очень очень" in p and "…" in p for p in prompts)
