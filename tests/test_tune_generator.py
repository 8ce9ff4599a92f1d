"""tune-generator end to end on a tiny causal LM built here, offline: a byte-level BPE vocabulary
of the training sequences and a 2-layer GPT-2 briefly pretrained on unlabeled CEDR sentences (a
weak base model that never saw a label, standing in for a hub model), LoRA-tuned on
"label: text" through the real Trainer path."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
pytest.importorskip("peft", reason="peft is not installed (pip install -e '.[train]')")

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

import synthmix
from synthmix.cards.card import load_card
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData, sample_per_class
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.generation.tuning import INFO_FILE, TuneConfig, training_text, tune_generator
from synthmix.llm.transformers_local import TransformersBackend

EOS = "<|endoftext|>"
CLASSES = ("joy", "no_emotion")  # CEDR's tweets of joy vs. its mostly news-like neutral texts
CARD_PATH = Path(synthmix.__file__).parent / "demo_data" / "cedr_emotions" / "card.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Two threads on a busy 2-core machine made one tiny step 30 times slower (1.6 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def train(cedr_train: LabeledData) -> LabeledData:
    short = cedr_train.frame[cedr_train.frame["text"].str.len() < 90].reset_index(drop=True)
    return sample_per_class(LabeledData(short, "cedr"), dict.fromkeys(CLASSES, 40), seed=0)


@pytest.fixture(scope="module")
def tiny_base(
    cedr_train: LabeledData, train: LabeledData, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("tiny-lm")
    sentences = [training_text(label, text) for text, label in zip(*_pairs(train), strict=True)]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        sentences, vocab_size=800, min_frequency=2,
        special_tokens=[EOS],
    )  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_layer=2, n_embd=32, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    _pretrain(model, tokenizer, cedr_train.texts[:600])
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _pairs(data: LabeledData) -> tuple[list[str], list[str]]:
    return data.texts, data.labels


def _pretrain(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> None:
    """A few epochs of plain language modelling on unlabeled texts: no label is ever seen."""
    eos = tokenizer.eos_token_id
    rows = [[*tokenizer(t, add_special_tokens=False)["input_ids"][:63], eos] for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(4):
        for start in range(0, len(rows), 16):
            batch = rows[start : start + 16]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), eos)
            labels = torch.full((len(batch), width), -100)
            for i, row in enumerate(batch):
                ids[i, : len(row)] = labels[i, : len(row)] = torch.tensor(row)
            model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()


def _label_preference(folder: Path, data: LabeledData) -> float:
    """Share of texts the model finds likelier after their own label than after the other."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    right = 0
    for text, label in zip(data.texts, data.labels, strict=True):
        losses = []
        for candidate in (label, next(c for c in CLASSES if c != label)):
            prefix = len(tokenizer(f"{candidate}:", add_special_tokens=False)["input_ids"])
            ids = tokenizer(training_text(candidate, text), add_special_tokens=False)["input_ids"]
            inputs = torch.tensor([[*ids, tokenizer.eos_token_id]])
            labels = inputs.clone()
            labels[0, :prefix] = -100  # the text's likelihood, not the label's
            with torch.no_grad():
                losses.append(float(model(input_ids=inputs, labels=labels).loss))
        right += losses[0] < losses[1]
    return right / len(data)


@pytest.fixture(scope="module")
def tuned(tiny_base: Path, train: LabeledData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tuned")
    config = TuneConfig(
        model=str(tiny_base), epochs=20, lr=3e-2, max_length=64, batch_size=16, lora_rank=16,
        target_modules=["c_attn", "c_proj", "c_fc"], device="cpu",
    )  # fmt: skip
    result = tune_generator(train, config, out, progress=False)
    assert result.steps == 20 * 5 and result.texts == len(train)
    return out


def test_the_tuned_model_conditions_its_texts_on_the_label(
    tiny_base: Path, tuned: Path, train: LabeledData
) -> None:
    # Measured: 0.45 for the base (it never saw a label), 0.74 after tuning.
    base, after = _label_preference(tiny_base, train), _label_preference(tuned, train)
    print(f"label preference: base {base:.3f}, tuned {after:.3f}")
    assert after >= 0.65 and after >= base + 0.15
    info = json.loads((tuned / INFO_FILE).read_text(encoding="utf-8"))
    assert info["labels"] == dict.fromkeys(CLASSES, 40) and info["steps"] == 100
    assert info["format"] == "label: text" and info["steps_per_s"] > 0
    assert (tuned / "adapter" / "adapter_config.json").is_file()


def test_the_tuned_folder_generates_class_conditionally_through_the_engine(tuned: Path) -> None:
    """The merged folder is a base model for the transformers backend and the `tuned`
    strategy: per class, texts through the whole filter chain, with provenance."""
    backend = TransformersBackend(str(tuned), device="cpu", seed=0)
    assert backend.chat is False  # the tuned tokenizer carries no chat template
    config = GenerationConfig(
        strategy="tuned", per_class=6, texts_per_call=1, classes=list(CLASSES), max_tokens=30,
        temperature=1.0, concurrency=2, max_calls_per_class=60,
    )  # fmt: skip
    result = asyncio.run(
        generate_until_unique(backend, "tuned", load_card(CARD_PATH), None, config, False)
    )
    data = result.data
    assert data.class_counts() == dict.fromkeys(CLASSES, 6)
    assert set(data.frame["strategy"]) == {"tuned"}
    by_class = {c: set(data.frame.loc[data.frame["label"] == c, "text"]) for c in CLASSES}
    assert not by_class["joy"] & by_class["no_emotion"]
    assert all(report.calls >= 6 for report in result.classes.values())


def test_tune_generator_errors_are_one_line(tmp_path: Path, train: LabeledData) -> None:
    data = tmp_path / "train.csv"
    train.frame.to_csv(data, index=False)
    run = subprocess.run(
        [sys.executable, "-m", "synthmix", "tune-generator", "--data", str(data),
         "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == f"error: {tmp_path / 'missing'}: model folder not found\n"
    with pytest.raises(ConfigError, match=r"^epochs must be > 0, got 0$"):
        TuneConfig(model="x", epochs=0).check()
