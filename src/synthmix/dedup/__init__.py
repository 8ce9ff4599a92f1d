"""Exact, MinHash LSH and embedding near-duplicates, and near-copies of real texts.

Modules: `forms` (normal forms, shingles), `lsh` (rensa / datasketch back ends), `base` (the
stage protocol: one `StageIndex` with open/match/accept/close; matches and results), `index`
(the form index the built-in near-duplicate stages share), one module per stage (`exact`,
`minhash`, `embedding`, `leak`), `resolve` (the keep-first walk), `batch` (`Deduplicator`),
`incremental` (`IncrementalDedup`), `registry` (stages by name, plugins through the entry
point group `synthmix.dedup_stages`), `config` (`DedupConfig`, `build_stages`), `report`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.dedup.base import DedupStage, Duplicate, Match, Stage, StageIndex, StageResult
    from synthmix.dedup.batch import Deduplicator, DedupResult, deduplicate
    from synthmix.dedup.config import DedupConfig, build_stages
    from synthmix.dedup.embedding import EmbeddingDedup
    from synthmix.dedup.exact import ExactDedup
    from synthmix.dedup.forms import jaccard, normal_parts, shingle
    from synthmix.dedup.incremental import IncrementalDedup, IncrementalStats
    from synthmix.dedup.leak import RealLeakCheck
    from synthmix.dedup.lsh import candidate_pairs, lsh_bands, resolve_backend
    from synthmix.dedup.minhash import MinHashDedup
    from synthmix.dedup.registry import StageContext, available_stages, register_stage
    from synthmix.dedup.report import write_dedup_report
    from synthmix.dedup.resolve import resolve


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
__all__ = [
    "DedupConfig",
    "DedupResult",
    "DedupStage",
    "Deduplicator",
    "Duplicate",
    "EmbeddingDedup",
    "ExactDedup",
    "IncrementalDedup",
    "IncrementalStats",
    "Match",
    "MinHashDedup",
    "RealLeakCheck",
    "Stage",
    "StageContext",
    "StageIndex",
    "StageResult",
    "available_stages",
    "build_stages",
    "candidate_pairs",
    "deduplicate",
    "jaccard",
    "lsh_bands",
    "normal_parts",
    "register_stage",
    "resolve",
    "resolve_backend",
    "shingle",
    "write_dedup_report",
]
