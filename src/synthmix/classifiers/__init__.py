"""The classifier zoo: sentence-vector classifiers and fine-tuned transformers, all behind
`synthmix.classify.TextClassifier`. The transformer classes import torch/transformers only
when fitted, so importing this package is cheap."""

from synthmix.classifiers.embedding import (
    EmbeddingLogReg,
    EmbeddingMLP,
    clear_encoder_cache,
    register_encoder,
    shared_encoder,
)
from synthmix.classifiers.transformer import LoraClassifier, TransformerClassifier

__all__ = [
    "EmbeddingLogReg",
    "EmbeddingMLP",
    "LoraClassifier",
    "TransformerClassifier",
    "clear_encoder_cache",
    "register_encoder",
    "shared_encoder",
]
