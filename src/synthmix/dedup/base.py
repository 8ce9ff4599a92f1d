"""What every dedup stage shares: the one index protocol, matches, and per-stage results.

A stage (`DedupStage`) is a name, whether it drops what it matches (`drops`; a flag-only stage
counts and keeps), and `index()`: a fresh `StageIndex`, the stage's memory of the texts kept so
far. The same index serves the batch path (`Deduplicator`: one batch of every text) and the
incremental one (`IncrementalDedup`: a batch per arriving text or call's worth of texts); the
greedy "keep the first" walk over the batch is written once, in `synthmix.dedup.resolve`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

EXAMPLES = 5


@dataclass(frozen=True)
class Match:
    """The text a duplicate matches: an earlier kept text (`position`: its key, the position
    in the input in batch use, the order of arrival in incremental use) or a real text
    (`position` None)."""

    text: str
    position: int | None
    score: float


@dataclass(frozen=True)
class Duplicate:
    position: int
    text: str
    match: Match


@dataclass
class StageResult:
    """What one stage did. `keep` is the mask after this stage; `flagged` counts texts the
    stage matched, `removed` those it dropped (equal unless the stage only flags)."""

    name: str
    checked: int
    removed: int
    flagged: int
    duplicates: list[Duplicate]
    keep: np.ndarray

    def examples(self, limit: int = EXAMPLES) -> list[tuple[str, str]]:
        return [(d.text, d.match.text) for d in self.duplicates[:limit]]

    def to_dict(self, limit: int = EXAMPLES) -> dict[str, Any]:
        return {
            "name": self.name,
            "checked": self.checked,
            "removed": self.removed,
            "flagged": self.flagged,
            "examples": [
                {"text": d.text, "duplicate_of": d.match.text, "score": round(d.match.score, 4)}
                for d in self.duplicates[:limit]
            ],
        }


class StageIndex(Protocol):
    """One stage's index of the texts kept so far, fed one batch of candidates at a time.

    `open(texts, keys)` starts a batch (`keys[i]` is what a later match to text i reports as
    its position) and returns the mask of the texts that could match or be matched; the rest
    are kept without being asked, which is what keeps a 100k-text batch vectorised. Then, in
    order, for each text of that mask: `match(i)`, and `accept(i)` when no stage dropped it.
    `close(kept)` ends the batch with the mask of all its kept texts; later batches are
    matched against them (an index may defer that work until a next batch opens)."""

    def open(self, texts: Sequence[str], keys: Sequence[int]) -> np.ndarray: ...

    def match(self, position: int) -> Match | None: ...

    def accept(self, position: int) -> None: ...

    def close(self, kept: np.ndarray) -> None: ...


@runtime_checkable
class DedupStage(Protocol):
    name: str
    drops: bool

    def index(self) -> StageIndex: ...


class Stage(ABC):
    """Base of the built-in stages, for `run`: one stage on its own. A third-party stage
    needs only what `DedupStage` names."""

    name = "stage"
    drops = True

    @abstractmethod
    def index(self) -> StageIndex: ...

    def run(self, texts: Sequence[str], keep: np.ndarray | None = None) -> StageResult:
        from synthmix.dedup.resolve import resolve

        return resolve([self], texts, keep)[1][0]
