"""Near-duplicates by Jaccard similarity of shingle sets, candidates from MinHash LSH."""

from __future__ import annotations

from collections.abc import Sequence

from synthmix.dedup.base import Match, Stage, StageIndex
from synthmix.dedup.forms import Forms, Shingles, collapse, jaccard, normal_parts, shingle
from synthmix.dedup.index import FormIndex, Neighbours, best_of, neighbour_map
from synthmix.dedup.lsh import Backend, LSHIndex, candidate_pairs, lsh_bands, new_index


class MinHashDedup(Stage):
    """Near-duplicates by Jaccard similarity of shingle sets, candidates from MinHash LSH
    (rensa, or datasketch where rensa is missing), verified exactly."""

    name = "minhash"

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        shingles: Shingles = "word",
        ngram: int | None = None,
        seed: int = 42,
        backend: Backend = "auto",
        name: str | None = None,
    ) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingles: Shingles = shingles
        self.ngram = ngram
        self.seed = seed
        self.backend: Backend = backend
        self.bands = lsh_bands(threshold, num_perm)
        shingle("", shingles)  # reject a bad shingle kind now, not mid-run
        # Per-stage counts are keyed by name, so two MinHash stages need distinct names.
        self.name = name or ("minhash" if shingles == "word" else "minhash-char")

    def shingle_parts(self, parts: list[str]) -> list[list[str]]:
        """Shingles of `normal_parts` entries."""
        if self.shingles == "word" and (self.ngram or 1) == 1:
            return [part.split() for part in parts]  # inline: a call per text costs 10%
        return [shingle(collapse(part), self.shingles, self.ngram) for part in parts]

    def index(self) -> StageIndex:
        return MinHashIndex(self)


class MinHashIndex(FormIndex):
    def __init__(self, stage: MinHashDedup) -> None:
        super().__init__()
        self.stage = stage
        self._sets: list[list[str]] = []  # shingles per form of the open batch
        self._prior_sets: list[frozenset[str]] = []  # per indexed form of earlier batches
        self._prior_first: list[tuple[str, int]] = []
        self._lsh: LSHIndex | None = None

    def _group(self, texts: Sequence[str]) -> Forms:
        # Grouped by the un-collapsed part (cheaper than building normal forms); texts that
        # differ only in spacing land in different groups and meet again as Jaccard-1 pairs.
        return Forms.grouping(normal_parts(texts))

    def _normal_form(self, unique: str) -> str:
        return collapse(unique)

    def _neighbours_of(self, forms: Forms) -> Neighbours:
        stage = self.stage
        self._sets = sets = stage.shingle_parts(forms.uniques)
        nonempty = [i for i, s in enumerate(sets) if s]  # empty forms: left to ExactDedup
        pairs = candidate_pairs(
            [sets[i] for i in nonempty], stage.num_perm, stage.bands, stage.seed, stage.backend
        )
        verified = []
        frozen: dict[int, frozenset[str]] = {}
        for a, b in pairs:
            ua, ub = nonempty[a], nonempty[b]
            sa = frozen.setdefault(ua, frozenset(sets[ua]))
            sb = frozen.setdefault(ub, frozenset(sets[ub]))
            score = jaccard(sa, sb)
            if score >= stage.threshold:
                verified.append((ua, ub, score))
        return neighbour_map(verified)

    def _prior_matches(self, forms: Forms, todo: list[int]) -> dict[int, Match]:
        todo = [code for code in todo if self._sets[code]]
        if self._lsh is None or not todo:
            return {}
        found: dict[int, Match] = {}
        candidates = self._lsh.query_many([self._sets[code] for code in todo])
        for code, keys in zip(todo, candidates, strict=True):
            mine = frozenset(self._sets[code])
            best = best_of(
                [(jaccard(mine, self._prior_sets[k]), k) for k in keys], self.stage.threshold
            )
            if best is not None:
                found[code] = Match(*self._prior_first[best[1]], best[0])
        return found

    def _fold(self, codes: list[int], firsts: list[tuple[str, int]]) -> None:
        new = [(code, first) for code, first in zip(codes, firsts, strict=True) if self._sets[code]]
        if not new:
            return
        stage = self.stage
        if self._lsh is None:
            self._lsh = new_index(stage.backend, stage.num_perm, stage.bands, stage.seed)
        self._lsh.add_many([self._sets[code] for code, _ in new])
        self._prior_sets.extend(frozenset(self._sets[code]) for code, _ in new)
        self._prior_first.extend(first for _, first in new)
