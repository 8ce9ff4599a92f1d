"""The classifier zoo behind one protocol (`synthmix.classifiers.base.TextClassifier`): TF-IDF,
sentence-vector classifiers and fine-tuned transformers, selectable by name through the
registry. The transformer classes import torch/transformers only when fitted, so importing this
package is cheap."""

from synthmix.classifiers.base import TextClassifier
from synthmix.classifiers.embedding import (
    EmbeddingLogReg,
    EmbeddingMLP,
    clear_encoder_cache,
    register_encoder,
    shared_encoder,
)
from synthmix.classifiers.registry import (
    ClassifierConfig,
    available_classifiers,
    build_classifier,
    check_classifier,
    register_classifier,
)
from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.classifiers.transformer import LoraClassifier, TransformerClassifier
from synthmix.classifiers.transformer_multilabel import (
    MultiLabelLoraClassifier,
    MultiLabelTransformerClassifier,
)

__all__ = [
    "ClassifierConfig",
    "EmbeddingLogReg",
    "EmbeddingMLP",
    "LoraClassifier",
    "MultiLabelLoraClassifier",
    "MultiLabelTransformerClassifier",
    "TextClassifier",
    "TfidfLogReg",
    "TransformerClassifier",
    "available_classifiers",
    "build_classifier",
    "check_classifier",
    "clear_encoder_cache",
    "register_classifier",
    "register_encoder",
    "shared_encoder",
]
