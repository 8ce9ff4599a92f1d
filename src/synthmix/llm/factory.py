"""Backends by kind name, for configs and the CLI: `build_backend("llama-cpp", n_ctx=1024)`.

Local backends are imported only when asked for, so using the HTTP backend never imports
torch or llama.cpp. A third-party package adds a kind through the entry point group
`synthmix.backends` (a class or factory taking keyword options).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthmix.core.config import check_params
from synthmix.core.errors import ConfigError
from synthmix.core.plugins import Registry
from synthmix.llm.backend import Backend

_OPENAI = "synthmix.llm.openai_http:OpenAICompatibleBackend"
_REPLICAS = "synthmix.llm.replicas:ReplicaBackend"
_LLAMA_CPP = "synthmix.llm.llamacpp:LlamaCppBackend"
_TRANSFORMERS = "synthmix.llm.transformers_local:TransformersBackend"

# Aliases: the kind names users write, and each backend's own `name`.
BACKENDS: Registry[Callable[..., Backend]] = Registry(
    "synthmix.backends",
    "backend",
    {
        "openai": _OPENAI,
        "openai-http": _OPENAI,
        # What a spec of kind openai with several base URLs builds.
        "openai-replicas": _REPLICAS,
        "llama-cpp": _LLAMA_CPP,
        "llama.cpp": _LLAMA_CPP,
        "transformers": _TRANSFORMERS,
    },
)


def build_backend(kind: str, **kwargs: Any) -> Backend:
    """A backend of `kind` ("openai", "llama-cpp", "transformers" or a registered one) built
    with `kwargs`; an unknown kind or option is a one-line ConfigError."""
    make = BACKENDS.get(kind.lower())
    check_params(make, kwargs, f"backend {kind!r}")
    try:
        return make(**kwargs)
    except TypeError as exc:  # a missing option the signature check cannot see
        raise ConfigError(f"backend {kind!r}: {exc}") from None
