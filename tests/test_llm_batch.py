"""Batch mode against a loopback server speaking the Batch API: answers cached before use,
nothing submitted twice (counted server-side), failed and expired lines reported, a kill between
submit and download resumed, output identical to live mode."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from batch_server import serve_batches
from llm_server import serve
from synthmix.llm import AnswerCache, CachedBackend, CompletionRequest, OpenAICompatibleBackend
from synthmix.llm.batch import BatchClient


def _answer(body: dict) -> str:
    return "ответ на: " + body["messages"][-1]["content"]


def _requests(n: int = 6) -> list[CompletionRequest]:
    return [
        CompletionRequest(messages=[{"role": "user", "content": f"текст {i}"}], temperature=1.0)
        for i in range(n)
    ]


def _client(url: str, cache: AnswerCache) -> BatchClient:
    backend = OpenAICompatibleBackend(
        url, "m", api_key_env=None, price_per_1k_prompt=1.0, backoff_base_s=0.01
    )
    return BatchClient(backend, cache, poll_s=0.05)


def test_batch_answers_equal_live_ones_and_are_cached(tmp_path: Path) -> None:
    with serve_batches(_answer) as server:
        client = _client(server.url, AnswerCache(tmp_path / "batch.sqlite"))
        outcome = asyncio.run(client.complete_many(_requests()))
        assert not outcome.errors and server.request_lines == 6
        again = asyncio.run(client.complete_many(_requests()))  # all from the cache
        assert server.request_lines == 6
        assert [r.texts for r in again.results if r] == [r.texts for r in outcome.results if r]
        assert all(r and r.cached for r in again.results)
        assert not any(r and r.cached for r in outcome.results)
    with serve(_answer) as live:
        cached = CachedBackend(
            OpenAICompatibleBackend(live.url, "m", api_key_env=None),
            AnswerCache(tmp_path / "live.sqlite"),
        )
        live_texts = [asyncio.run(cached.complete(r)).texts for r in _requests()]
    assert [r.texts for r in outcome.results if r is not None] == live_texts
    # Batch prices: half the live cost of the same tokens.
    first = outcome.results[0]
    assert first is not None and first.cost == first.prompt_tokens / 1000 * 0.5
    assert client.stats.to_dict()["batch_ids"] and client.stats.answered == 6


def test_failed_and_expired_lines_are_reported_for_a_retry(tmp_path: Path) -> None:
    with serve_batches(_answer) as server:
        client = _client(server.url, AnswerCache(tmp_path / "c.sqlite"))
        failing = client.key(_requests()[2])
        server.fail_ids = {failing}
        outcome = asyncio.run(client.complete_many(_requests()))
        assert outcome.results[2] is None and outcome.errors == {2: "scripted failure"}
        server.fail_ids, server.expire = set(), True
        retry = asyncio.run(client.complete_many(_requests(8)))
        # Only the never-answered requests went out again (index 2, 6 and 7), and half of
        # them expired unanswered.
        assert server.request_lines == 6 + 3
        assert sum(r is None for r in retry.results) == len(retry.errors) == 1


_KILLED_AFTER_SUBMIT = """
import asyncio, os, sys
sys.path.insert(0, sys.argv[3])
from test_llm_batch import _client, _requests
from synthmix.llm import AnswerCache
from synthmix.llm.batch import BatchClient

async def die(self, token, batch_id, requests=None):
    os._exit(9)  # killed between submitting and downloading

BatchClient._collect = die
asyncio.run(_client(sys.argv[1], AnswerCache(sys.argv[2])).complete_many(_requests()))
"""


def test_a_run_killed_after_submitting_resumes_that_batch(tmp_path: Path) -> None:
    with serve_batches(_answer) as server:
        path = tmp_path / "c.sqlite"
        tests = str(Path(__file__).parent)
        done = subprocess.run(
            [sys.executable, "-c", _KILLED_AFTER_SUBMIT, server.url, str(path), tests],
            timeout=60,
        )
        assert done.returncode == 9 and server.request_lines == 6 and len(server.batches) == 1
        client = _client(server.url, AnswerCache(path))
        outcome = asyncio.run(client.complete_many(_requests()))
        assert not outcome.errors and client.stats.resumed == 1
        assert server.request_lines == 6 and len(server.batches) == 1  # nothing resubmitted


def test_batch_api_retries_are_counted_in_the_backend_stats(tmp_path: Path) -> None:
    with serve_batches(_answer) as server:
        client = _client(server.url, AnswerCache(tmp_path / "c.sqlite"))
        server.busy = 2  # the upload and its first retry meet a 503
        outcome = asyncio.run(client.complete_many(_requests(2)))
        assert not outcome.errors and server.submissions == 1
        faults = client.backend.stats.to_dict()
        assert faults["retries"] == 2 and faults["faults"] == {"HTTP 503": 2}
