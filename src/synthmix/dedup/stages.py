"""Compatibility module: the names `synthmix.dedup.stages` held before dedup became a package
of modules. New code imports from `synthmix.dedup` (or the module that defines a name)."""

from __future__ import annotations

from synthmix.dedup.base import (
    EXAMPLES,
    DedupStage,
    Duplicate,
    Match,
    Stage,
    StageIndex,
    StageResult,
)
from synthmix.dedup.batch import Deduplicator, DedupResult, deduplicate
from synthmix.dedup.config import DedupConfig, build_stages
from synthmix.dedup.embedding import EmbeddingDedup
from synthmix.dedup.exact import ExactDedup
from synthmix.dedup.forms import Shingles, jaccard, normal_parts, shingle
from synthmix.dedup.incremental import IncrementalDedup, IncrementalStats
from synthmix.dedup.leak import RealLeakCheck
from synthmix.dedup.lsh import Backend, candidate_pairs, lsh_bands, resolve_backend
from synthmix.dedup.minhash import MinHashDedup
from synthmix.dedup.registry import StageContext, available_stages, register_stage
from synthmix.dedup.report import write_dedup_report
from synthmix.dedup.resolve import resolve

__all__ = [
    "EXAMPLES",
    "Backend",
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
    "Shingles",
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
