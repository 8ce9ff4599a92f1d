"""Exact, MinHash LSH and embedding near-duplicates, and near-copies of real texts."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".stages": (
        "DedupConfig",
        "DedupResult",
        "Deduplicator",
        "IncrementalDedup",
        "deduplicate",
        "build_stages",
        "write_dedup_report",
        "ExactDedup",
        "MinHashDedup",
        "EmbeddingDedup",
        "RealLeakCheck",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "DedupConfig",
    "DedupResult",
    "Deduplicator",
    "EmbeddingDedup",
    "ExactDedup",
    "IncrementalDedup",
    "MinHashDedup",
    "RealLeakCheck",
    "build_stages",
    "deduplicate",
    "write_dedup_report",
]
