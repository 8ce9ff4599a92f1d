"""The classifier zoo: sentence-vector classifiers and fine-tuned transformers, all behind
`synthmix.classifiers.tfidf.TextClassifier`. The transformer classes import torch/transformers only
when fitted, so importing this package is cheap."""

from synthmix.classifiers.embedding import (
    EmbeddingLogReg,
    EmbeddingMLP,
    clear_encoder_cache,
    register_encoder,
    shared_encoder,
)
from synthmix.classifiers.tfidf import (
    ClassifierConfig,
    TextClassifier,
    TfidfLogReg,
    available_classifiers,
    build_classifier,
    register_classifier,
)
from synthmix.classifiers.transformer import LoraClassifier, TransformerClassifier

__all__ = [
    "ClassifierConfig",
    "EmbeddingLogReg",
    "EmbeddingMLP",
    "LoraClassifier",
    "TextClassifier",
    "TfidfLogReg",
    "TransformerClassifier",
    "available_classifiers",
    "build_classifier",
    "clear_encoder_cache",
    "register_classifier",
    "register_encoder",
    "shared_encoder",
]
