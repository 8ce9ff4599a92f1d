"""Exact, MinHash LSH and embedding near-duplicates, and near-copies of real texts.

Modules: `forms` (normal forms, shingles), `lsh` (rensa / datasketch back ends), `base` (the
stage protocol: one `StageIndex` with open/match/accept/close; matches and results), `index`
(the form index the built-in near-duplicate stages share), one module per stage (`exact`,
`minhash`, `embedding`, `leak`), `resolve` (the keep-first walk), `batch` (`Deduplicator`),
`incremental` (`IncrementalDedup`), `registry` (stages by name, plugins through the entry
point group `synthmix.dedup_stages`), `config` (`DedupConfig`, `build_stages`), `report`.
"""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".base": ("DedupStage", "Duplicate", "Match", "Stage", "StageIndex", "StageResult"),
    ".batch": ("DedupResult", "Deduplicator", "deduplicate"),
    ".config": ("DedupConfig", "build_stages"),
    ".embedding": ("EmbeddingDedup",),
    ".exact": ("ExactDedup",),
    ".forms": ("jaccard", "normal_parts", "shingle"),
    ".incremental": ("IncrementalDedup", "IncrementalStats"),
    ".leak": ("RealLeakCheck",),
    ".lsh": ("candidate_pairs", "lsh_bands", "resolve_backend"),
    ".minhash": ("MinHashDedup",),
    ".registry": ("StageContext", "available_stages", "register_stage"),
    ".report": ("write_dedup_report",),
    ".resolve": ("resolve",),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
