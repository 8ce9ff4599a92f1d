"""Throughput of `OpenAICompatibleBackend` against a loopback server with a fixed latency.

The server (keep-alive HTTP/1.1, a thread per connection, in its own process so it does
not share the client's interpreter) answers every /v1/completions request after
`--latency-ms`, and reports the latency it actually served (median, p99) in each row.
With concurrency C and latency L, N requests ideally take N*L/C seconds; the report gives
the measured wall time and its ratio to that ideal (goal <= 1.05).

The ideal is out of reach for any client: 1000 requests at concurrency 32 need 32 rounds
of the latency, not 31.25 (ratio 1.024 at best), and every round adds loopback and
thread wake-ups. The "harness floor" row measures that: a minimal HTTP/1.1 client on bare
asyncio streams (no HTTP library, no retries, no JSON parsing) against the same server,
so the backend's own overhead is its ratio over the floor's.

For comparison, the official `openai` SDK in a plain sequential loop (how scripts often
call it): `--sdk-requests` are timed and extrapolated to N; and the SDK's AsyncOpenAI
client at the same concurrency.

Run: `python benchmarks/bench_llm_http.py` (prints JSON lines). Needs `openai` for the
SDK comparison rows and `aiohttp` for its row (each skipped without it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from synthmix.llm import CompletionRequest, OpenAICompatibleBackend

# ------------------------------------------------------------------------------ server


class _Counters:
    """Server-side counts and the latency each reply actually had, for the report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.latencies_s: list[float] = []

    def stats(self) -> dict[str, float]:
        with self.lock:
            latencies = sorted(self.latencies_s)
            self.latencies_s.clear()
            counts: dict[str, float] = {
                "requests": self.requests,
                "connections": self.connections,
                "max_in_flight": self.max_in_flight,
            }
        if latencies:
            counts["latency_ms_median"] = round(1000 * latencies[len(latencies) // 2], 3)
            counts["latency_ms_p99"] = round(1000 * latencies[int(len(latencies) * 0.99)], 3)
        return counts


def _answer() -> bytes:
    reply = {
        "id": "cmpl-bench",
        "object": "text_completion",
        "model": "bench",
        "choices": [{"index": 0, "text": " Ура, отпуск!", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4},
    }
    return json.dumps(reply, ensure_ascii=False).encode("utf-8")


def _response(status: str, payload: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + payload


def _serve_connection(
    connection: socket.socket, latency_s: float, counters: _Counters, reply: bytes
) -> None:
    """Keep-alive HTTP/1.1 on one connection: every POST is answered `latency_s` after its
    request line arrived, with a prebuilt body.

    A thread per connection sleeping in `time.sleep` (nanosleep) rather than an asyncio
    server: asyncio's timers wake on epoll's millisecond ticks, rounded up, so an asyncio
    server answered after 51.2-51.5 ms (median) instead of 50 and its own lateness
    dominated the ratio. The stats endpoint reports the latency actually served."""
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = connection.makefile("rb")
    with counters.lock:
        counters.connections += 1
    while request_line := stream.readline():
        arrived = time.perf_counter()
        length = 0
        while (header := stream.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        stream.read(length)
        if request_line.startswith(b"GET /stats"):
            connection.sendall(_response("200 OK", json.dumps(counters.stats()).encode()))
            continue
        with counters.lock:
            counters.requests += 1
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        time.sleep(max(0.0, arrived + latency_s - time.perf_counter()))
        connection.sendall(reply)
        with counters.lock:
            counters.in_flight -= 1
            counters.latencies_s.append(time.perf_counter() - arrived)
    connection.close()


def _server_main(latency_s: float, ready: Connection) -> None:
    counters = _Counters()
    reply = _response("200 OK", _answer())
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    ready.send(listener.getsockname()[1])
    while True:
        connection, _ = listener.accept()
        threading.Thread(
            target=_serve_connection, args=(connection, latency_s, counters, reply), daemon=True
        ).start()


def start_server(latency_s: float) -> tuple[multiprocessing.Process, str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_server_main, args=(latency_s, child), daemon=True)
    process.start()
    port = parent.recv()
    return process, f"http://127.0.0.1:{port}"


def server_stats(url: str) -> dict[str, float]:
    import httpx

    stats: dict[str, float] = httpx.get(f"{url}/stats").json()
    return stats


# ------------------------------------------------------------------------------ client


def _prompt(i: int) -> str:
    return f"Эмоция: радость\nТекст: пример номер {i}\n\nЭмоция: радость\nТекст:"


async def run_backend(url: str, requests: int, concurrency: int) -> float:
    backend = OpenAICompatibleBackend(
        url, "bench", api_key_env=None, chat=False, max_concurrency=concurrency
    )
    calls = [
        CompletionRequest(prompt=_prompt(i), temperature=1.0, max_tokens=40)
        for i in range(requests)
    ]
    started = time.perf_counter()
    results = await asyncio.gather(*(backend.complete(c) for c in calls))
    wall = time.perf_counter() - started
    await backend.aclose()
    assert all(r.texts for r in results) and backend.stats.retries == 0
    return wall


async def run_floor(url: str, requests: int, concurrency: int) -> float:
    """The same requests over `concurrency` raw keep-alive sockets: the best any client
    could do against this server on this machine."""
    host, port = url.removeprefix("http://").split(":")
    pending = iter(range(requests))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in pending:
            body = json.dumps({"model": "bench", "prompt": _prompt(i), "max_tokens": 40})
            payload = body.encode()
            writer.write(
                b"POST /v1/completions HTTP/1.1\r\nHost: bench\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(payload), payload)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run_aiohttp(url: str, requests: int, concurrency: int) -> float:
    """aiohttp's ClientSession at the same concurrency: a leaner HTTP stack than httpx,
    measured for comparison only (synthmix does not depend on it)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            body = {"model": "bench", "prompt": _prompt(i), "max_tokens": 40}
            async with gate, session.post(f"{url}/v1/completions", json=body) as response:
                assert (await response.json())["choices"]

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return time.perf_counter() - started


def _aiohttp_row(url: str, args: argparse.Namespace, ideal: float, floor: float) -> None:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        _emit({"client": "aiohttp", "skipped": "aiohttp is not installed"})
        return
    wall = min(
        asyncio.run(run_aiohttp(url, args.requests, args.concurrency)) for _ in range(args.repeats)
    )
    _emit(
        {
            "client": "aiohttp ClientSession + semaphore",
            "requests": args.requests,
            "concurrency": args.concurrency,
            "best_wall_s": round(wall, 3),
            "ratio": round(wall / ideal, 3),
            "over_floor": round(wall / floor, 3),
            "server": server_stats(url),
        }
    )


def run_sdk_sequential(url: str, requests: int) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    started = time.perf_counter()
    for i in range(requests):
        client.completions.create(model="bench", prompt=_prompt(i), max_tokens=40)
    wall = time.perf_counter() - started
    client.close()
    return wall


async def run_sdk_async(url: str, requests: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.completions.create(model="bench", prompt=_prompt(i), max_tokens=40)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    wall = time.perf_counter() - started
    await client.close()
    return wall


def _emit(row: dict[str, Any]) -> None:
    print(json.dumps(row, ensure_ascii=False), flush=True)


def _sdk_rows(url: str, args: argparse.Namespace, latency_s: float) -> None:
    try:
        import openai  # noqa: F401
    except ImportError:
        _emit({"client": "openai-sdk", "skipped": "openai is not installed"})
        return
    measured = run_sdk_sequential(url, args.sdk_requests)
    _emit(
        {
            "client": "openai-sdk sequential",
            "measured_requests": args.sdk_requests,
            "measured_wall_s": round(measured, 3),
            "requests": args.requests,
            "wall_s_extrapolated": round(measured * args.requests / args.sdk_requests, 2),
            "ideal_s": round(args.requests * latency_s, 3),
        }
    )
    wall = asyncio.run(run_sdk_async(url, args.requests, args.concurrency))
    ideal = args.requests * latency_s / args.concurrency
    _emit(
        {
            "client": "openai-sdk AsyncOpenAI + semaphore",
            "requests": args.requests,
            "concurrency": args.concurrency,
            "wall_s": round(wall, 3),
            "ideal_s": round(ideal, 4),
            "ratio": round(wall / ideal, 3),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--sdk-requests", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="backend runs; best is reported")
    args = parser.parse_args()
    latency_s = args.latency_ms / 1000.0
    process, url = start_server(latency_s)
    try:
        asyncio.run(run_backend(url, 50, args.concurrency))  # warm-up: imports, connections
        cpu_started = time.process_time()
        walls = [
            asyncio.run(run_backend(url, args.requests, args.concurrency))
            for _ in range(args.repeats)
        ]
        cpu_ms = 1000 * (time.process_time() - cpu_started) / (args.requests * args.repeats)
        ideal = args.requests * latency_s / args.concurrency
        # What a client with no overhead at all could reach: whole rounds of the latency.
        rounds_ideal = math.ceil(args.requests / args.concurrency) * latency_s
        _emit(
            {
                "client": "synthmix OpenAICompatibleBackend",
                "requests": args.requests,
                "concurrency": args.concurrency,
                "latency_ms": args.latency_ms,
                "wall_s": [round(w, 3) for w in walls],
                "best_wall_s": round(min(walls), 3),
                "ideal_s": round(ideal, 4),
                "ratio": round(min(walls) / ideal, 3),
                "rounds_ideal_s": round(rounds_ideal, 4),
                "ratio_to_rounds": round(min(walls) / rounds_ideal, 3),
                # Client CPU per request: what limits the ratio on a busy machine.
                "client_cpu_ms_per_request": round(cpu_ms, 3),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "cpus": os.cpu_count(),
                "server": server_stats(url),
            }
        )
        server_stats(url)  # restart the served-latency sample for the floor's runs
        floor = min(
            asyncio.run(run_floor(url, args.requests, args.concurrency))
            for _ in range(args.repeats)
        )
        _emit(
            {
                "client": "harness floor (raw asyncio sockets)",
                "requests": args.requests,
                "concurrency": args.concurrency,
                "best_wall_s": round(floor, 3),
                "ideal_s": round(ideal, 4),
                "ratio": round(floor / ideal, 3),
                "ratio_to_rounds": round(floor / rounds_ideal, 3),
                "backend_over_floor": round(min(walls) / floor, 3),
                "server": server_stats(url),
            }
        )
        _aiohttp_row(url, args, ideal, floor)
        _sdk_rows(url, args, latency_s)
    finally:
        process.terminate()
        process.join()


if __name__ == "__main__":
    main()
