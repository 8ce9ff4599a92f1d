"""Greedy "keep the first" over all stages at once, written once for batch and incremental use.

Walking a batch in order, a text is dropped by the first dropping stage that matches it to an
already kept text (or a real text), never to a text that was itself dropped. A flag-only stage
records its match and lets the text go on to the next stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmix.dedup.base import DedupStage, Duplicate, StageIndex, StageResult
from synthmix.dedup.forms import gc_paused

_SMALL = 32


def resolve_batch(
    stages: Sequence[DedupStage],
    indexes: Sequence[StageIndex],
    texts: Sequence[str],
    keys: Sequence[int],
    found: list[list[Duplicate]],
) -> np.ndarray:
    """One batch through `indexes` (one per stage, holding what earlier batches kept).
    Returns, per text, the number of the stage that dropped it or -1 (kept); every match is
    appended to `found[stage number]`, positions given as keys."""
    if len(texts) < _SMALL:  # the incremental path: a collector pause costs more than it saves
        return _walk(stages, indexes, texts, keys, found)
    with gc_paused():
        return _walk(stages, indexes, texts, keys, found)


def _walk(
    stages: Sequence[DedupStage],
    indexes: Sequence[StageIndex],
    texts: Sequence[str],
    keys: Sequence[int],
    found: list[list[Duplicate]],
) -> np.ndarray:
    involved = indexes[0].open(texts, keys) if indexes else np.zeros(len(texts), dtype=bool)
    for index in indexes[1:]:
        involved |= index.open(texts, keys)
    dropped_by = np.full(len(texts), -1, dtype=np.int64)
    pairs = list(zip(stages, indexes, strict=True))
    for local in np.flatnonzero(involved).tolist():
        number = _first_drop(pairs, local, texts, keys, found)
        if number is None:
            for index in indexes:
                index.accept(local)
        else:
            dropped_by[local] = number
    kept = dropped_by < 0
    for index in indexes:
        index.close(kept)
    return dropped_by


def _first_drop(
    pairs: list[tuple[DedupStage, StageIndex]],
    local: int,
    texts: Sequence[str],
    keys: Sequence[int],
    found: list[list[Duplicate]],
) -> int | None:
    for number, (stage, index) in enumerate(pairs):
        hit = index.match(local)
        if hit is None:
            continue
        found[number].append(Duplicate(int(keys[local]), texts[local], hit))
        if stage.drops:
            return number
    return None


def resolve(
    stages: Sequence[DedupStage], texts: Sequence[str], keep: np.ndarray | None = None
) -> tuple[np.ndarray, list[StageResult]]:
    """The texts in `keep` (default: all) as one batch through fresh indexes: the keep mask
    after all stages, and what each stage did (positions are indices into `texts`)."""
    keep = np.ones(len(texts), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    active = np.flatnonzero(keep)
    keys: Sequence[int] = range(len(texts))
    batch = list(texts)
    if len(active) < len(texts):
        keys = active.tolist()
        batch = list(map(texts.__getitem__, keys))
    found: list[list[Duplicate]] = [[] for _ in stages]
    local = resolve_batch(stages, [s.index() for s in stages], batch, keys, found)
    dropped_by = np.full(len(texts), -1, dtype=np.int64)
    dropped_by[active] = local
    results = []
    current = keep.copy()
    for number, stage in enumerate(stages):
        checked = int(current.sum())
        current = current & (dropped_by != number)
        removed = checked - int(current.sum())
        results.append(
            StageResult(stage.name, checked, removed, len(found[number]), found[number], current)
        )
    return current, results
