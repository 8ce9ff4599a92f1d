"""Tokens/s of `synthmix generate` against a real llama.cpp server with several parallel slots
(continuous batching), side by side with a bare load generator that sends the same requests
to the same server at the same concurrency (issue 15's target: synthmix at least 95% of it).

The server is llama.cpp's own `llama-server` (not `python -m llama_cpp.server`, which answers
one request at a time) with the bundled Gemma-3-270M, started with `--parallel K`. synthmix
runs `completion-few-shot` on the shipped CEDR card with `concurrency=K` and a fresh answer
cache each time, with spare calls (the default for a server) and without them ("bounded",
the engine before them); the load generator replays the request bodies of a warm-up run
without spare calls (the calls the output needs) with K workers that each send the next
body as soon as their last one is answered. Completion tokens come from the server's usage
fields. The three alternate (`--repeat` times each, the order reversed every round) and the
medians count, so a noisy machine loads them alike. Besides the tokens/s ratio, the wall
time of the bare replay over synthmix's says how close synthmix comes to a client that makes
only the needed calls. Printed as JSON lines.

Measured (2 cores, 60 per class, 2 rounds): tokens/s ratio 1.00 (rounds 1.016, 0.983), busy
slots 3.80 against the bare client's 3.86, 9 unused calls of about 260; without spare calls
0.985 at 3.23 busy slots (on two cores, tokens/s hardly follows occupancy).

Run: `python benchmarks/bench_throughput.py [--server PATH] [--parallel 4] [--per-class 60]`
(about 15 minutes on 2 cores: the warm-up and two rounds of three clients, 260 calls each;
small targets make the run's tail, where fewer calls remain than slots, a large share);
the binary comes from `--server`, `$LLAMA_SERVER` or `llama-server` on PATH (built from
llama.cpp: `cmake -B build && cmake --build build --target llama-server`). Without one the
benchmark prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

import synthmix
from synthmix.cards.card import load_card
from synthmix.data.labeled import load_labeled
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.llm import AnswerCache, CachedBackend, CompletionRequest, OpenAICompatibleBackend
from synthmix.llm.backend import CompletionResult

DEMO = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions"
TIMEOUT_S = 900.0  # one request may wait long on two busy cores
# Requests the running client has sent and not yet had answered (sampled beside `/slots`:
# a client that keeps K requests out while the server shows fewer busy slots loses the
# difference on the server's side, not its own).
IN_FLIGHT = [0]


def server_binary(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("LLAMA_SERVER"), shutil.which("llama-server")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(binary: str, model: str, parallel: int, threads: int) -> Iterator[str]:
    port = free_port()
    command = [
        binary, "-m", model, "--host", "127.0.0.1", "--port", str(port),
        "--parallel", str(parallel), "--ctx-size", str(2048 * parallel),
        "--threads", str(threads), "--threads-http", str(parallel + 2),
        "--no-repack",  # AMX/repacked weights crash on some Xeons (ggml-org/llama.cpp#20824)
        "--no-webui", "--metrics",
    ]  # fmt: skip
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                log.seek(0)
                tail = log.read()[-2000:]
                raise SystemExit(f"llama-server exited ({process.returncode}):\n{tail}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("llama-server did not become healthy in 300 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        os.unlink(log.name)


class Timed(OpenAICompatibleBackend):
    """Notes when its first call went out and its last answer came back: the span in which
    the client had the server working, without the run's set-up (filters, leak index)."""

    first_s: float | None = None
    last_s: float = 0.0

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        if self.first_s is None:
            self.first_s = time.perf_counter()
        IN_FLIGHT[0] += 1
        try:
            return await super().complete(request)
        finally:
            IN_FLIGHT[0] -= 1
            self.last_s = time.perf_counter()


class Recording(Timed):
    """Records each body it sends (the warm-up run only)."""

    bodies: list[dict[str, Any]]

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        body = super().payload(request)
        self.bodies.append(body)
        return body


