from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_server import Reply, ScriptedServer, completion_body, serve
from synthmix.llm import (
    AnswerCache,
    CachedBackend,
    CompletionRequest,
    CompletionResult,
    OpenAICompatibleBackend,
    cache_key,
)

KEY = "sk-test-SECRET-cache-9876543210"


def _answer(body: dict) -> str:
    return "1. Какой чудесный день!\n2. Мы победили!"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve(_answer) as running:
        yield running


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHMIX_TEST_KEY", KEY)


def _backend(server: ScriptedServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        server.url, "test-model", api_key_env="SYNTHMIX_TEST_KEY", backoff_base_s=0.01
    )


def _request(sample_index: int = 0, text: str = "Напиши радостный текст.") -> CompletionRequest:
    messages = [{"role": "user", "content": text}]
    return CompletionRequest(messages=messages, temperature=1.0, sample_index=sample_index)


def test_sample_index_is_part_of_the_key(server: ScriptedServer, tmp_path: Path) -> None:
    cached = CachedBackend(_backend(server), AnswerCache(tmp_path / "cache.db"))

    async def run() -> list[bool]:
        flags = []
        for index in (0, 1, 2, 2, 0, 1):
            flags.append((await cached.complete(_request(index))).cached)
        return flags

    assert asyncio.run(run()) == [False, False, False, True, True, True]
    assert server.count == 3
    assert (cached.stats.hits, cached.stats.misses, cached.stats.requests) == (3, 3, 3)


def test_key_covers_model_endpoint_prompt_and_sampling() -> None:
    identity = {"kind": "openai-http", "base_url": "http://127.0.0.1:1", "model": "a"}
    base = cache_key(identity, _request())
    assert base == cache_key(dict(identity), _request())
    assert base != cache_key({**identity, "model": "b"}, _request())
    assert base != cache_key({**identity, "base_url": "http://127.0.0.1:2"}, _request())
    assert base != cache_key(identity, _request(text="Другой текст"))
    other = CompletionRequest(messages=_request().messages, temperature=0.5)
    assert base != cache_key(identity, other)


