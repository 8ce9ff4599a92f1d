"""One description of an LLM backend for every config that names one (generation plans,
persona pools, the cascade's LLM stage, annotators and the moderator):

    kind: openai               # llama-cpp (default) | openai | transformers | a plugin's kind
    model: gpt-4o-mini         # GGUF path for llama-cpp (none = bundled Gemma-3-270M)
    base_url: https://api.openai.com/v1   # or a list: replicas of one model (llm.replicas)
    api_key_env: OPENAI_API_KEY  # the key itself never sits in a file
    chat: true                 # false: completions endpoint (base models)
    options: {max_concurrency: 8}

The older annotator shape (`backend: openai` + `backend_params: {...}`) is read as the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthmix.core.errors import ConfigError

if TYPE_CHECKING:
    from synthmix.llm.backend import Backend
    from synthmix.llm.cache import AnswerCache

# Where each kind takes the model name (the constructors differ).
_MODEL_OPTION = {"llama-cpp": "model_path", "llama.cpp": "model_path"}


@dataclass
class BackendSpec:
    """One LLM. `kind`: llama-cpp (a GGUF file; none = the bundled Gemma-3-270M), openai (any
    OpenAI-compatible server: OpenAI, vLLM, Ollama, llama.cpp server, OpenRouter) or
    transformers (a local or hub model). The API key is read from the environment variable
    named by `api_key_env`, never from a config file."""

    kind: str = "llama-cpp"
    model: str | None = None
    base_url: str | list[str] | None = None
    api_key_env: str | None = None
    chat: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_legacy(cls, backend: str, params: dict[str, Any]) -> BackendSpec:
        """`backend: openai` + `backend_params: {model: ..., base_url: ...}` as one spec."""
        options = dict(params)
        model = options.pop(_MODEL_OPTION.get(backend.lower(), "model"), None)
        model = options.pop("model", model)
        return cls(
            kind=backend,
            model=None if model is None else str(model),
            base_url=options.pop("base_url", None),
            api_key_env=options.pop("api_key_env", None),
            chat=options.pop("chat", None),
            options=options,
        )

    def build_options(self) -> dict[str, Any]:
        """The keyword options of the backend's constructor."""
        kind = self.kind.lower()
        options: dict[str, Any] = dict(self.options)
        if kind in ("openai", "openai-http"):
            urls = self.base_urls()
            if not urls or self.model is None:
                raise ConfigError("an openai backend needs 'base_url' and 'model'")
            where = {"base_urls": urls} if len(urls) > 1 else {"base_url": urls[0]}
            options.update(
                **where, model=self.model, api_key_env=self.api_key_env or "OPENAI_API_KEY"
            )
        elif self.model is not None:
            options[_MODEL_OPTION.get(kind, "model")] = self.model
        if self.chat is not None:
            options["chat"] = self.chat
        return options

    def base_urls(self) -> list[str]:
        """`base_url` as a list: one server, or several replicas of one model."""
        if self.base_url is None:
            return []
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)

    def build(self) -> Backend:
        from synthmix.llm.factory import build_backend

        replicated = self.kind.lower() in ("openai", "openai-http") and len(self.base_urls()) > 1
        return build_backend("openai-replicas" if replicated else self.kind, **self.build_options())

    def open(self, cache: AnswerCache) -> Backend:
        """The backend behind the answer cache: every answer persisted before it is used."""
        from synthmix.llm.cache import CachedBackend

        return CachedBackend(self.build(), cache)

    def key(self) -> str:
        """Equal for settings that make the same backend, so they can share one instance."""
        return json.dumps(
            [
                self.kind.lower(),
                self.model,
                self.base_url,
                self.api_key_env,
                self.chat,
                self.options,
            ],
            sort_keys=True,
            default=str,
        )
