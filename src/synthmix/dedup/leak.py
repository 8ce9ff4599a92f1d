"""Near-copies of real (training or test) texts among the synthetic ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from synthmix.dedup.base import Match, Stage, StageIndex
from synthmix.dedup.embedding import LazyEncoder, best_rows
from synthmix.dedup.forms import Forms, Shingles, jaccard, shingle
from synthmix.dedup.index import best_of
from synthmix.dedup.lsh import Backend, lsh_bands, new_index
from synthmix.embeddings.encoder import Encoder


class RealLeakCheck(Stage):
    """A synthetic text that near-copies a real (training or test) text: same normalised
    form, Jaccard >= minhash_threshold against any real text (LSH over the real texts), or,
    if embedding_threshold is set, cosine >= it. Dropped unless drop=False (then flagged)."""

    name = "real-leak"

    def __init__(
        self,
        real_texts: Sequence[str],
        minhash_threshold: float = 0.7,
        embedding_threshold: float | None = None,
        drop: bool = True,
        shingles: Shingles = "word",
        ngram: int | None = None,
        num_perm: int = 128,
        seed: int = 42,
        encoder: Encoder | None = None,
        backend: Backend = "auto",
    ) -> None:
        self.real = list(real_texts)
        self.minhash_threshold = minhash_threshold
        self.embedding_threshold = embedding_threshold
        self.drops = drop
        self.shingles: Shingles = shingles
        self.ngram = ngram
        self.num_perm, self.seed, self.backend = num_perm, seed, backend
        self.bands = lsh_bands(minhash_threshold, num_perm)
        self.encoder = LazyEncoder(encoder)
        self._built = False

    def _build(self) -> None:
        # Built once per stage and shared by every index (batch runs, all labels).
        if self._built:
            return
        forms = Forms.of(self.real)
        first = pd.Series(np.arange(len(self.real))).groupby(forms.codes).first().to_numpy()
        self._real_of_form = [self.real[i] for i in first]
        self._form_ids = {form: i for i, form in enumerate(forms.uniques)}
        self._sets = [frozenset(self._shingle(f)) for f in forms.uniques]
        self._index = new_index(self.backend, self.num_perm, self.bands, self.seed)
        self._index.add_many([sorted(s) if s else ["\x00"] for s in self._sets])
        self._vectors: np.ndarray | None = None
        if self.embedding_threshold is not None:
            self._vectors = self.encoder.encode(forms.uniques)
        self._built = True

    def _shingle(self, form: str) -> list[str]:
        return shingle(form, self.shingles, self.ngram)

    def check_forms(self, forms: Sequence[str]) -> list[Match | None]:
        """The real text each normalised form leaks, or None."""
        self._build()
        shingle_sets = [self._shingle(f) for f in forms]
        candidates = self._index.query_many([s or ["\x00"] for s in shingle_sets])
        found = [
            self._minhash_match(f, s, c)
            for f, s, c in zip(forms, shingle_sets, candidates, strict=True)
        ]
        if self._vectors is not None and self.embedding_threshold is not None:
            todo = [i for i, m in enumerate(found) if m is None]
            for i, hit in zip(todo, self._embedding_matches([forms[i] for i in todo]), strict=True):
                found[i] = hit
        return found

    def _minhash_match(self, form: str, shingles: list[str], keys: list[int]) -> Match | None:
        exact = self._form_ids.get(form)
        if exact is not None:
            return Match(self._real_of_form[exact], None, 1.0)
        if not shingles:
            return None
        mine = frozenset(shingles)
        best = best_of([(jaccard(mine, self._sets[k]), k) for k in keys], self.minhash_threshold)
        return None if best is None else Match(self._real_of_form[best[1]], None, best[0])

    def _embedding_matches(self, forms: list[str]) -> list[Match | None]:
        assert self._vectors is not None and self.embedding_threshold is not None
        if not forms or not len(self._vectors):
            return [None] * len(forms)
        rows, scores = best_rows(self.encoder.encode(forms), self._vectors)
        hits = (scores >= self.embedding_threshold).tolist()  # in float32, as before
        return [
            Match(self._real_of_form[row], None, score) if hit else None
            for row, score, hit in zip(rows.tolist(), scores.tolist(), hits, strict=True)
        ]

    def index(self) -> StageIndex:
        return LeakIndex(self)


class LeakIndex:
    """The real texts are the whole index: accepted texts never join it."""

    def __init__(self, stage: RealLeakCheck) -> None:
        self.stage = stage
        self._matches: list[Match | None] = []

    def open(self, texts: Sequence[str], keys: Sequence[int]) -> np.ndarray:
        forms = Forms.of(texts)
        per_form = self.stage.check_forms(forms.uniques)
        self._matches = [per_form[c] for c in forms.codes.tolist()]
        return np.array([m is not None for m in self._matches], dtype=bool)

    def match(self, position: int) -> Match | None:
        return self._matches[position]

    def accept(self, position: int) -> None:
        return None

    def close(self, kept: np.ndarray) -> None:
        self._matches = []
