"""Sentence encoders (offline USE-multilingual, sentence-transformers) and their cache."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

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
