"""Client for OpenAI-compatible HTTP servers (OpenAI, vLLM, llama.cpp, TGI, LM Studio...).

Calls survive the usual trouble of long generation runs: rate limits (429 with
Retry-After), overloaded servers (5xx), hangs (timeouts), dropped connections and garbled
bodies are retried with exponential backoff and full jitter; mistakes that retrying
cannot fix (bad key, unknown model, bad request) fail at once with a one-line error.

The API key is read from an environment variable at call time and only ever placed in
the Authorization header: it is not an attribute, so it cannot leak through repr, config
dumps, cache keys or error messages (server error texts are scrubbed of it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import (
    BackendError,
    CompletionRequest,
    CompletionResult,
    choice_details,
)
from synthmix.llm.hosts import check_base_url, host_of, is_loopback

log = logging.getLogger("synthmix")
T = TypeVar("T")

# 408/409/425 are transient by definition; 429 is a rate limit; 5xx is the server's fault.
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_RETRY_AFTER_STATUS = frozenset({429, 503})
_MAX_SERVER_MESSAGE = 200
STRUCTURED_FORMATS = ("json_schema", "json_object", "grammar", "off")
POOL_SIZE = 8  # connections per httpx client; see _loop_state
# Rough characters-per-token for the TPM limiter's estimate before usage is known;
# Cyrillic tokenises worse than English, so err on the high side of tokens.
_CHARS_PER_TOKEN = 3.0
_DEFAULT_COMPLETION_ESTIMATE = 512


class TokenBucket:
    """Async token bucket: `per_minute` units refill continuously, bursts up to
    `capacity` (default: one second's worth, at least one unit).

    `acquire(amount)` waits until the bucket holds `amount`; `charge(delta)` corrects a
    guess afterwards (the TPM limiter only learns real usage from the response) and may
    drive the level negative, so later callers wait the debt off.
    """

    def __init__(self, per_minute: float, capacity: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate must be > 0 per minute, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, self.rate)
        self.level = self.capacity
        self._updated = time.monotonic()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a request bigger than a burst waits for a full one
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def charge(self, delta: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level - delta)


@dataclass
class BackendStats:
    """What the backend's calls cost and met, for run reports: attempts, answers, retries by
    cause (an HTTP status, timeout, connection, malformed body), calls that gave up, time spent
    waiting before retries and waiting for the rate limits."""

    requests: int = 0
    answers: int = 0
    retries: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    retry_wait_s: float = 0.0
    throttle_wait_s: float = 0.0
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def count_error(self, kind: str) -> None:
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answers": self.answers,
            "retries": self.retries,
            "failed_calls": self.failed_calls,
            "faults": dict(sorted(self.errors_by_kind.items())),
            "retry_wait_s": round(self.retry_wait_s, 2),
            "throttle_wait_s": round(self.throttle_wait_s, 2),
        }

    def summary(self) -> str:
        """One line for the command's final output; empty when every request just worked."""
        return fault_line(self.to_dict())


def fault_line(faults: dict[str, Any]) -> str:
    """`BackendStats.to_dict()` as one line; empty when every request just worked."""
    throttled = float(faults.get("throttle_wait_s", 0.0))
    if not faults.get("retries") and not faults.get("failed_calls") and throttled < 0.5:
        return ""
    parts = [f"{faults['requests']} requests for {faults['answers']} answers"]
    if faults.get("retries"):
        causes = ", ".join(f"{kind} x{n}" for kind, n in faults.get("faults", {}).items())
        parts.append(
            f"{faults['retries']} retries ({causes}), {faults['retry_wait_s']:.0f}s waiting"
        )
    if faults.get("failed_calls"):
        parts.append(f"{faults['failed_calls']} calls gave up")
    if throttled >= 0.5:
        parts.append(f"{throttled:.0f}s held back by the rate limits")
    return "; ".join(parts)


class MalformedAnswer(ValueError):
    """A completion body without the fields of one (batch output lines are read with it)."""


class _Retry(Exception):
    """A failed attempt worth repeating; `wait_s` is the server's Retry-After if any."""

    def __init__(self, reason: str, wait_s: float | None = None, cause: str = "") -> None:
        super().__init__(reason)
        self.cause = cause or reason.split(":", 1)[0]
        self.reason = reason
        self.wait_s = wait_s


@dataclass
class _LoopState:
    """Objects bound to one event loop. Each asyncio.run() gets a fresh set, so one
    backend can serve several runs (tests, notebooks) without 'attached to a different
    loop' errors."""

    loop: asyncio.AbstractEventLoop
    clients: list[httpx.AsyncClient]
    semaphore: asyncio.Semaphore
    rpm: TokenBucket | None
    tpm: TokenBucket | None
    in_flight: list[int] = field(default_factory=list)

    @contextlib.contextmanager
    def least_busy(self) -> Iterator[httpx.AsyncClient]:
        index = min(range(len(self.clients)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            yield self.clients[index]
        finally:
            self.in_flight[index] -= 1


class OpenAICompatibleBackend:
    """`/v1/chat/completions` (chat=True) or `/v1/completions` (chat=False) client.

    `base_url` is the server root, with or without a trailing `/v1`. Prices are per 1000
    tokens and only feed cost reports and budgets.

    `structured_format` says how a request's `json_schema` goes out: "json_schema" (OpenAI's
    structured outputs; vLLM and llama.cpp's llama-server accept it), "json_object"
    (`{"type": "json_object", "schema": ...}`: llama-cpp-python's server, llama-server),
    "grammar" (a GBNF grammar converted from the schema, for llama-cpp-python's
    completions endpoint) or "off" (not sent: a server without structured output).
    """

    name = "openai-http"
    is_remote = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        chat: bool = True,
        max_concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        structured_format: str = "json_schema",
    ) -> None:
        if structured_format not in STRUCTURED_FORMATS:
            raise ConfigError(
                f"structured_format must be one of {', '.join(STRUCTURED_FORMATS)}, "
                f"got {structured_format!r}"
            )
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = check_base_url(base_url).rstrip("/").removesuffix("/v1")
        self.model = model
        self.api_key_env = api_key_env
        self.chat = chat
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.price_per_1k_prompt = price_per_1k_prompt
        self.price_per_1k_completion = price_per_1k_completion
        self.structured_format = structured_format
        self.stats = BackendStats()
        self._warned_plain_http = False
        self._state: _LoopState | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._jitter = random.Random()  # jitter must differ between processes, not repeat

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"chat={self.chat}, api_key_env={self.api_key_env!r})"
        )

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v1/{'chat/completions' if self.chat else 'completions'}"

    def cache_identity(self) -> dict[str, str]:
        identity = {"kind": self.name, "base_url": self.base_url, "model": self.model}
        if self.structured_format != "json_schema":  # the default keeps the keys it had
            identity["structured_format"] = self.structured_format
        return identity

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.price_per_1k_prompt
            + completion_tokens * self.price_per_1k_completion
        ) / 1000.0

    # ------------------------------------------------------------------ event-loop state

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            # httpcore 1.0 rescans every pooled connection for every pooled one on each
            # request (O(n^2) socket polls); at 32 connections that costs more CPU than the
            # request itself. Pools of at most POOL_SIZE, used least-busy first, keep the
            # scan small. Keep-alive for every slot: httpx's default of 20 would close and
            # reopen the rest.
            shards = math.ceil(self.max_concurrency / POOL_SIZE)
            size = math.ceil(self.max_concurrency / shards)
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            self._state = _LoopState(
                loop=loop,
                clients=[
                    httpx.AsyncClient(timeout=self.timeout_s, limits=limits, verify=self._tls())
                    for _ in range(shards)
                ],
                in_flight=[0] * shards,
                semaphore=asyncio.Semaphore(self.max_concurrency),
                rpm=TokenBucket(self.requests_per_minute) if self.requests_per_minute else None,
                tpm=TokenBucket(self.tokens_per_minute) if self.tokens_per_minute else None,
            )
        return self._state

    def _tls(self) -> ssl.SSLContext:
        # One context for all pools and event loops: loading the CA bundle takes ~20 ms.
        if self._tls_context is None:
            self._tls_context = httpx.create_ssl_context()
        return self._tls_context

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop (optional: they are
        dropped with the loop anyway)."""
        if self._state is not None and self._state.loop is asyncio.get_running_loop():
            for client in self._state.clients:
                await client.aclose()
            self._state = None

    # --------------------------------------------------------------------------- calls

    def _api_key(self) -> str:
        if self.api_key_env is None:
            return ""
        return os.environ.get(self.api_key_env, "")

    def headers(self) -> dict[str, str]:
        key = self._api_key()
        if key and not self._warned_plain_http and self._key_in_clear():
            self._warned_plain_http = True
            log.warning(
                "%s: the API key from $%s goes over plain http:// to %s, which is not this "
                "machine; anyone on the way can read it (use https://)",
                self.model,
                self.api_key_env,
                host_of(self.base_url),
            )
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _key_in_clear(self) -> bool:
        return self.base_url.startswith("http://") and not is_loopback(self.base_url)

    def scrub(self, text: str) -> str:
        """One line, without the key (servers echo a rejected key back, partly or not)."""
        key = self._api_key()
        if key:
            text = text.replace(key, "***")
        return " ".join(text.split())

    def payload(self, request: CompletionRequest) -> dict[str, Any]:
        if self.chat != request.is_chat:
            want = "messages" if self.chat else "a prompt"
            raise BackendError(f"{self.endpoint}: this backend sends {want}; request has not")
        body: dict[str, Any] = {"model": self.model, **request.sampling()}
        schema = body.pop("json_schema", None)
        if schema is not None:
            body.update(structured_fields(self.structured_format, schema))
        if request.messages is not None:
            body["messages"] = request.messages
            if request.logprobs is not None:
                # The chat API splits the completions API's `logprobs: k` in two.
                body["logprobs"] = True
                body["top_logprobs"] = request.logprobs
        else:
            body["prompt"] = request.prompt
        return body

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        body = self.payload(request)
        state = self._loop_state()
        estimate = len(request.input_text()) / _CHARS_PER_TOKEN + (
            request.max_tokens or _DEFAULT_COMPLETION_ESTIMATE
        )

        async def attempt() -> CompletionResult:
            held = time.monotonic()
            if state.rpm is not None:
                await state.rpm.acquire()
            if state.tpm is not None:
                await state.tpm.acquire(estimate)
            self.stats.throttle_wait_s += time.monotonic() - held
            return await self._attempt(state, body)

        result = await self._retrying(attempt, f"{self.endpoint} (model {self.model})")
        if state.tpm is not None:
            state.tpm.charge(result.prompt_tokens + result.completion_tokens - estimate)
        self.stats.answers += 1
        return result

    async def call_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to another endpoint of the same server (`/v1/files`, `/v1/batches`),
        with the key, retries and fault counting of completion calls; `kwargs` go to httpx.
        A status retrying cannot fix is a one-line BackendError."""
        state = self._loop_state()
        url = f"{self.base_url}{path}"

        async def attempt() -> httpx.Response:
            async with state.semaphore:
                self.stats.requests += 1
                try:
                    with state.least_busy() as client:
                        response = await client.request(
                            method, url, headers=self.headers(), **kwargs
                        )
                except httpx.TimeoutException:
                    raise _Retry(f"timeout after {self.timeout_s}s", cause="timeout") from None
                except httpx.TransportError as exc:
                    reason = self.scrub(str(exc)) or type(exc).__name__
                    raise _Retry(f"connection error: {reason}", cause="connection") from None
            if response.status_code < 400:
                return response
            self._raise_for_status(response, f"{method} {url}")
            return response  # unreachable: _raise_for_status raised

        return await self._retrying(attempt, f"{method} {url}")

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """`attempt()` until it returns, at most `max_retries` more times after a `_Retry`,
        with backoff (or the server's Retry-After); every retry counted by cause."""
        last = "no attempt made"
        for number in range(self.max_retries + 1):
            try:
                return await attempt()
            except _Retry as exc:
                last = exc.reason
                self.stats.count_error(exc.cause)
                if number == self.max_retries:
                    break
                delay = exc.wait_s if exc.wait_s is not None else self.backoff(number)
                self.stats.retries += 1
                self.stats.retry_wait_s += delay
                log.info("%s: %s; retry %d in %.1fs", self.model, last, number + 1, delay)
                await asyncio.sleep(delay)
        self.stats.failed_calls += 1
        raise BackendError(
            f"{what}: gave up after {self.max_retries + 1} attempts; last error: {last}"
        )

    def backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many concurrent callers
        # so they do not hit a recovering server in lockstep.
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        return self._jitter.uniform(0.0, ceiling)

    async def _attempt(self, state: _LoopState, body: dict[str, Any]) -> CompletionResult:
        async with state.semaphore:
            self.stats.requests += 1
            try:
                with state.least_busy() as client:
                    response = await client.post(self.endpoint, json=body, headers=self.headers())
            except httpx.TimeoutException:
                raise _Retry(f"timeout after {self.timeout_s}s", cause="timeout") from None
            except httpx.TransportError as exc:
                reason = self.scrub(str(exc)) or type(exc).__name__
                raise _Retry(f"connection error: {reason}", cause="connection") from None
        return self._handle(response)

    def _handle(self, response: httpx.Response) -> CompletionResult:
        if response.status_code == 200:
            return self._parse(response)
        self._raise_for_status(response, f"{self.endpoint} (model {self.model})")
        raise AssertionError("unreachable")

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        """A `_Retry` for a status worth retrying, else a one-line BackendError."""
        status = response.status_code
        message = self.server_message(response)
        if status in _RETRYABLE_STATUS or status >= 500:
            wait = _retry_after(response) if status in _RETRY_AFTER_STATUS else None
            raise _Retry(f"HTTP {status}: {message}", wait, cause=f"HTTP {status}")
        raise BackendError(f"HTTP {status} from {what}: {message}")

    def server_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            error = body.get("error", body) if isinstance(body, dict) else body
            text = error.get("message", error) if isinstance(error, dict) else error
            text = str(text)
        except (ValueError, AttributeError):
            text = response.text
        text = self.scrub(text) or response.reason_phrase
        if len(text) > _MAX_SERVER_MESSAGE:
            text = text[:_MAX_SERVER_MESSAGE] + "…"
        return text

    def _parse(self, response: httpx.Response) -> CompletionResult:
        try:
            # A proxy cut the body short or the server sent HTML: the next try may work.
            return self.parse_body(response.json())
        except (ValueError, MalformedAnswer) as exc:
            reason = str(exc) if isinstance(exc, MalformedAnswer) else "malformed response body"
            raise _Retry(reason, cause="malformed body") from None

    def parse_body(self, raw: Any, price_factor: float = 1.0) -> CompletionResult:
        """A completion body as a result; a malformed one raises `MalformedAnswer`. `price_factor`:
        what a batch answer costs against a live one (batch endpoints charge about half)."""
        try:
            choices = raw["choices"]
            if self.chat:
                texts = [str(c["message"]["content"] or "") for c in choices]
            else:
                texts = [str(c["text"]) for c in choices]
        except (KeyError, TypeError, IndexError):
            raise MalformedAnswer("malformed response body") from None
        if not isinstance(raw, dict) or not texts:
            raise MalformedAnswer("malformed response body (no choices)")
        usage = raw.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        cost = self.cost(prompt_tokens, completion_tokens) * price_factor
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.cost += cost
        scrubbed = self._scrub_raw(raw)
        # From the scrubbed body, as the cache rebuilds them: a fresh result and a cached
        # one then agree.
        finish_reasons, logprobs = choice_details(scrubbed, len(texts))
        return CompletionResult(
            texts=texts,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            raw=scrubbed,
            cost=cost,
            finish_reasons=finish_reasons,
            logprobs=logprobs,
        )

    def _scrub_raw(self, raw: dict[str, Any]) -> dict[str, Any]:
        # The raw body goes into the cache file; a key echoed in it must not.
        key = self._api_key()
        if not key:
            return raw
        dumped = json.dumps(raw, ensure_ascii=False)
        if key in dumped:
            scrubbed: dict[str, Any] = json.loads(dumped.replace(key, "***"))
            return scrubbed
        return raw


def structured_fields(form: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The body fields that ask a server for JSON of `schema`, in the `form` it reads."""
    if form == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        }
    if form == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if form == "grammar":
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        return {"grammar": json_schema_to_gbnf(json.dumps(schema))}
    return {}


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is rare from API servers and ignored
    (the caller falls back to its own backoff)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