async def synthmix_run(
    url: str, args: argparse.Namespace, folder: Path, record: bool = False, spare: bool = True
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    kind = Recording if record else Timed
    http = kind(
        url, "gemma", api_key_env=None, chat=False, max_concurrency=args.parallel,
        timeout_s=TIMEOUT_S,
    )  # fmt: skip
    if isinstance(http, Recording):
        http.bodies = []
    folder.mkdir(parents=True)
    backend = CachedBackend(http, AnswerCache(folder / "cache.sqlite"))  # fresh: every call paid
    card = load_card(DEMO / "card.yaml")
    config = GenerationConfig(
        strategy="completion-few-shot", per_class=args.per_class, temperature=1.0, seed=0,
        k=4, max_tokens=args.max_tokens, concurrency=args.parallel,
        classes=card.class_names[: args.classes], dedup=DedupConfig(embedding=False),
        spare_calls=spare,
    )  # fmt: skip
    real = load_labeled(DEMO / "train.csv")
    started, cpu = time.perf_counter(), time.process_time()
    result = await generate_until_unique(
        backend, config.strategy, card, real, config, progress=False
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await http.aclose()
    totals = result.totals()
    figures = {
        "calls": totals["calls"],
        "unused_calls": totals["unused_calls"],
        "completion_tokens": totals["completion_tokens"],
        "wall_s": seconds,
        "client_cpu_s": cpu,
        "tokens_per_s": totals["completion_tokens"] / seconds,
        # From the first call to the last answer (the run's set-up left out).
        "calls_span_s": http.last_s - (http.first_s or 0.0),
    }
    figures["tokens_per_s_in_calls"] = totals["completion_tokens"] / figures["calls_span_s"]
    return figures, http.bodies if isinstance(http, Recording) else []


async def bare_run(url: str, bodies: list[dict[str, Any]], parallel: int) -> dict[str, float]:
    """K workers over one queue of bodies: the most a client at concurrency K can get."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    tokens = 0
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:

        async def worker() -> None:
            nonlocal tokens
            while not queue.empty():
                body = queue.get_nowait()
                IN_FLIGHT[0] += 1
                try:
                    response = await client.post(f"{url}/v1/completions", json=body)
                finally:
                    IN_FLIGHT[0] -= 1
                response.raise_for_status()
                tokens += int(response.json()["usage"]["completion_tokens"])

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "calls": len(bodies),
        "completion_tokens": tokens,
        "wall_s": seconds,
        "client_cpu_s": cpu,
        "tokens_per_s": tokens / seconds,
    }


def prompt_counters(url: str) -> dict[str, float]:
    """Prompt tokens the server evaluated and those it reused from a slot's cache (the
    order of requests decides how much of each prompt's prefix a slot already holds)."""
    names = {
        "llamacpp:prompt_tokens_total": "prompt_tokens_evaluated",
        "llamacpp:prompt_tokens_cached_total": "prompt_tokens_cached",
    }
    found = dict.fromkeys(names.values(), 0.0)
    for line in httpx.get(f"{url}/metrics", timeout=5.0).text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[names[name]] = float(value)
    return found


@contextmanager
def busy_slots(
    url: str, parallel: int, into: dict[str, float], every_s: float = 0.05
) -> Iterator[None]:
    """Samples the server's `/slots` while the block runs: the mean number of slots
    processing a request, and the share of samples with every slot busy. That is what a
    client decides (how full it keeps the server); tokens/s also carries the noise of
    answers that differ from run to run."""
    samples: list[int] = []
    sent: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=5.0) as client:
            while not stop.is_set():
                slots = client.get(f"{url}/slots").json()
                samples.append(sum(1 for slot in slots if slot.get("is_processing")))
                sent.append(IN_FLIGHT[0])
                stop.wait(every_s)

    before = prompt_counters(url)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        after = prompt_counters(url)
        for key, value in after.items():
            into[key] = value - before[key]
        into["busy_slots"] = statistics.fmean(samples) if samples else 0.0
        into["client_in_flight"] = statistics.fmean(sent) if sent else 0.0
        into["all_busy_share"] = (
            sum(1 for n in samples if n == parallel) / len(samples) if samples else 0.0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="llama-server binary (default: $LLAMA_SERVER, PATH)")
    parser.add_argument("--parallel", type=int, default=4, help="server slots = concurrency")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--classes", type=int, default=3, help="the card's first N classes")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; medians count")
    args = parser.parse_args()
    binary = server_binary(args.server)
    if binary is None:
        print("skip: no llama-server binary (pass --server, set $LLAMA_SERVER or put it on PATH)")
        return
    try:
        from synthmix.llm.llamacpp import bundled_model_path

        model = bundled_model_path()
    except Exception as exc:  # no bundled model: nothing to serve
        print(f"skip: the bundled Gemma GGUF is not available ({exc})")
        return
    clients = ("bare", "synthmix", "bounded")
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    with (
        tempfile.TemporaryDirectory() as tmp,
        llama_server(binary, model, args.parallel, args.threads) as url,
    ):
        # The bodies of a run without spare calls: the calls its output needs, plus those in
        # flight when each class reached its target. The bare client replays these.
        warm_up = Path(tmp) / "warm-up"
        _, bodies = asyncio.run(synthmix_run(url, args, warm_up, record=True, spare=False))
        print(json.dumps({"server": binary, "parallel": args.parallel, "requests": len(bodies)}))
        for round_ in range(args.repeat):
            order = clients if round_ % 2 == 0 else clients[::-1]
            for name in order:
                occupancy: dict[str, float] = {}
                with busy_slots(url, args.parallel, occupancy):
                    if name == "bare":
                        got = asyncio.run(bare_run(url, bodies, args.parallel))
                    else:
                        folder = Path(tmp) / f"{name}-{round_}"
                        spare = name == "synthmix"
                        got, _ = asyncio.run(synthmix_run(url, args, folder, spare=spare))
                got.update(occupancy)
                figures[name].append(got)
                print(json.dumps({"client": name, **{k: round(v, 2) for k, v in got.items()}}))
                sys.stdout.flush()

    def median(name: str, key: str) -> float:
        return statistics.median(f[key] for f in figures[name])

    def per_round(name: str) -> list[float]:
        return [
            round(s["tokens_per_s"] / b["tokens_per_s"], 3)
            for s, b in zip(figures[name], figures["bare"], strict=True)
        ]

    bare_tps = median("bare", "tokens_per_s")
    print(
        json.dumps(
            {
                "bare_tokens_per_s": round(bare_tps, 2),
                "synthmix_tokens_per_s": round(median("synthmix", "tokens_per_s"), 2),
                # The figure: tokens/s at the same concurrency.
                "ratio": round(median("synthmix", "tokens_per_s") / bare_tps, 3),
                "ratio_per_round": per_round("synthmix"),
                # Counting only the span from synthmix's first call to its last answer.
                "ratio_in_calls": round(median("synthmix", "tokens_per_s_in_calls") / bare_tps, 3),
                # The same without spare calls (the engine before them).
                "ratio_without_spare_calls": round(median("bounded", "tokens_per_s") / bare_tps, 3),
                "ratio_without_spare_calls_per_round": per_round("bounded"),
                # Time to the same output: the bare client only replays the calls of a run
                # without spare calls, synthmix's spare calls are extra work.
                "wall_ratio_bare_over_synthmix": round(
                    median("bare", "wall_s") / median("synthmix", "wall_s"), 3
                ),
                "unused_calls_median": median("synthmix", "unused_calls"),
                # How full each client kept the server (mean busy slots of `--parallel`).
                "busy_slots": {name: round(median(name, "busy_slots"), 2) for name in clients},
                # Requests each client had out at the same instants.
                "client_in_flight": {
                    name: round(median(name, "client_in_flight"), 2) for name in clients
                },
                "all_busy_share": {
                    name: round(median(name, "all_busy_share"), 2) for name in clients
                },
                # Prompt tokens evaluated per call (the rest came from a slot's cache).
                "prompt_tokens_evaluated_per_call": {
                    name: round(
                        statistics.median(
                            f["prompt_tokens_evaluated"] / f["calls"] for f in figures[name]
                        ),
                        1,
                    )
                    for name in clients
                },
                "target": 0.95,
            }
        )
    )


if __name__ == "__main__":
    main()
