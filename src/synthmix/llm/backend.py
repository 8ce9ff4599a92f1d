"""What every generation backend offers: one async completion call, and an identity that
names the model (for provenance columns) and the endpoint (for cache keys)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from tqdm import tqdm

from synthmix.core.errors import SynthmixError


class BackendError(SynthmixError):
    """A backend call failed for good (bad key, unknown model, retries exhausted).

    The message is one line and never contains the API key: it is shown at the CLI edge
    and may end up in logs and bug reports.
    """


@dataclass(frozen=True)
class CompletionRequest:
    """One generation call. Exactly one of `messages` (chat models) and `prompt` (base
    models, the plain completion endpoint) is set.

    `sample_index` is not sent to the server: it tells apart repeated draws of the same
    prompt in the cache key, so draw #3 of a prompt is cached separately from draw #2.

    `logprobs=k` asks for the k most likely tokens at every generated position with their
    log-probabilities (0: only the sampled token's, where a backend reports it).

    `json_schema` asks for an answer that is JSON matching the schema (structured output:
    `response_format` on OpenAI-compatible servers, a grammar on llama.cpp); a backend
    without such support ignores it and the caller's parser falls back to plain text.
    """

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    temperature: float = 1.0
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int = 1
    sample_index: int = 0
    logprobs: int | None = None
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("CompletionRequest needs exactly one of messages and prompt")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.logprobs is not None and self.logprobs < 0:
            raise ValueError(f"logprobs must be >= 0, got {self.logprobs}")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def sampling(self) -> dict[str, Any]:
        """Sampling parameters as the OpenAI completions API names them; unset ones are left
        out so a server applies its own defaults (and so cache keys of requests made before
        a parameter existed do not change)."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
            "n": self.n if self.n != 1 else None,
            "logprobs": self.logprobs,
            "json_schema": self.json_schema,
        }
        return {k: v for k, v in params.items() if v is not None}

    def input_text(self) -> str:
        """All prompt text, for token estimates."""
        if self.messages is not None:
            return "\n".join(m.get("content", "") for m in self.messages)
        return self.prompt or ""


TopLogprobs = dict[str, float]
"""Alternatives at one generated position: token text -> log-probability."""


@dataclass
class CompletionResult:
    """Answer texts (one per choice), token usage as the server reported it, and cost.

    `finish_reasons` has one entry per choice: "stop" (end of text or a stop string),
    "length" (cut at `max_tokens`), another server reason, or None where the backend did
    not say (answers cached before this field existed, from backends that do not report
    it). `logprobs` is None unless the request asked for them and the backend returned
    them; then per choice, per generated token, the top alternatives with their
    log-probabilities (the sampled token included where the backend reports it).
    `cached` is true when the answer came from the cache and no request was made.
    """

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    cached: bool = False
    finish_reasons: list[str | None] = field(default_factory=list)
    logprobs: list[list[TopLogprobs]] | None = None

    def __post_init__(self) -> None:
        if not self.finish_reasons:
            self.finish_reasons = [None] * len(self.texts)
        if len(self.finish_reasons) != len(self.texts):
            raise ValueError(
                f"{len(self.finish_reasons)} finish reasons for {len(self.texts)} answers"
            )
        if self.logprobs is not None and len(self.logprobs) != len(self.texts):
            raise ValueError(f"logprobs of {len(self.logprobs)} choices for {len(self.texts)}")


