"""Live generation keeps its calls in flight: a plan's generators on two real loopback
servers run concurrently (the servers see their requests overlap in time), each within its
own concurrency limit, and a run's classes overlap; both give the rows (and reports) of
running one thing at a time."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import synthmix
from llm_server import ScriptedServer, cedr_answerer, prompt_text, serve
from synthmix.cards.card import load_card
from synthmix.data.labeled import LabeledData
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.generation.plan import lane, load_plan, run_plan
from synthmix.llm import AnswerCache, CachedBackend, OpenAICompatibleBackend
from synthmix.llm.spec import BackendSpec

CARD = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"
NAMES = {c.shown_name: c.name for c in load_card(CARD).classes}


def _timed(
    answer: Callable[[dict[str, Any]], str], spans: list[tuple[float, float]], delay_s: float
) -> Callable[[dict[str, Any]], str]:
    """`answer`, recording when each request was being answered (server side)."""
    lock = threading.Lock()

    def timed(body: dict[str, Any]) -> str:
        start = time.monotonic()
        time.sleep(delay_s)
        text = answer(body)
        with lock:
            spans.append((start, time.monotonic()))
        return text

    return timed


def _generator(url: str, model: str) -> dict[str, Any]:
    return {
        "kind": "openai",
        "model": model,
        "base_url": url,
        "options": {"backoff_base_s": 0.01, "max_concurrency": 2},
    }


def _plan(folder: Path, train: Path, generators: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plan = {
        "card": str(CARD),
        "data": str(train),
        "out": str(folder / "synthetic.jsonl"),
        "cache": str(folder / "cache.sqlite"),
        "generators": generators,
        "strategies": ["few-shot", "zero-shot"],
        "temperatures": [0.7],
        "per_class": 4,
        "k": 3,
        "concurrency": 2,
        # Reports are compared call for call below; spare calls depend on timing.
        "spare_calls": False,
        "redaction": {"enabled": False},
        "dedup": {"embedding": False},
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def two_servers(
    cedr_test: LabeledData,
) -> Iterator[tuple[ScriptedServer, ScriptedServer, list[tuple[float, float]], list[Any]]]:
    first_spans: list[tuple[float, float]] = []
    second_spans: list[tuple[float, float]] = []
    answer = cedr_answerer(cedr_test, names=NAMES, pool_size=20)
    with (
        serve(_timed(answer, first_spans, 0.03)) as first,
        serve(_timed(answer, second_spans, 0.03)) as second,
    ):
        yield first, second, first_spans, second_spans


def _runs(report: Path) -> list[dict[str, Any]]:
    """Each run's report entry, less its timings."""
    runs = json.loads(report.read_text(encoding="utf-8"))["runs"]
    for run in runs:
        for entry in run["classes"].values():
            entry.pop("wall_s")
    return [{k: run[k] for k in ("generator", "strategy", "totals", "classes")} for run in runs]


def test_generators_on_two_servers_overlap_and_match_the_sequential_output(
    two_servers: Any, cedr_train: LabeledData, tmp_path: Path
) -> None:
    first, second, first_spans, second_spans = two_servers
    train = Path(cedr_train.source)
    generators = [_generator(first.url, "model-a"), _generator(second.url, "model-b")]
    together = run_plan(load_plan(_plan(tmp_path / "both", train, generators)), progress=False)

    # The two servers worked at the same time: some request of each was answered while the
    # other server was answering one.
    assert first_spans and second_spans
    overlapping = sum(1 for a0, a1 in first_spans for b0, b1 in second_spans if a0 < b1 and b0 < a1)
    assert overlapping > 0
    assert min(b0 for b0, _ in second_spans) < max(a1 for _, a1 in first_spans)
    # Each generator kept its own limit of 2 calls in flight.
    assert first.max_in_flight <= 2 and second.max_in_flight <= 2
    calls = first.count + second.count

    # The same generators one at a time, each in a plan of its own.
    alone = [
        run_plan(load_plan(_plan(tmp_path / name, train, [spec])), progress=False)
        for name, spec in (("a", generators[0]), ("b", generators[1]))
    ]
    expected = pd.concat([r.data.frame for r in alone], ignore_index=True)
    pd.testing.assert_frame_equal(together.data.frame, expected)
    assert set(together.data.frame["generator"]) == {"model-a", "model-b"}
    assert _runs(together.report) == [run for r in alone for run in _runs(r.report)]

    # Rerun of the concurrent plan: every answer from the cache, same rows, no request.
    again = run_plan(load_plan(_plan(tmp_path / "both", train, generators)), progress=False)
    pd.testing.assert_frame_equal(again.data.frame, together.data.frame)
    assert first.count + second.count == 2 * calls
    assert all(run.totals()["cached_calls"] == run.totals()["calls"] for run in again.runs)


