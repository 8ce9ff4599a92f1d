"""A tiny causal LM built offline for the tuned-generator tests: a byte-level BPE vocabulary of
the training sequences and a 2-layer GPT-2 briefly pretrained on unlabeled sentences (a weak
base model that never saw a label, standing in for a hub model)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from synthmix.data.labeled import LabeledData, sample_per_class
from synthmix.generation.tuning import training_text

EOS = "<|endoftext|>"
CLASSES = ("joy", "no_emotion")  # CEDR's tweets of joy vs. its mostly news-like neutral texts


@contextmanager
def one_torch_thread() -> Iterator[None]:
    # Two threads on a busy 2-core machine made one tiny step 30 times slower (1.6 s).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def short_texts(cedr_train: LabeledData) -> LabeledData:
    """40 short CEDR texts of each of `CLASSES`: what the tiny model is tuned on."""
    short = cedr_train.frame[cedr_train.frame["text"].str.len() < 90].reset_index(drop=True)
    return sample_per_class(LabeledData(short, "cedr"), dict.fromkeys(CLASSES, 40), seed=0)


def tiny_base_for(folder: Path, real: LabeledData, cedr_train: LabeledData) -> Path:
    """The tiny base model, its vocabulary learned from `real` as "label: text" sequences,
    pretrained on 600 unlabeled CEDR texts."""
    pairs = zip(real.texts, real.labels, strict=True)
    sequences = [training_text(label, text) for text, label in pairs]
    return build_tiny_lm(folder, sequences, cedr_train.texts[:600])


def build_tiny_lm(folder: Path, sequences: list[str], unlabeled: list[str]) -> Path:
    """Save a tiny GPT-2 in `folder`: its vocabulary learned from `sequences`, its weights
    pretrained on `unlabeled` texts."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(sequences, vocab_size=800, min_frequency=2, special_tokens=[EOS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_layer=2, n_embd=32, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    _pretrain(model, tokenizer, unlabeled)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


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


def label_preference(folder: Path, data: LabeledData, classes: tuple[str, str]) -> float:
    """Share of `data`'s texts the model in `folder` finds likelier after their own label
    than after the other class's."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    right = 0
    for text, label in zip(data.texts, data.labels, strict=True):
        losses = []
        for candidate in (label, next(c for c in classes if c != label)):
            prefix = len(tokenizer(f"{candidate}:", add_special_tokens=False)["input_ids"])
            ids = tokenizer(training_text(candidate, text), add_special_tokens=False)["input_ids"]
            inputs = torch.tensor([[*ids, tokenizer.eos_token_id]])
            labels = inputs.clone()
            labels[0, :prefix] = -100  # the text's likelihood, not the label's
            with torch.no_grad():
                losses.append(float(model(input_ids=inputs, labels=labels).loss))
        right += losses[0] < losses[1]
    return right / len(data)