@dataclass
class LocalStats:
    """Totals over a local backend's life, for run reports and speed measurements."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


# llama.cpp reads 0xFFFFFFFF as "pick a random seed"; derived seeds stay below it.
_SEED_RANGE = 2**31


def sample_seed(seed: int, sample_index: int, choice: int = 0) -> int:
    """The sampler seed of one draw of a local backend: a hash, so (seed 0, draw 1) and
    (seed 1, draw 0) do not collide as they would with `seed + sample_index`; stable
    across processes."""
    digest = hashlib.sha256(f"{seed}:{sample_index}:{choice}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_RANGE


# ------------------------------------------------------------------ OpenAI-shaped answers


def choice_details(
    raw: Mapping[str, Any], n_choices: int
) -> tuple[list[str | None], list[list[TopLogprobs]] | None]:
    """Finish reasons and log-probabilities of an OpenAI-shaped answer body (`choices`,
    chat or completions format). Every backend keeps its raw answer in this shape, so a
    result rebuilt from the cache (which stores the raw answer) equals the fresh one;
    rows lacking either part give None for it."""
    choices = raw.get("choices")
    if not isinstance(choices, list):
        choices = []
    choices = [c if isinstance(c, Mapping) else {} for c in choices[:n_choices]]
    choices += [{}] * (n_choices - len(choices))
    reasons = [_reason(c.get("finish_reason")) for c in choices]
    parsed = [parse_logprobs(c.get("logprobs")) for c in choices]
    if all(p is None for p in parsed):
        return reasons, None
    return reasons, [p or [] for p in parsed]


def _reason(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_logprobs(logprobs: Any) -> list[TopLogprobs] | None:
    """Top alternatives per position from one choice's `logprobs`: the chat format
    ({"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}) or the
    completions format ({"tokens", "token_logprobs", "top_logprobs": [{token: logprob}]}).
    The sampled token is merged in; where a token appears twice the higher value wins."""
    if not isinstance(logprobs, Mapping):
        return None
    positions: list[TopLogprobs] = []
    if isinstance(logprobs.get("content"), list):
        for item in logprobs["content"]:
            if not isinstance(item, Mapping):
                continue
            top: TopLogprobs = {}
            for alt in item.get("top_logprobs") or []:
                if isinstance(alt, Mapping):
                    _merge(top, alt.get("token"), alt.get("logprob"))
            _merge(top, item.get("token"), item.get("logprob"))
            positions.append(top)
        return positions
    tops = logprobs.get("top_logprobs")
    if not isinstance(tops, list):
        return None
    tokens = logprobs.get("tokens")
    chosen = logprobs.get("token_logprobs")
    for index, alternatives in enumerate(tops):
        top = {}
        if isinstance(alternatives, Mapping):
            for token, value in alternatives.items():
                _merge(top, token, value)
        if isinstance(tokens, list) and isinstance(chosen, list) and index < len(chosen):
            _merge(top, tokens[index] if index < len(tokens) else None, chosen[index])
        positions.append(top)
    return positions


def _merge(top: TopLogprobs, token: Any, value: Any) -> None:
    if not isinstance(token, str) or isinstance(value, bool):
        return
    if not isinstance(value, int | float) or math.isnan(value):
        return
    top[token] = max(float(value), top.get(token, -math.inf))


def completion_logprobs(
    positions: Sequence[TopLogprobs], tokens: Sequence[str | None]
) -> dict[str, Any]:
    """Positions in the completions format (what `parse_logprobs` reads back); `tokens`
    are the sampled tokens, None where the backend does not know which it was."""
    return {
        "tokens": list(tokens),
        "token_logprobs": [
            None if t is None else top.get(t) for t, top in zip(tokens, positions, strict=True)
        ],
        "top_logprobs": [dict(top) for top in positions],
    }


@runtime_checkable
class Backend(Protocol):
    """A text generator. `name` is the backend kind ("openai-http"), `model` the model it
    calls; `chat` says whether it wants `messages` (True) or a plain `prompt`;
    `is_remote` tells callers the calls cost money and time."""

    name: str
    model: str
    chat: bool
    is_remote: bool

    def cache_identity(self) -> dict[str, str]:
        """What besides the request decides the answer (kind, endpoint, model); never a
        credential."""
        ...

    async def complete(self, request: CompletionRequest) -> CompletionResult: ...


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def cache_key(identity: dict[str, str], request: CompletionRequest) -> str:
    """sha256 of everything that decides an answer: endpoint, model, prompt, sampling
    parameters and which draw of the prompt this is."""
    payload = {
        "backend": identity,
        "messages": request.messages,
        "prompt": request.prompt,
        "sampling": request.sampling(),
        "sample_index": request.sample_index,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


T = TypeVar("T")


async def gather_settled(calls: Iterable[Awaitable[T]]) -> list[T]:
    """`asyncio.gather`, except that every call runs to its end before the first error is
    raised: answers already paid for reach the cache instead of being cancelled."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)


async def gather_with_progress(calls: Sequence[Awaitable[T]], desc: str, progress: bool) -> list[T]:
    """`gather_settled` with a bar that counts finished calls."""
    with tqdm(total=len(calls), desc=desc, disable=not progress) as bar:

        async def one(call: Awaitable[T]) -> T:
            result = await call
            bar.update(1)
            return result

        return await gather_settled(one(c) for c in calls)
