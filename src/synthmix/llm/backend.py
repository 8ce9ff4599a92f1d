"""What every generation backend offers: one async completion call, and an identity that
names the model (for provenance columns) and the endpoint (for cache keys)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from synthmix.errors import SynthmixError


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

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("CompletionRequest needs exactly one of messages and prompt")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def sampling(self) -> dict[str, Any]:
        """Sampling parameters as the OpenAI API names them; unset ones are left out so a
        server applies its own defaults."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
            "n": self.n if self.n != 1 else None,
        }
        return {k: v for k, v in params.items() if v is not None}

    def input_text(self) -> str:
        """All prompt text, for token estimates."""
        if self.messages is not None:
            return "\n".join(m.get("content", "") for m in self.messages)
        return self.prompt or ""


@dataclass
class CompletionResult:
    """Answer texts (one per choice), token usage as the server reported it, and cost.

    `cached` is true when the answer came from the cache and no request was made.
    """

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    cached: bool = False


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