def test_in_process_generators_share_one_lane_and_endpoints_get_their_own() -> None:
    local = BackendSpec(kind="llama-cpp")
    other_local = BackendSpec(kind="transformers", model="tiny")
    a = BackendSpec(kind="openai", model="m", base_url="http://127.0.0.1:1/v1")
    b = BackendSpec(kind="openai", model="m2", base_url="http://127.0.0.1:2/v1")
    replicas = BackendSpec(kind="openai", model="m", base_url=["http://b/v1", "http://a/v1"])
    same = BackendSpec(kind="openai", model="m", base_url=["http://a/v1", "http://b/v1"])
    assert lane(local) == lane(other_local)
    assert len({lane(local), lane(a), lane(b), lane(replicas)}) == 4
    assert lane(replicas) == lane(same)


def test_live_calls_keep_the_window_full_and_give_the_rows_of_one_call_at_a_time(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path: Path
) -> None:
    """Calls of varying duration: the run keeps 4 in flight (the next class's first calls
    start while the class before waits for its last), and its rows are those of a run that
    makes one call at a time."""
    answer = cedr_answerer(cedr_test, names=NAMES, pool_size=20)
    spans: list[tuple[float, float, str]] = []
    lock = threading.Lock()

    def slow(body: dict[str, Any]) -> str:
        text = prompt_text(body)
        start = time.monotonic()
        time.sleep(0.04 + hash_fraction(text) * 0.08)
        label = next(label for name, label in NAMES.items() if f"«{name}»" in text)
        with lock:
            spans.append((start, time.monotonic(), label))
        return answer(body)

    card = load_card(CARD)
    classes = ["anger", "fear", "joy"]

    def run(concurrency: int, folder: str) -> pd.DataFrame:
        backend = CachedBackend(
            OpenAICompatibleBackend(server.url, "m", api_key_env=None, max_concurrency=8),
            AnswerCache(tmp_path / folder / "cache.sqlite"),
        )
        config = GenerationConfig(
            strategy="few-shot", per_class=12, k=3, seed=1, concurrency=concurrency,
            classes=classes, dedup=DedupConfig(embedding=False),
        )  # fmt: skip
        result = asyncio.run(
            generate_until_unique(backend, "few-shot", card, cedr_train, config, progress=False)
        )
        assert result.data.class_counts() == dict.fromkeys(classes, 12)
        return result.data.frame

    with serve(slow) as server:
        (tmp_path / "four").mkdir()
        (tmp_path / "one").mkdir()
        overlapped = run(4, "four")
        assert server.max_in_flight == 4
        ends = {label: max(end for _, end, c in spans if c == label) for label in classes}
        starts = {label: min(start for start, _, c in spans if c == label) for label in classes}
        assert starts["fear"] < ends["anger"] and starts["joy"] < ends["fear"]
        spans.clear()
        server.max_in_flight = 0
        one_at_a_time = run(1, "one")
        assert server.max_in_flight == 1
    pd.testing.assert_frame_equal(overlapped, one_at_a_time)


