"""TransformersBackend end to end on a tiny GPT-2 built here: random weights and a
byte-level BPE vocabulary trained in memory on real CEDR sentences (no hub access)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
pytest.importorskip("transformers", reason="transformers is not installed")

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from synthmix.data.labeled import LabeledData
from synthmix.llm import CompletionRequest
from synthmix.llm.factory import build_backend
from synthmix.llm.transformers_local import TransformersBackend, _cut

EOS = "<|endoftext|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def _tokenizer(sentences: list[str]) -> PreTrainedTokenizerFast:
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sentences, vocab_size=600, min_frequency=2, special_tokens=[EOS])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS)


def _save_tiny_gpt2(folder: Path, sentences: list[str], chat_template: str | None) -> Path:
    tokenizer = _tokenizer(sentences)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    eos_id = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_layer=2,
        n_embd=32,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    # Fixed weights: unseeded, some draws started with end-of-text and made tests flaky.
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cedr_sentences(cedr_train: LabeledData) -> list[str]:
    return [t for t in cedr_train.texts if "\n" not in t][:300]


@pytest.fixture(scope="module")
def tiny_gpt2(cedr_sentences: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny_gpt2(tmp_path_factory.mktemp("gpt2"), cedr_sentences, None)


def _request(sample_index: int, **kwargs: Any) -> CompletionRequest:
    settings: dict[str, Any] = {"temperature": 1.0, "max_tokens": 12, "seed": 3}
    settings.update(kwargs)
    return CompletionRequest(sample_index=sample_index, **settings)


def test_completion_counts_tokens_and_is_reproducible(tiny_gpt2: Path) -> None:
    backend = TransformersBackend(str(tiny_gpt2), device="cpu")
    assert backend.chat is False  # no chat template: a base model
    prompt = "Эмоция: радость\nТекст:"

    async def draws() -> list[list[str]]:
        first = await backend.complete(_request(0, prompt=prompt))
        assert first.prompt_tokens > 0 and 0 < first.completion_tokens <= 12
        assert first.cost == 0.0
        again = await backend.complete(_request(0, prompt=prompt))
        other = await backend.complete(_request(1, prompt=prompt))
        return [first.texts, again.texts, other.texts]

    first, again, other = asyncio.run(draws())
    assert len(first) == 1 and first[0].strip()
    assert again == first
    assert other != first
    assert backend.stats.requests == 3


def test_several_choices_and_greedy_decoding(tiny_gpt2: Path) -> None:
    backend = build_backend("transformers", model=str(tiny_gpt2), device="cpu")
    result = asyncio.run(backend.complete(_request(0, prompt="Страшно", n=3)))
    assert len(result.texts) == 3 and result.completion_tokens > 0
    greedy = [
        asyncio.run(backend.complete(_request(i, prompt="Страшно", temperature=0.0)))
        for i in range(2)
    ]
    assert greedy[0].texts == greedy[1].texts  # no sampling: the draw does not matter


def test_chat_template_is_detected_and_used(cedr_sentences: list[str], tmp_path: Path) -> None:
    folder = _save_tiny_gpt2(tmp_path / "chat", cedr_sentences, CHAT_TEMPLATE)
    backend = TransformersBackend(str(folder), device="cpu")
    assert backend.chat is True
    messages = [{"role": "user", "content": "Напиши радостный текст."}]
    result = asyncio.run(backend.complete(_request(0, messages=messages)))
    assert result.texts[0].strip() and result.prompt_tokens > 5
    identity = backend.cache_identity()
    assert identity["kind"] == "transformers" and str(tmp_path) not in identity["model"]


def test_answers_are_cut_at_the_first_stop_string() -> None:
    assert _cut("Ура, отпуск!\n\nЭмоция: страх", ["Эмоция:", "\n\n"]) == "Ура, отпуск!"
    assert _cut("без остановки", None) == "без остановки"


def test_finish_reasons_and_logprobs(tiny_gpt2: Path) -> None:
    backend = TransformersBackend(str(tiny_gpt2), device="cpu")
    prompt = "Эмоция: радость\nТекст:"
    # Random weights rarely pick end-of-text among 600 tokens: 12 tokens run to the limit.
    cut = asyncio.run(backend.complete(_request(0, prompt=prompt, n=2)))
    assert cut.finish_reasons == ["length", "length"] and cut.completion_tokens == 24
    assert cut.logprobs is None
    plain = asyncio.run(backend.complete(_request(0, prompt=prompt)))
    asked = asyncio.run(backend.complete(_request(0, prompt=prompt, logprobs=3)))
    assert asked.texts == plain.texts  # asking for logprobs does not change the draw
    assert asked.logprobs is not None and len(asked.logprobs[0]) == 12
    for top in asked.logprobs[0]:
        # Byte tokens of split Cyrillic letters all decode to "�": they share one entry.
        assert 1 <= len(top) <= 4 and all(value <= 0 for value in top.values())
    # The sampled token of every position is among its entries.
    sampled = asked.raw["choices"][0]["logprobs"]["tokens"]
    assert all(token in top for token, top in zip(sampled, asked.logprobs[0], strict=True))
    stopped = asyncio.run(backend.complete(_request(0, prompt=prompt, stop=[plain.texts[0][:2]])))
    assert stopped.finish_reasons == ["stop"]
