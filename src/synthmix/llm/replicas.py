"""One model served by several OpenAI-compatible servers (vLLM or llama.cpp replicas): each
call goes to the least busy replica that is up, each replica with its own concurrency limit.

A replica whose call meets a transient fault (connection refused, timeout, 5xx, 429) is taken
out of rotation and the call goes to another one at once. After a cool-down (doubling with
each further failure, up to `max_cooldown_s`) one probe call is let through; if it answers, the
replica is back. Only when every replica is out does a call wait, for the first one due back.

Answers are cached under the identity of the first listed URL, not of the replica that
answered: the replicas serve one model, so a prompt answered by any of them is answered, and a
spec grown from one URL to several keeps its cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import BackendError, CompletionRequest, CompletionResult
from synthmix.llm.hosts import is_loopback
from synthmix.llm.openai_http import BackendStats, OpenAICompatibleBackend

log = logging.getLogger("synthmix")


@dataclass
class Replica:
    """One server of the set, and what the set knows of its health."""

    backend: OpenAICompatibleBackend
    in_flight: int = 0
    failures: int = 0  # in a row; 0 = in rotation
    down_until: float = 0.0
    out_since: float = 0.0  # when it was last taken out
    taken_out: int = 0
    last_error: str = ""

    @property
    def url(self) -> str:
        return self.backend.base_url


@dataclass
class _SetStats:
    retries: int = 0
    failed_calls: int = 0
    retry_wait_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


class ReplicaBackend:
    """`OpenAICompatibleBackend` over several base URLs of one model. `max_concurrency` is per
    replica; `max_retries` counts further attempts of one call over all replicas."""

    name = "openai-http"
    is_remote = True

    def __init__(
        self,
        base_urls: Sequence[str],
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        chat: bool = True,
        max_concurrency: int = 8,
        max_retries: int = 6,
        cooldown_s: float = 2.0,
        max_cooldown_s: float = 60.0,
        **options: Any,
    ) -> None:
        if len(base_urls) < 1:
            raise ConfigError("a replicated openai backend needs at least one base_url")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        # One attempt per replica call: a fault moves the call to another replica instead of
        # waiting out backoff on the same one.
        self.replicas = [
            Replica(
                OpenAICompatibleBackend(
                    url, model, api_key_env, chat, max_concurrency, max_retries=0, **options
                )
            )
            for url in base_urls
        ]
        urls = [replica.url for replica in self.replicas]
        duplicate = next((url for url in urls if urls.count(url) > 1), None)
        if duplicate is not None:
            raise ConfigError(f"base_url {duplicate!r} is listed twice")
        self.model = model
        self.chat = chat
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        # Where real texts go, for redaction (`backend_is_remote` reads `base_url`): a
        # replica off this machine if any, so one remote replica is enough to redact.
        remote = [url for url in urls if not is_loopback(url)]
        self.base_url = remote[0] if remote else urls[0]
        self._set = _SetStats()

    def __repr__(self) -> str:
        urls = [replica.url for replica in self.replicas]
        return f"ReplicaBackend(base_urls={urls!r}, model={self.model!r}, chat={self.chat})"

    def cache_identity(self) -> dict[str, str]:
        return self.replicas[0].backend.cache_identity()

    @property
    def stats(self) -> BackendStats:
        """The replicas' counts summed, with retries and gave-ups as the set saw them."""
        total = BackendStats()
        for replica in self.replicas:
            counted = replica.backend.stats
            total.requests += counted.requests
            total.answers += counted.answers
            total.prompt_tokens += counted.prompt_tokens
            total.completion_tokens += counted.completion_tokens
            total.cost += counted.cost
            total.throttle_wait_s += counted.throttle_wait_s
            for kind, count in counted.errors_by_kind.items():
                total.errors_by_kind[kind] = total.errors_by_kind.get(kind, 0) + count
        total.retries = self._set.retries
        total.failed_calls = self._set.failed_calls
        total.retry_wait_s = self._set.retry_wait_s
        return total

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per replica: requests, answers, how often it was taken out, whether it is out now."""
        now = time.monotonic()
        return [
            {
                "base_url": replica.url,
                "requests": replica.backend.stats.requests,
                "answers": replica.backend.stats.answers,
                "taken_out": replica.taken_out,
                "out_now": replica.failures > 0 and replica.down_until > now,
            }
            for replica in self.replicas
        ]

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            replica = await self._pick()
            gave_up_before = replica.backend.stats.failed_calls
            sent = time.monotonic()
            replica.in_flight += 1
            try:
                result = await replica.backend.complete(request)
            except BackendError as exc:
                if replica.backend.stats.failed_calls == gave_up_before:
                    raise  # a mistake no replica would answer otherwise (bad key, bad request)
                last = f"{replica.url}: {exc}"
                self._take_out(replica, str(exc))
                if attempt < self.max_retries:
                    self._set.retries += 1
                continue
            finally:
                replica.in_flight -= 1
            # Only a call sent after the replica was taken out (its probe) brings it back: a
            # server being stopped may still finish the calls it had.
            if replica.failures and sent >= replica.out_since:
                log.info("%s: replica %s answers again", self.model, replica.url)
                replica.failures = 0
            return result
        self._set.failed_calls += 1
        raise BackendError(
            f"model {self.model}: gave up after {self.max_retries + 1} attempts over "
            f"{len(self.replicas)} replicas; last error: {last}"
        )

    def _take_out(self, replica: Replica, error: str) -> None:
        if replica.failures and replica.down_until > time.monotonic():
            return  # already out: a call sent before it was taken out failed too
        replica.failures += 1
        replica.taken_out += 1
        replica.out_since = time.monotonic()
        replica.last_error = error
        cooldown = min(self.max_cooldown_s, self.cooldown_s * 2.0 ** (replica.failures - 1))
        replica.down_until = time.monotonic() + cooldown
        log.warning(
            "%s: replica %s taken out for %.1fs: %s", self.model, replica.url, cooldown, error
        )

    async def _pick(self) -> Replica:
        """The replica for the next attempt: a replica due back gets one probe call; else the
        least busy one in rotation; with none up, wait for the first one due back."""
        waited = 0.0
        while True:
            now = time.monotonic()
            due = [
                r for r in self.replicas if r.failures and r.down_until <= now and not r.in_flight
            ]
            if due:
                self._set.retry_wait_s += waited
                return due[0]
            up = [r for r in self.replicas if not r.failures]
            if up:
                self._set.retry_wait_s += waited
                return min(up, key=lambda r: r.in_flight)
            # Every replica is out, or probed by another call right now.
            pause = max(0.05, min(r.down_until for r in self.replicas) - now)
            await asyncio.sleep(pause)
            waited += pause

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.backend.aclose()