def test_spare_calls_fill_the_slots_a_slow_answer_leaves_idle_and_change_no_row(
    cedr_train: LabeledData, tmp_path: Path
) -> None:
    """One class needing 2 calls at full yield, the first request answered slowly: with
    spare calls the other slots start the next calls meanwhile (paid, cached, unused); the
    rows are those of one call at a time, and a rerun asks the server for nothing."""
    lock = threading.Lock()
    arrivals: list[float] = []

    def answer(body: dict[str, Any]) -> str:
        with lock:
            arrivals.append(time.monotonic())
            first = len(arrivals) == 1
        if first:
            time.sleep(1.5)
        tag = hash_fraction(prompt_text(body))  # each call's prompt has its own examples
        return "\n".join(f"{i + 1}. Текст {tag:.6f} номер {i}" for i in range(3))

    card = load_card(CARD)

    def run(folder: str, concurrency: int, spare: bool | None) -> Any:
        backend = CachedBackend(
            OpenAICompatibleBackend(server.url, "m", api_key_env=None, max_concurrency=8),
            AnswerCache(tmp_path / folder / "cache.sqlite"),
        )
        config = GenerationConfig(
            strategy="few-shot", per_class=6, texts_per_call=3, k=3, seed=1,
            concurrency=concurrency, classes=["joy"], spare_calls=spare,
            redaction={"enabled": False}, dedup=DedupConfig(minhash=False),
        )  # fmt: skip
        return asyncio.run(
            generate_until_unique(backend, "few-shot", card, cedr_train, config, False)
        )

    for folder in ("spare", "bounded", "one"):
        (tmp_path / folder).mkdir()
    with serve(answer) as server:
        spared = run("spare", 4, None)  # an HTTP backend: spare calls on by default
        spare_requests = server.count
        report = spared.classes["joy"]
        assert report.calls == spare_requests > 2
        assert report.unused_calls == spare_requests - 2
        # The spare calls went out while the slow first answer was still being written.
        assert sum(1 for t in arrivals[1:] if t < arrivals[0] + 1.0) >= 2

        again = run("spare", 4, None)
        assert server.count == spare_requests
        pd.testing.assert_frame_equal(again.data.frame, spared.data.frame)

        arrivals.clear()
        bounded = run("bounded", 4, False)
        assert server.count - spare_requests == 2
        assert bounded.classes["joy"].unused_calls == 0

        arrivals.clear()
        one = run("one", 1, None)
    pd.testing.assert_frame_equal(spared.data.frame, one.data.frame)
    pd.testing.assert_frame_equal(bounded.data.frame, one.data.frame)
    assert len(one.data.frame) == 6


def hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by `text` (a request's duration)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 16**8


def test_a_class_not_yet_read_sizes_its_spare_calls_by_the_yield_seen_so_far(
    cedr_train: LabeledData, tmp_path: Path
) -> None:
    """Every answer repeats its one text, so a call keeps half of what it asks for. While the
    first class waits for a slow answer, the second (not read yet) prefetches what it needs
    at the yield the run has seen (4 calls) plus `concurrency` - 1 spare, not what it would
    need at full yield (2): the server's slots do not sit idle at a class's end."""
    lock = threading.Lock()
    requests: dict[str, list[float]] = {"joy": [], "sadness": []}
    slow_done: list[float] = []

    def answer(body: dict[str, Any]) -> str:
        text = prompt_text(body)
        label = next(label for name, label in NAMES.items() if f"«{name}»" in text)
        with lock:
            requests[label].append(time.monotonic())
            slow = label == "joy" and len(requests["joy"]) == 3
        if slow:
            time.sleep(1.5)
            slow_done.append(time.monotonic())
        tag = hash_fraction(text)
        return "\n".join(f"{i + 1}. Текст {label} {tag:.6f}" for i in range(2))

    card = load_card(CARD)

    def run(folder: str, spare: bool) -> Any:
        (tmp_path / folder).mkdir()
        backend = CachedBackend(
            OpenAICompatibleBackend(server.url, "m", api_key_env=None, max_concurrency=8),
            AnswerCache(tmp_path / folder / "cache.sqlite"),
        )
        config = GenerationConfig(
            strategy="few-shot", per_class=4, texts_per_call=2, k=3, seed=1, concurrency=4,
            classes=["joy", "sadness"], spare_calls=spare, redaction={"enabled": False},
            dedup=DedupConfig(minhash=False),
        )  # fmt: skip
        return asyncio.run(
            generate_until_unique(backend, "few-shot", card, cedr_train, config, False)
        )

    with serve(answer) as server:
        spared = run("spare", True)
        early = [t for t in requests["sadness"] if t < slow_done[0]]
        assert len(early) >= 6  # at full yield the bound would stop at 2 + 3
        # What it leaves unused stays within `concurrency` - 1 of its need.
        assert spared.classes["sadness"].unused_calls <= 3
        for calls in requests.values():
            calls.clear()
        slow_done.clear()
        bounded = run("bounded", False)
    pd.testing.assert_frame_equal(spared.data.frame, bounded.data.frame)
    assert len(spared.data.frame) == 8
