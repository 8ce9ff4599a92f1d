"""LLM backends for generation: a small protocol, an OpenAI-compatible HTTP client and an
answer cache that makes interrupted runs resumable without paying twice."""

from synthmix.llm.backend import (
    Backend,
    BackendError,
    CompletionRequest,
    CompletionResult,
    cache_key,
)
from synthmix.llm.cache import AnswerCache, CachedAnswer, CachedBackend
from synthmix.llm.factory import build_backend
from synthmix.llm.llamacpp import LlamaCppBackend, bundled_model_path
from synthmix.llm.openai_http import OpenAICompatibleBackend
from synthmix.llm.spec import BackendSpec
from synthmix.llm.transformers_local import TransformersBackend

__all__ = [
    "AnswerCache",
    "Backend",
    "BackendError",
    "BackendSpec",
    "CachedAnswer",
    "CachedBackend",
    "CompletionRequest",
    "CompletionResult",
    "LlamaCppBackend",
    "OpenAICompatibleBackend",
    "TransformersBackend",
    "build_backend",
    "bundled_model_path",
    "cache_key",
]