def test_answers_survive_reopening(server: ScriptedServer, tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    first = CachedBackend(_backend(server), AnswerCache(path))
    result = asyncio.run(first.complete(_request()))
    second = CachedBackend(_backend(server), AnswerCache(path))  # first still open: WAL
    again = asyncio.run(second.complete(_request()))
    assert again.cached and again.texts == result.texts
    assert (again.prompt_tokens, again.completion_tokens) == (
        result.prompt_tokens,
        result.completion_tokens,
    )
    assert server.count == 1
    assert len(second.cache) == 1


def test_answer_is_stored_before_the_caller_uses_it(server: ScriptedServer, tmp_path: Path) -> None:
    cache = AnswerCache(tmp_path / "cache.db")
    cached = CachedBackend(_backend(server), cache)

    async def crash_while_parsing() -> None:
        await cached.complete(_request())
        raise RuntimeError("parser bug")

    with pytest.raises(RuntimeError):
        asyncio.run(crash_while_parsing())
    assert cached.key(_request()) in AnswerCache(tmp_path / "cache.db")


def test_concurrent_identical_misses_share_one_request(tmp_path: Path) -> None:
    with serve(_answer, delay_s=0.2) as server:
        cached = CachedBackend(_backend(server), AnswerCache(tmp_path / "cache.db"))

        async def run() -> None:
            await asyncio.gather(*(cached.complete(_request()) for _ in range(4)))

        asyncio.run(run())
        assert server.count == 1


def test_api_key_is_nowhere_in_cache_files(server: ScriptedServer, tmp_path: Path) -> None:
    # Even an answer that echoes the key (a misbehaving proxy) is stored without it.
    def echo(body: dict) -> dict:
        answer = completion_body(body, "1. Текст")
        answer["system_fingerprint"] = f"key={KEY}"
        return answer

    server.script = [Reply(body=echo({"messages": _request().messages}))]
    cache = AnswerCache(tmp_path / "cache.db")
    backend = _backend(server)
    cached = CachedBackend(backend, cache)
    asyncio.run(cached.complete(_request(0)))
    asyncio.run(cached.complete(_request(1)))
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert server.auth_headers[0] == f"Bearer {KEY}"  # the key was used...
    assert KEY.encode() not in stored  # ...but not written down
    assert KEY not in repr(cached) and KEY not in repr(backend)


def test_cache_keys_of_requests_without_new_fields_never_change() -> None:
    # Digests computed by the code before `logprobs` existed: a new optional request field
    # must not re-key (and so re-pay) every answer already in users' caches.
    identity = {"kind": "openai-http", "base_url": "http://127.0.0.1:1", "model": "m"}
    chat = CompletionRequest(
        messages=[{"role": "user", "content": "Напиши радостный текст."}],
        temperature=0.7,
        max_tokens=64,
        stop=["\n\n"],
        seed=3,
        sample_index=2,
    )
    plain = CompletionRequest(prompt="Текст: ура\nМетка:", temperature=0.0, max_tokens=8, n=2)
    assert cache_key(identity, chat) == (
        "7409ff684b3f684d261c3c0a31d68f1f8a6681a76d416381269ee2d8c90b1bd0"
    )
    assert cache_key(identity, plain) == (
        "b3d3e5e1245a5e8300c494fc834407e9cbeaadb82fc83d5d5955194fcab10da1"
    )
    asking = CompletionRequest(prompt=plain.prompt, temperature=0.0, max_tokens=8, n=2, logprobs=5)
    assert cache_key(identity, asking) != cache_key(identity, plain)
    assert asking.sampling()["logprobs"] == 5 and "logprobs" not in plain.sampling()


def _alternatives(body: dict, text: str) -> list[dict[str, float]]:
    return [{"Ура": -0.1, "Мы": -2.5}, {"!": -0.3, ",": -1.7}]


def test_finish_reasons_and_logprobs_survive_the_cache(tmp_path: Path) -> None:
    with serve(_answer, logprobs=_alternatives) as server:
        server.script = [
            Reply(body=completion_body({"messages": []}, "Ура, мы", finish_reason="length"))
        ]
        cache = AnswerCache(tmp_path / "cache.db")
        cached = CachedBackend(_backend(server), cache)
        request = CompletionRequest(messages=_request().messages, max_tokens=3, logprobs=2)
        cut = asyncio.run(cached.complete(_request(0)))
        fresh = asyncio.run(cached.complete(request))
        reopened = CachedBackend(_backend(server), AnswerCache(tmp_path / "cache.db"))
        again_cut = asyncio.run(reopened.complete(_request(0)))
        again = asyncio.run(reopened.complete(request))
        assert server.count == 2
    assert cut.finish_reasons == again_cut.finish_reasons == ["length"]
    assert fresh.finish_reasons == again.finish_reasons == ["stop"]
    assert fresh.logprobs == again.logprobs == [_alternatives({}, "")]
    assert again.cached and cut.logprobs is None and again_cut.logprobs is None


def test_rows_without_finish_reasons_or_logprobs_still_load(tmp_path: Path) -> None:
    # A row as the transformers backend wrote it before finish reasons existed: its raw
    # answer has no `choices`. It loads with unknown reasons, not an error.
    cache = AnswerCache(tmp_path / "cache.db")
    old = CompletionResult(texts=["a", "b"], raw={"model": "tiny", "texts": ["a", "b"]})
    cache.put("old-key", old)
    restored = AnswerCache(tmp_path / "cache.db").get("old-key")
    assert restored is not None
    result = restored.to_result()
    assert result.texts == ["a", "b"] and result.finish_reasons == [None, None]
    assert result.logprobs is None and result.cached


_WORKER = """
import asyncio, sys
from synthmix.llm import AnswerCache, CachedBackend, CompletionRequest, OpenAICompatibleBackend

async def main(url: str, path: str) -> None:
    backend = OpenAICompatibleBackend(url, "test-model", api_key_env=None)
    cached = CachedBackend(backend, AnswerCache(path))
    requests = [
        CompletionRequest(messages=[{"role": "user", "content": f"текст {i}"}], temperature=1.0)
        for i in range(12)
    ]
    await asyncio.gather(*(cached.complete(r) for r in requests))
    print(cached.stats.requests, cached.stats.waited, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_two_processes_sharing_a_cache_pay_once_per_request(tmp_path: Path) -> None:
    """Each request is claimed in the cache before it is sent; the other process waits for
    that answer instead of paying for it again."""
    import subprocess
    import sys

    with serve(_answer, delay_s=0.3) as slow:
        path = tmp_path / "shared.sqlite"
        AnswerCache(path).close()  # both workers find the tables ready
        command = [sys.executable, "-c", _WORKER, slow.url, str(path)]
        workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in "ab"]
        outputs = [w.communicate(timeout=120)[0].split() for w in workers]
        assert all(w.returncode == 0 for w in workers)
        paid = sum(int(requests) for requests, _ in outputs)
        waited = sum(int(w) for _, w in outputs)
        assert slow.count == 12 and paid == 12 and waited > 0


def test_the_claim_of_a_dead_process_is_taken_over(tmp_path: Path, server: ScriptedServer) -> None:
    cache = AnswerCache(tmp_path / "cache.db")
    cached = CachedBackend(_backend(server), cache)
    key = cached.key(_request())
    # A claim left by a process that died (kill -9) before it could answer or release it.
    cache._db.execute(
        "INSERT INTO claims VALUES (?, ?, ?, ?)",
        (key, __import__("socket").gethostname(), 2**22 + 1, 0.0),
    )
    result = asyncio.run(cached.complete(_request()))
    assert result.texts and server.count == 1
