"""A tiny randomly initialised BERT built offline, for tests, benchmarks and smoke runs.

`build_tiny_bert(texts, folder)` trains a WordPiece vocabulary on `texts` in memory and saves
a 2-layer, 32-wide BERT next to it like a hub model, so `model: <folder>` in a `transformer` or
`lora` classifier config loads it with nothing downloaded. It exercises the whole fine-tuning
path (tokenizer, Trainer, LoRA, early stopping) in seconds on a CPU; its F1 says nothing about
a pretrained model. Needs the `train` extra (torch, transformers, tokenizers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def build_tiny_bert(
    texts: Sequence[str],
    folder: str | Path,
    vocab_size: int = 1500,
    hidden_size: int = 32,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tokenizer trained on `texts` and a randomly initialised BERT to `folder`."""
    import torch
    from tokenizers import BertWordPieceTokenizer

    # BertTokenizerFast: a class in transformers 4, a lazily exported alias of BertTokenizer
    # that mypy cannot see in 5; both accept a `tokenizers` object.
    from transformers import (  # type: ignore[attr-defined]
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
    )

    folder = Path(folder)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=1)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    # Same weights for the same seed, without disturbing the caller's random state.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    return folder
