"""The index the exact, MinHash and embedding stages share: texts grouped by form.

Within a batch a text duplicates a kept text of the same form or of a neighbouring form
(neighbours: similar enough under the stage's measure, best score first); across batches it
duplicates the best-scoring form kept in an earlier batch. The batch's own neighbours are
found vectorised (LSH banding, block matrix products); earlier batches are folded into the
stage's persistent structures only when a next batch opens, so one-shot batch use never pays
for an index it would throw away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from synthmix.dedup.base import Match
from synthmix.dedup.forms import Forms

Neighbours = dict[int, list[tuple[int, float]]]
_SMALL = 32


def neighbour_map(pairs: Sequence[tuple[int, int, float]]) -> Neighbours:
    """Symmetric neighbour lists of (a, b, score) pairs, best score first."""
    result: Neighbours = {}
    for a, b, score in pairs:
        result.setdefault(a, []).append((b, score))
        result.setdefault(b, []).append((a, score))
    for items in result.values():
        items.sort(key=lambda item: (-item[1], item[0]))
    return result


def best_of(scored: Sequence[tuple[float, int]], threshold: float) -> tuple[float, int] | None:
    """The highest (score, entry) at or above threshold, the earliest entry on a tie."""
    hits = [(s, k) for s, k in scored if s >= threshold]
    return min(hits, key=lambda hit: (-hit[0], hit[1])) if hits else None


class FormIndex:
    """Subclasses say how a batch is grouped (`_group`), which of its forms are neighbours
    (`_neighbours_of`), how a form scores against earlier batches (`_prior_matches`) and how
    kept forms join them (`_fold`)."""

    def __init__(self) -> None:
        self._prior: dict[str, tuple[str, int]] = {}  # normal form -> first kept text, key
        self._pending: np.ndarray | None = None  # kept mask of the last batch, not yet folded
        self._texts: Sequence[str] = ()
        self._keys: Sequence[int] = ()
        self._codes: list[int] = []
        self._forms = Forms(np.zeros(0, dtype=np.int64), [])
        self._neighbours: Neighbours = {}
        self._prior_hits: dict[int, Match] = {}
        self._kept: dict[int, int] = {}  # form code -> position of its first kept text

    # ------------------------------------------------------------------ stage-specific

    def _group(self, texts: Sequence[str]) -> Forms:
        return Forms.of(texts)

    def _normal_form(self, unique: str) -> str:
        """The normal form of one of `_group`'s keys."""
        return unique

    def _neighbours_of(self, forms: Forms) -> Neighbours:
        return {}

    def _prior_matches(self, forms: Forms, todo: list[int]) -> dict[int, Match]:
        """Best match in earlier batches for the forms `todo`, whose normal form is new."""
        return {}

    def _fold(self, codes: list[int], firsts: list[tuple[str, int]]) -> None:
        """Forms of the last batch (new normal forms, first kept text and key) join."""

    # --------------------------------------------------------------------- the protocol

    def open(self, texts: Sequence[str], keys: Sequence[int]) -> np.ndarray:
        if self._pending is not None:
            self._fold_pending(self._pending)
            self._pending = None
        self._texts, self._keys = texts, keys
        self._forms = forms = self._group(texts)
        self._codes = forms.codes.tolist()
        self._kept = {}
        self._neighbours = self._neighbours_of(forms)
        self._prior_hits = self._prior_hits_of(forms) if self._prior else {}
        if len(texts) < _SMALL:  # the incremental path: numpy's per-call cost dominates
            flagged = self._neighbours.keys() | self._prior_hits.keys()
            if len(forms.uniques) < len(texts):  # some form repeats
                flagged |= {code for code, n in Counter(self._codes).items() if n > 1}
            return np.array([code in flagged for code in self._codes], dtype=bool)
        has_match = np.zeros(len(forms.uniques), dtype=bool)
        has_match[list(self._neighbours)] = True
        has_match[list(self._prior_hits)] = True
        involved: np.ndarray = forms.repeated() | has_match[forms.codes]
        return involved

    def match(self, position: int) -> Match | None:
        form = self._codes[position]
        best = self._prior_hits.get(form) if self._prior_hits else None
        if best is not None and best.score >= 1.0:
            return best  # earlier batches hold earlier keys: they win a tie
        same = self._kept.get(form)
        if same is not None:
            return Match(self._texts[same], self._keys[same], 1.0)
        for other, score in self._neighbours.get(form, ()):
            if best is not None and score <= best.score:
                break
            kept = self._kept.get(other)
            if kept is not None:
                return Match(self._texts[kept], self._keys[kept], score)
        return best

    def accept(self, position: int) -> None:
        self._kept.setdefault(self._codes[position], position)

    def close(self, kept: np.ndarray) -> None:
        self._pending = np.asarray(kept, dtype=bool)

    # ---------------------------------------------------------------------- internals

    def _prior_hits_of(self, forms: Forms) -> dict[int, Match]:
        hits: dict[int, Match] = {}
        todo = []
        for code, unique in enumerate(forms.uniques):
            same = self._prior.get(self._normal_form(unique))
            if same is None:
                todo.append(code)
            else:
                hits[code] = Match(same[0], same[1], 1.0)
        if todo:
            hits.update(self._prior_matches(forms, todo))
        return hits

    def _fold_pending(self, kept: np.ndarray) -> None:
        new_codes: list[int] = []
        firsts: list[tuple[str, int]] = []
        seen: set[int] = set()
        for at in [i for i, k in enumerate(kept.tolist()) if k]:
            code = self._codes[at]
            if code in seen:
                continue
            seen.add(code)
            form = self._normal_form(self._forms.uniques[code])
            if form in self._prior:
                continue  # two un-collapsed keys of one normal form
            entry = (self._texts[at], int(self._keys[at]))
            self._prior[form] = entry
            new_codes.append(code)
            firsts.append(entry)
        self._fold(new_codes, firsts)
