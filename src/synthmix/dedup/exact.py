"""Exact duplicates: the same normal form (case, spacing and punctuation aside)."""

from __future__ import annotations

from synthmix.dedup.base import Stage, StageIndex
from synthmix.dedup.index import FormIndex


class ExactDedup(Stage):
    """Same text after casefolding, collapsing whitespace and stripping punctuation."""

    name = "exact"

    def index(self) -> StageIndex:
        return FormIndex()
