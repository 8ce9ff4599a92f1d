"""Local generation with Hugging Face transformers (any causal LM: a hub name or a folder).

Weights load on the first call, in a worker thread; calls run one at a time under a lock
(generation already uses every core, and torch's global RNG is what seeds sampling).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import (
    CompletionRequest,
    CompletionResult,
    LocalStats,
    TopLogprobs,
    choice_details,
    completion_logprobs,
    sample_seed,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_INSTALL_HINT = "pip install transformers torch"


class TransformersBackend:
    """A causal LM run by `transformers.generate`.

    `chat=None` decides from the tokenizer: a model with a chat template gets `messages`
    (formatted by the template), others a plain `prompt`; that needs the tokenizer (not the
    weights) at construction. `device=None` is CUDA when available, else CPU.
    `max_new_tokens` applies when a request sets no `max_tokens`.
    """

    name = "transformers"
    is_remote = False

    def __init__(
        self,
        model: str,
        device: str | None = None,
        chat: bool | None = None,
        max_new_tokens: int = 256,
        seed: int = 0,
        dtype: str | None = None,
    ) -> None:
        for package in ("transformers", "torch"):
            if importlib.util.find_spec(package) is None:
                raise ConfigError(f"the transformers backend needs {package}: {_INSTALL_HINT}")
        self.model = model
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.dtype = dtype
        self.stats = LocalStats()
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._model: PreTrainedModel | None = None
        self._lock = threading.Lock()  # one generate at a time; also guards the lazy load
        self.chat = chat if chat is not None else self._has_chat_template()

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, chat={self.chat})"

    def cache_identity(self) -> dict[str, str]:
        return {"kind": self.name, "model": _model_identity(self.model), "seed": str(self.seed)}

    async def complete(self, request: CompletionRequest) -> CompletionResult:
        return await asyncio.to_thread(self._complete_sync, request)

    # ------------------------------------------------------------------ worker thread

    def _has_chat_template(self) -> bool:
        with self._lock:
            return bool(getattr(self._load_tokenizer(), "chat_template", None))

    def _load_tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        return self._tokenizer

    def _load_model(self) -> PreTrainedModel:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            options: dict[str, Any] = {"dtype": self.dtype} if self.dtype else {}
            model = AutoModelForCausalLM.from_pretrained(self.model, **options)
            self._model = model.to(device).eval()  # type: ignore[arg-type]
        return self._model

    def _complete_sync(self, request: CompletionRequest) -> CompletionResult:
        with self._lock:
            started = time.perf_counter()
            tokenizer, model = self._load_tokenizer(), self._load_model()
            inputs = self._encode(tokenizer, request).to(model.device)
            prompt_length = int(inputs["input_ids"].shape[1])
            output, step_logits = self._generate(tokenizer, model, inputs, request)
            self.stats.seconds += time.perf_counter() - started
        generated = output[:, prompt_length:]
        decoded = [str(tokenizer.decode(row, skip_special_tokens=True)) for row in generated]
        texts = [_cut(text, request.stop) for text in decoded]
        lengths = [_generated_length(row, tokenizer) for row in generated]
        completion_tokens = sum(lengths)
        self.stats.requests += 1
        self.stats.prompt_tokens += prompt_length
        self.stats.completion_tokens += completion_tokens
        limit = request.max_tokens if request.max_tokens is not None else self.max_new_tokens
        choices: list[dict[str, Any]] = []
        for index, row in enumerate(generated):
            tokens = [int(t) for t in row]
            ended = tokenizer.eos_token_id in tokens or texts[index] != decoded[index]
            choice: dict[str, Any] = {
                "index": index,
                "text": texts[index],
                "finish_reason": "length" if not ended and lengths[index] >= limit else "stop",
            }
            if step_logits is not None and request.logprobs is not None:
                choice["logprobs"] = _logprobs(
                    tokenizer, step_logits, index, tokens[: lengths[index]], request.logprobs
                )
            choices.append(choice)
        # OpenAI-shaped, like the other backends' raw answers: the cache reads finish
        # reasons and logprobs back from it.
        raw = {"model": self.model, "texts": texts, "choices": choices}
        finish_reasons, logprobs = choice_details(raw, len(texts))
        return CompletionResult(
            texts=texts,
            prompt_tokens=prompt_length,
            completion_tokens=completion_tokens,
            raw=raw,
            finish_reasons=finish_reasons,
            logprobs=logprobs,
        )

    def _encode(self, tokenizer: PreTrainedTokenizerBase, request: CompletionRequest) -> Any:
        if request.messages is None:
            return tokenizer(request.prompt or "", return_tensors="pt")
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"{self.model} has no chat template: use chat=False and a prompt")
        return tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _generate(
        self,
        tokenizer: PreTrainedTokenizerBase,
        model: PreTrainedModel,
        inputs: Any,
        request: CompletionRequest,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Output token ids, and the raw logits of every step when logprobs are asked for."""
        import torch

        base = request.seed if request.seed is not None else self.seed
        # Global RNG, hence the lock: a draw depends only on (seed, sample_index).
        torch.manual_seed(sample_seed(base, request.sample_index))
        sampling = request.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": (
                request.max_tokens if request.max_tokens is not None else self.max_new_tokens
            ),
            "do_sample": sampling,
            "num_return_sequences": request.n,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else tokenizer.eos_token_id,
        }
        if sampling:
            options["temperature"] = request.temperature
            options["top_p"] = request.top_p if request.top_p is not None else 1.0
        if request.stop:
            # Stops generating early; `_cut` then drops the stop string as servers do.
            options.update(stop_strings=request.stop, tokenizer=tokenizer)
        if request.logprobs is not None:
            # Raw logits, not `scores`: those are after temperature and top-p.
            options.update(output_logits=True, return_dict_in_generate=True)
        with torch.inference_mode():
            output: Any = model.generate(**inputs, **options)  # type: ignore[operator]
        if request.logprobs is not None:
            return output.sequences, tuple(output.logits)
        return output, None


