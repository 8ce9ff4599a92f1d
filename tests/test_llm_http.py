from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from llm_server import Reply, ScriptedServer, completion_body, serve
from synthmix.core.errors import ConfigError, SynthmixError
from synthmix.llm import BackendError, CompletionRequest, OpenAICompatibleBackend, cache_key
from synthmix.llm.openai_http import TokenBucket

KEY = "sk-test-SECRET-0123456789abcdef"


def _fixed_answer(body: dict) -> str:
    return "1. Ура, наконец-то отпуск!\n2. Как же я рада тебя видеть!"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serve(_fixed_answer) as running:
        yield running


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHMIX_TEST_KEY", KEY)


def _backend(server: ScriptedServer, **kwargs: object) -> OpenAICompatibleBackend:
    settings: dict[str, object] = {
        "api_key_env": "SYNTHMIX_TEST_KEY",
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "timeout_s": 5.0,
    }
    settings.update(kwargs)
    return OpenAICompatibleBackend(server.url, "test-model", **settings)  # type: ignore[arg-type]


def _chat(text: str = "Напиши 2 радостных текста.") -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": text}], temperature=0.7)


def test_chat_answer_usage_cost_and_bearer_key(server: ScriptedServer) -> None:
    backend = _backend(server, price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
    result = asyncio.run(backend.complete(_chat()))
    assert result.texts == [_fixed_answer({})]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    expected = (result.prompt_tokens * 1.0 + result.completion_tokens * 2.0) / 1000
    assert result.cost == pytest.approx(expected)
    assert server.paths == ["/v1/chat/completions"]
    assert server.auth_headers == [f"Bearer {KEY}"]
    assert server.bodies[0]["model"] == "test-model"
    assert server.bodies[0]["temperature"] == 0.7
    assert "sample_index" not in server.bodies[0]


def test_completion_endpoint_for_base_models(server: ScriptedServer) -> None:
    backend = _backend(server, chat=False)
    request = CompletionRequest(prompt="Класс: радость\nТекст:", stop=["\n\n"], max_tokens=50)
    result = asyncio.run(backend.complete(request))
    assert result.texts == [_fixed_answer({})]
    assert server.paths == ["/v1/completions"]
    assert server.bodies[0]["prompt"] == "Класс: радость\nТекст:"
    assert server.bodies[0]["stop"] == ["\n\n"]


def test_transient_errors_are_retried_until_success(server: ScriptedServer) -> None:
    server.script = [
        Reply(status=500, body={"error": {"message": "internal"}}),
        Reply(status=429, body={"error": {"message": "slow down"}}),
        Reply(status=200, body="{not json"),
        Reply(status=200, body={"unexpected": True}),
        Reply(status=502, body="<html>bad gateway</html>"),
    ]
    backend = _backend(server)
    result = asyncio.run(backend.complete(_chat()))
    assert result.texts == [_fixed_answer({})]
    assert server.count == 6
    assert backend.stats.retries == 5
    # Every fault is counted by cause, for the command's summary and the reports.
    stats = backend.stats.to_dict()
    assert stats["faults"] == {"HTTP 429": 1, "HTTP 500": 1, "HTTP 502": 1, "malformed body": 2}
    assert stats["requests"] == 6 and stats["answers"] == 1 and stats["failed_calls"] == 0
    assert stats["retry_wait_s"] > 0
    line = backend.stats.summary()
    assert "6 requests for 1 answers" in line and "5 retries (HTTP 429 x1" in line


def test_a_call_that_gives_up_is_counted(server: ScriptedServer) -> None:
    server.script = [Reply(status=503)] * 3
    backend = _backend(server, max_retries=2)
    with pytest.raises(BackendError):
        asyncio.run(backend.complete(_chat()))
    assert backend.stats.to_dict()["failed_calls"] == 1
    assert "1 calls gave up" in backend.stats.summary()


@pytest.mark.parametrize("url", ["not a url", "ftp://host/v1", "http://", "http://host:99999"])
def test_a_bad_base_url_fails_before_any_call(url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleBackend(url, "m")


def test_a_key_over_plain_http_to_another_host_is_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remote = OpenAICompatibleBackend(
        "http://10.20.30.40:8000", "m", api_key_env="SYNTHMIX_TEST_KEY"
    )
    local = OpenAICompatibleBackend("http://127.0.0.1:8000", "m", api_key_env="SYNTHMIX_TEST_KEY")
    secure = OpenAICompatibleBackend("https://10.20.30.40", "m", api_key_env="SYNTHMIX_TEST_KEY")
    with caplog.at_level(logging.WARNING, logger="synthmix"):
        for backend in (remote, remote, local, secure):
            backend.headers()
    warnings = [r.getMessage() for r in caplog.records if "plain http://" in r.getMessage()]
    assert len(warnings) == 1 and "10.20.30.40" in warnings[0]
    assert KEY not in warnings[0]


def test_retry_after_is_honoured(server: ScriptedServer) -> None:
    server.script = [Reply(status=429, headers={"Retry-After": "1"})]
    backend = _backend(server)
    started = time.monotonic()
    asyncio.run(backend.complete(_chat()))
    assert time.monotonic() - started >= 1.0
    assert server.count == 2


def test_timeout_is_retried(server: ScriptedServer) -> None:
    server.script = [Reply(delay_s=3.0)]
    backend = _backend(server, timeout_s=0.3)
    started = time.monotonic()
    result = asyncio.run(backend.complete(_chat()))
    assert result.texts == [_fixed_answer({})]
    assert time.monotonic() - started < 2.5  # did not wait for the hung reply
    assert server.count == 2


def test_401_is_one_line_error_without_the_key(server: ScriptedServer) -> None:
    # Real servers echo (part of) a rejected key; it must not reach the message.
    message = f"Incorrect API key provided: {KEY}.\nYou can find your API key at ..."
    server.script = [Reply(status=401, body={"error": {"message": message}})]
    backend = _backend(server)
    with pytest.raises(BackendError) as caught:
        asyncio.run(backend.complete(_chat()))
    text = str(caught.value)
    assert isinstance(caught.value, SynthmixError)
    assert KEY not in text and "\n" not in text
    assert "401" in text and "test-model" in text and server.url in text
    assert "Incorrect API key" in text
    assert server.count == 1  # not retried
    assert KEY not in repr(backend)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_are_not_retried(server: ScriptedServer, status: int) -> None:
    server.script = [Reply(status=status, body={"error": {"message": "x" * 500}})]
    with pytest.raises(BackendError, match=str(status)) as caught:
        asyncio.run(_backend(server).complete(_chat()))
    assert len(str(caught.value)) < 400  # server message truncated
    assert server.count == 1


def test_gives_up_after_max_retries(server: ScriptedServer) -> None:
    server.script = [Reply(status=503) for _ in range(3)]
    backend = _backend(server, max_retries=2)
    with pytest.raises(BackendError, match="gave up after 3 attempts; last error: HTTP 503"):
        asyncio.run(backend.complete(_chat()))
    assert server.count == 3


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAICompatibleBackend(
        f"http://127.0.0.1:{port}/v1",
        "m",
        api_key_env="SYNTHMIX_TEST_KEY",
        max_retries=2,
        backoff_base_s=0.01,
    )
    with pytest.raises(BackendError, match="connection error") as caught:
        asyncio.run(backend.complete(_chat()))
    assert KEY not in str(caught.value)
    assert backend.stats.requests == 3


def test_concurrency_limit_is_respected() -> None:
    with serve(_fixed_answer, delay_s=0.15) as server:
        backend = _backend(server, max_concurrency=3)

        async def many() -> None:
            await asyncio.gather(*(backend.complete(_chat(f"текст {i}")) for i in range(12)))

        asyncio.run(many())
        assert server.count == 12
        assert server.max_in_flight == 3


def test_backend_survives_several_event_loops(server: ScriptedServer) -> None:
    backend = _backend(server)
    for _ in range(2):
        asyncio.run(backend.complete(_chat()))
    assert server.count == 2


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(per_minute=600, capacity=1)  # 10 per second, no burst

    async def take(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()

    started = time.monotonic()
    asyncio.run(take(6))
    assert time.monotonic() - started >= 0.45  # 5 waits of 0.1 s after the first


def _alternatives(body: dict, text: str) -> list[dict[str, float]]:
    return [{"Ура": -0.2, "Как": -1.9, "1": -3.0}, {",": -0.1, "!": -2.4}]


@pytest.mark.parametrize("chat", [True, False])
def test_logprobs_are_asked_for_and_parsed(chat: bool) -> None:
    with serve(_fixed_answer, logprobs=_alternatives) as server:
        backend = _backend(server, chat=chat)

        def request(logprobs: int | None) -> CompletionRequest:
            if chat:
                return replace(_chat(), logprobs=logprobs)
            return CompletionRequest(prompt="Текст:", logprobs=logprobs)

        asked = asyncio.run(backend.complete(request(3)))
        plain = asyncio.run(backend.complete(request(None)))
        sent, sent_plain = server.bodies
    if chat:  # the chat API's two fields for the completions API's one
        assert (sent["logprobs"], sent["top_logprobs"]) == (True, 3)
    else:
        assert sent["logprobs"] == 3 and "top_logprobs" not in sent
    assert "logprobs" not in sent_plain and "top_logprobs" not in sent_plain
    assert asked.logprobs == [_alternatives({}, "")]
    assert asked.finish_reasons == ["stop"]
    assert plain.logprobs is None and plain.finish_reasons == ["stop"]


def test_finish_reasons_per_choice(server: ScriptedServer) -> None:
    body = completion_body({"prompt": "x"}, "Ура, наконец", finish_reason="length")
    second = {**body["choices"][0], "index": 1, "finish_reason": "stop", "text": "Ура!"}
    third = {**body["choices"][0], "index": 2, "text": "Ну"}
    del third["finish_reason"]  # a server that does not say
    body["choices"] += [second, third]
    server.script = [Reply(body=body)]
    result = asyncio.run(_backend(server, chat=False).complete(CompletionRequest(prompt="x", n=3)))
    assert result.texts == ["Ура, наконец", "Ура!", "Ну"]
    assert result.finish_reasons == ["length", "stop", None]
    assert result.logprobs is None


def test_a_json_schema_is_sent_as_structured_output(server: ScriptedServer) -> None:
    schema = {
        "type": "object",
        "properties": {"texts": {"type": "array", "items": {"type": "string"}}},
        "required": ["texts"],
    }
    backend = _backend(server)
    asyncio.run(backend.complete(replace(_chat(), json_schema=schema)))
    asyncio.run(backend.complete(_chat()))
    structured, plain = server.bodies
    assert structured["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert "json_schema" not in structured and "response_format" not in plain
    assert cache_key({}, replace(_chat(), json_schema=schema)) != cache_key({}, _chat())
