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
from synthmix.llm.openai_http import OpenAICompatibleBackend

__all__ = [
    "AnswerCache",
    "Backend",
    "BackendError",
    "CachedAnswer",
    "CachedBackend",
    "CompletionRequest",
    "CompletionResult",
    "OpenAICompatibleBackend",
    "cache_key",
]