def _cut(text: str, stop: list[str] | None) -> str:
    """The text up to the first stop string (generation may run past it within a token)."""
    for marker in stop or []:
        if marker and marker in text:
            text = text.split(marker, 1)[0]
    return text


def _logprobs(
    tokenizer: PreTrainedTokenizerBase,
    step_logits: tuple[torch.Tensor, ...],
    row: int,
    tokens: list[int],
    k: int,
) -> dict[str, Any]:
    """Completions-format logprobs of one output row: the top k of the model's own
    distribution at each generated token (end-of-sequence excluded, as servers do)."""
    import torch

    eos = tokenizer.eos_token_id
    if tokens and eos is not None and tokens[-1] == eos:
        tokens = tokens[:-1]
    positions: list[TopLogprobs] = []
    sampled: list[str | None] = []
    for step, token in enumerate(tokens):
        logprobs = torch.log_softmax(step_logits[step][row].float(), dim=-1)
        top: TopLogprobs = {}
        if k > 0:
            values, ids = torch.topk(logprobs, min(k, logprobs.shape[-1]))
            for value, index in zip(values.tolist(), ids.tolist(), strict=True):
                top.setdefault(str(tokenizer.decode([index])), float(value))
        piece = str(tokenizer.decode([token]))
        top[piece] = max(float(logprobs[token]), top.get(piece, float("-inf")))
        positions.append(top)
        sampled.append(piece)
    return completion_logprobs(positions, sampled)


def _generated_length(row: Any, tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens generated in one row: up to and including the first end-of-sequence token
    (the rest is padding to the longest row)."""
    tokens = [int(t) for t in row]
    eos = tokenizer.eos_token_id
    if eos is not None and eos in tokens:
        return tokens.index(eos) + 1
    pad = tokenizer.pad_token_id
    return sum(1 for t in tokens if t != pad) if pad is not None else len(tokens)


def _model_identity(model: str) -> str:
    """A hub name as is; a local folder by its name and a digest of its files' names and
    sizes (like the llama.cpp backend's file size): a cache survives moving the folder,
    not replacing the weights."""
    path = Path(model)
    if not path.is_dir():
        return model
    sizes = sorted((p.name, p.stat().st_size) for p in path.iterdir() if p.is_file())
    digest = hashlib.sha256(repr(sizes).encode()).hexdigest()[:12]
    return f"{path.name}@{digest}"
