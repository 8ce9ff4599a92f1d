"""Backends by kind name, for configs and the CLI: `build_backend("llama-cpp", n_ctx=1024)`.

Local backends are imported only when asked for, so using the HTTP backend never imports
torch or llama.cpp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import Backend


def _openai(**kwargs: Any) -> Backend:
    from synthmix.llm.openai_http import OpenAICompatibleBackend

    return OpenAICompatibleBackend(**kwargs)


def _llama_cpp(**kwargs: Any) -> Backend:
    from synthmix.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(**kwargs)


def _transformers(**kwargs: Any) -> Backend:
    from synthmix.llm.transformers_local import TransformersBackend

    return TransformersBackend(**kwargs)


# Aliases: the kind names users write, and each backend's own `name`.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "openai": _openai,
    "openai-http": _openai,
    "llama-cpp": _llama_cpp,
    "llama.cpp": _llama_cpp,
    "transformers": _transformers,
}


def build_backend(kind: str, **kwargs: Any) -> Backend:
    """A backend of `kind` ("openai", "llama-cpp", "transformers") built with `kwargs`;
    an unknown kind or option is a one-line ConfigError."""
    make = BACKENDS.get(kind.lower())
    if make is None:
        raise ConfigError(f"unknown backend {kind!r} (use openai, llama-cpp or transformers)")
    try:
        return make(**kwargs)
    except TypeError as exc:  # a misspelt or missing option in a config file
        raise ConfigError(f"backend {kind!r}: {exc}") from None
