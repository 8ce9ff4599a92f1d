"""One model behind two real loopback servers: calls spread over both, a replica that stops or
fails is taken out (and probed back in), no answer is lost or paid twice, and the answer cache
does not care which replica answered."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_server import Reply, ScriptedServer, prompt_text, serve
from synthmix.core.config import build_dataclass
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.llm import BackendError, CompletionRequest
from synthmix.llm.cache import AnswerCache, CachedBackend
from synthmix.llm.replicas import ReplicaBackend
from synthmix.llm.spec import BackendSpec


def _echo(body: dict[str, Any]) -> str:
    return f"ответ на: {prompt_text(body)}"


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with serve(_echo, delay_s=0.02) as first, serve(_echo, delay_s=0.02) as second:
        yield first, second


def _spec(urls: list[str], **options: Any) -> BackendSpec:
    raw = {"kind": "openai", "model": "m", "base_url": urls, "api_key_env": "NO_SUCH_KEY"}
    return build_dataclass(BackendSpec, {**raw, "options": options}, "plan.yaml", "generator")


def _ask(backend: Any, prompts: list[str]) -> list[str]:
    async def run() -> list[str]:
        calls = (
            backend.complete(CompletionRequest(messages=[{"role": "user", "content": p}]))
            for p in prompts
        )
        return [result.texts[0] for result in await asyncio.gather(*calls)]

    return asyncio.run(run())


def _recording(server: ScriptedServer, before: Any = None) -> list[str]:
    """The prompts `server` answers from now on (with 200: a paid answer)."""
    answered: list[str] = []

    def answer(body: dict[str, Any]) -> str:
        if before is not None:
            before()
        answered.append(prompt_text(body))
        return _echo(body)

    server.answer = answer
    return answered


def test_a_replica_stopped_mid_run_loses_no_answer_and_none_is_paid_twice(
    servers: tuple[ScriptedServer, ScriptedServer], tmp_path: Path
) -> None:
    first, second = servers
    stopped = threading.Event()

    def stop_after_three() -> None:
        if second.count >= 3 and not stopped.is_set():
            stopped.set()
            threading.Thread(target=second.stop).start()  # refuses connections from now on

    by_first, by_second = _recording(first), _recording(second, stop_after_three)
    cache = AnswerCache(tmp_path / "answers.sqlite")
    backend = _spec([first.url, second.url], max_concurrency=3, cooldown_s=60).open(cache)
    assert isinstance(backend, CachedBackend) and isinstance(backend.backend, ReplicaBackend)
    prompts = [f"текст {i}" for i in range(30)]

    answers = _ask(backend, prompts)

    assert answers == [f"ответ на: {p}" for p in prompts]  # none lost
    assert Counter(by_first) + Counter(by_second) == Counter(prompts)  # each paid once
    assert len(by_second) >= 3 and len(by_first) >= 30 - 6
    assert first.max_in_flight <= 3  # the concurrency limit is per replica
    out = backend.backend.replica_stats()
    assert [(r["taken_out"], r["out_now"]) for r in out] == [(0, False), (1, True)]
    assert backend.backend.stats.answers == 30

    # The cache keys do not name the replica: the first server alone is asked nothing.
    before = first.count
    alone = _spec([first.url]).open(cache)
    assert _ask(alone, prompts) == answers
    assert first.count == before and alone.stats.hits == 30


def test_a_failing_replica_is_probed_later_and_rejoins(
    servers: tuple[ScriptedServer, ScriptedServer], tmp_path: Path
) -> None:
    first, second = servers
    by_first, by_second = _recording(first), _recording(second)
    busy = {"error": {"message": "overloaded"}}
    second.script = [Reply(503, busy), Reply(500, busy)]  # then it answers again
    backend = _spec([first.url, second.url], max_concurrency=1, cooldown_s=0.05).build()
    assert isinstance(backend, ReplicaBackend)
    prompts = [f"текст {i}" for i in range(24)]

    assert _ask(backend, prompts) == [f"ответ на: {p}" for p in prompts]

    assert len(by_second) >= 3  # back in rotation after its two failures
    assert Counter(by_first) + Counter(by_second) == Counter(prompts)
    stats = backend.replica_stats()
    assert stats[1]["taken_out"] >= 1 and not stats[1]["out_now"]
    assert backend.stats.to_dict()["faults"] == {"HTTP 500": 1, "HTTP 503": 1}
    assert backend.stats.retries == 2


def test_all_replicas_failing_is_one_line(servers: tuple[ScriptedServer, ScriptedServer]) -> None:
    first, second = servers
    for server in servers:
        server.script = [Reply(500, {"error": {"message": "down"}})] * 10
    backend = _spec([first.url, second.url], max_retries=2, cooldown_s=0.01).build()
    with pytest.raises(BackendError) as caught:
        _ask(backend, ["текст"])
    message = str(caught.value)
    assert message.startswith("model m: gave up after 3 attempts over 2 replicas; last error: ")
    assert "\n" not in message
    assert first.count + second.count == 3


def test_a_mistake_is_not_retried_on_another_replica(
    servers: tuple[ScriptedServer, ScriptedServer],
) -> None:
    first, second = servers
    first.script = [Reply(status=400, body={"error": {"message": "bad request"}})]
    backend = _spec([first.url, second.url]).build()
    with pytest.raises(BackendError, match="HTTP 400"):
        _ask(backend, ["текст"])
    assert (first.count, second.count) == (1, 0)
    assert backend.replica_stats()[0]["taken_out"] == 0


def test_replica_specs_are_checked_at_the_edge() -> None:
    with pytest.raises(ConfigError, match="is not an http"):
        _spec(["http://127.0.0.1:1", "ftp://x"]).build()
    with pytest.raises(ConfigError, match="listed twice"):
        _spec(["http://127.0.0.1:1", "http://127.0.0.1:1/v1"]).build()
    with pytest.raises(ConfigError, match="needs 'base_url' and 'model'"):
        _spec([]).build()
    with pytest.raises(ConfigError, match=r"^plan.yaml: generator\.base_url: expected str"):
        build_dataclass(BackendSpec, {"base_url": {"a": 1}}, "plan.yaml", "generator")
    # A remote replica among loopback ones: real texts are redacted for the whole set.
    from synthmix.llm.redaction import backend_is_remote

    assert not backend_is_remote(_spec(["http://127.0.0.1:1", "http://localhost:2"]).build())
    assert backend_is_remote(_spec(["http://127.0.0.1:1", "https://gpu.example.org"]).build())


def test_generation_over_replicas_reaches_its_counts_when_one_stops(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    """`generate_until_unique` over two replicas serving one model, one stopped mid-run: the
    exact counts, every call answered once, the faults in the run's report."""
    import synthmix
    from llm_server import cedr_answerer
    from synthmix.cards.card import load_card
    from synthmix.generation.generate import GenerationConfig, generate_until_unique, run_summary

    card = load_card(Path(synthmix.__file__).parent / "demo_data/cedr_emotions/card.yaml")
    answer = cedr_answerer(cedr_test, names={c.shown_name: c.name for c in card.classes})
    paid: list[str] = []
    with serve(answer, delay_s=0.01) as first, serve(answer, delay_s=0.01) as second:

        def counted(server: ScriptedServer, stop_after: int | None = None) -> None:
            def reply(body: dict[str, Any]) -> str:
                if stop_after is not None and second.count == stop_after:
                    threading.Thread(target=server.stop).start()
                paid.append(prompt_text(body) + f"#{body.get('seed')}")
                return answer(body)

            server.answer = reply

        counted(first)
        counted(second, stop_after=2)
        spec = _spec([first.url, second.url], max_concurrency=2, cooldown_s=60)
        backend = spec.open(AnswerCache(tmp_path / "answers.sqlite"))
        classes = ["anger", "joy"]
        config = GenerationConfig(strategy="fskw", per_class=20, k=4, seed=3, classes=classes)
        result = asyncio.run(
            generate_until_unique(backend, "fskw", card, cedr_train, config, progress=False)
        )
    assert result.data.class_counts() == dict.fromkeys(classes, 20)
    calls = result.totals()["calls"]
    assert len(paid) == calls == len(set(paid))  # each call answered once, by one replica
    summary = run_summary(result)["faults"]
    assert summary["failed_calls"] == 0 and summary["answers"] == calls
    assert summary["faults"] == {"connection": summary["retries"]} and summary["retries"] >= 1
    stopped = backend.backend.replica_stats()[1]
    assert stopped["taken_out"] == 1 and stopped["answers"] >= 2
