"""Near-duplicates by cosine similarity of sentence vectors of the normalised texts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmix.dedup.base import Match, Stage, StageIndex
from synthmix.dedup.forms import Forms
from synthmix.dedup.index import FormIndex, Neighbours, neighbour_map
from synthmix.embeddings.encoder import OFFLINE_DEFAULT, Encoder, build_encoder

EMBED_BLOCK = 512


def similar_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (a < b) with cosine >= threshold, one block of rows at a time so memory stays
    at block x n floats (20k texts: 40 MB), not n x n."""
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), EMBED_BLOCK):
        block = vectors[start : start + EMBED_BLOCK] @ vectors[start:].T
        rows, cols = np.nonzero(np.triu(block, k=1) >= threshold)
        pairs.extend(
            (start + int(r), start + int(c), float(block[r, c]))
            for r, c in zip(rows, cols, strict=True)
        )
    return pairs


def best_rows(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query vector, the reference row of highest cosine and that cosine, a block of
    queries at a time."""
    best = np.zeros(len(queries), dtype=np.int64)
    scores = np.zeros(len(queries), dtype=np.float32)
    for start in range(0, len(queries), EMBED_BLOCK):
        block = queries[start : start + EMBED_BLOCK] @ reference.T
        best[start : start + len(block)] = np.argmax(block, axis=1)
        scores[start : start + len(block)] = block.max(axis=1)
    return best, scores


class LazyEncoder:
    """Builds the default encoder on first use: loading USE takes seconds that a run
    without embedding stages should not pay."""

    def __init__(self, encoder: Encoder | None, name: str = OFFLINE_DEFAULT) -> None:
        self._encoder = encoder
        self._name = name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        if self._encoder is None:
            self._encoder = build_encoder(self._name)
        return np.asarray(self._encoder.encode(list(texts)), dtype=np.float32)


class EmbeddingDedup(Stage):
    """Near-duplicates by cosine similarity of sentence vectors of the normalised texts
    (USE multilingual offline by default, through a CachedEncoder)."""

    name = "embedding"

    def __init__(self, threshold: float = 0.92, encoder: Encoder | None = None) -> None:
        self.threshold = threshold
        self.encoder = LazyEncoder(encoder)

    def index(self) -> StageIndex:
        return EmbeddingIndex(self)


class EmbeddingIndex(FormIndex):
    def __init__(self, stage: EmbeddingDedup) -> None:
        super().__init__()
        self.stage = stage
        self._vectors = np.zeros((0, 0), dtype=np.float32)  # per form of the open batch
        self._matrix = np.zeros((0, 0), dtype=np.float32)  # kept forms of earlier batches
        self._size = 0
        self._prior_first: list[tuple[str, int]] = []

    def _neighbours_of(self, forms: Forms) -> Neighbours:
        # One encoder call per batch: USE spends about 0.5 s per call on 2 cores whatever
        # its size.
        self._vectors = self.stage.encoder.encode(forms.uniques)
        return neighbour_map(similar_pairs(self._vectors, self.stage.threshold))

    def _prior_matches(self, forms: Forms, todo: list[int]) -> dict[int, Match]:
        if not self._size:
            return {}
        rows, scores = best_rows(self._vectors[todo], self._matrix[: self._size])
        hits = (scores >= self.stage.threshold).tolist()  # in float32, as `similar_pairs`
        found: dict[int, Match] = {}
        for code, row, score, hit in zip(todo, rows.tolist(), scores.tolist(), hits, strict=True):
            if hit:
                text, key = self._prior_first[row]
                found[code] = Match(text, key, float(score))
        return found

    def _fold(self, codes: list[int], firsts: list[tuple[str, int]]) -> None:
        if not codes:
            return
        vectors = self._vectors[codes]
        needed = self._size + len(vectors)
        if needed > len(self._matrix):  # grow by doubling: amortised O(1) per text
            grown = np.zeros((max(16, 2 * needed), vectors.shape[1]), dtype=np.float32)
            if self._size:
                grown[: self._size] = self._matrix[: self._size]
            self._matrix = grown
        self._matrix[self._size : needed] = vectors
        self._size = needed
        self._prior_first.extend(firsts)
