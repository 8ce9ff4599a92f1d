"""Incremental use: "generate until N unique" asks, text by text, whether a new one survives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from synthmix.dedup.base import EXAMPLES, DedupStage, Duplicate, StageIndex
from synthmix.dedup.resolve import resolve_batch


@dataclass
class IncrementalStats:
    removed: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    contradictions: int = 0


class IncrementalDedup:
    """Streaming dedup: `add` says whether a new text survives every stage given all texts
    accepted so far, and if so accepts it; `add_many` does the same for a batch in one pass
    (one encoder call, one LSH query). Each call is one batch through the same stage indexes
    that `Deduplicator` uses, so fed the same texts in the same order, in whatever batches,
    it keeps exactly what `Deduplicator` keeps."""

    def __init__(self, stages: Sequence[DedupStage], across_labels: bool = True) -> None:
        self.stages = list(stages)
        self.across_labels = across_labels
        self.accepted: list[str] = []
        self.accepted_labels: list[str | None] = []
        self.stats = IncrementalStats()
        self._indexes: dict[str | None, list[StageIndex]] = {}
        self._labels: list[str | None] = []  # of every text offered: matches name them by key

    def add(self, text: str, label: str | None = None) -> bool:
        return self.add_many([text], [label])[0]

    def add_many(
        self, texts: Sequence[str], labels: Sequence[str | None] | None = None
    ) -> list[bool]:
        labels = [None] * len(texts) if labels is None else list(labels)
        start = len(self._labels)
        self._labels.extend(labels)
        groups: dict[str | None, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(None if self.across_labels else label, []).append(i)
        survived = [False] * len(texts)
        for group, members in groups.items():
            if group not in self._indexes:
                self._indexes[group] = [stage.index() for stage in self.stages]
            found: list[list[Duplicate]] = [[] for _ in self.stages]
            dropped_by = resolve_batch(
                self.stages,
                self._indexes[group],
                [texts[i] for i in members],
                [start + i for i in members],
                found,
            )
            for member, number in zip(members, dropped_by.tolist(), strict=True):
                survived[member] = number < 0
            self._record(found)
        for text, label, kept in zip(texts, labels, survived, strict=True):
            if kept:
                self.accepted.append(text)
                self.accepted_labels.append(label)
        return survived

    def _record(self, found: list[list[Duplicate]]) -> None:
        stats = self.stats
        for stage, duplicates in zip(self.stages, found, strict=True):
            for d in duplicates:
                stats.flagged[stage.name] = stats.flagged.get(stage.name, 0) + 1
                if stage.drops:
                    stats.removed[stage.name] = stats.removed.get(stage.name, 0) + 1
                    match = d.match.position
                    if match is not None and self._labels[match] != self._labels[d.position]:
                        stats.contradictions += 1
                examples = stats.examples.setdefault(stage.name, [])
                if len(examples) < EXAMPLES:
                    examples.append((d.text, d.match.text))

    def __len__(self) -> int:
        return len(self.accepted)
