"""Sentence encoders (offline USE-multilingual, sentence-transformers) and their cache."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.embeddings.encoder import (
        CachedEncoder,
        Encoder,
        SentenceTransformerEncoder,
        USEMultilingualEncoder,
        build_encoder,
    )


_EXPORTS = {
    ".encoder": (
        "Encoder",
        "USEMultilingualEncoder",
        "SentenceTransformerEncoder",
        "CachedEncoder",
        "build_encoder",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "CachedEncoder",
    "Encoder",
    "SentenceTransformerEncoder",
    "USEMultilingualEncoder",
    "build_encoder",
]
