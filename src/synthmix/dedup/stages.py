"""Deduplication of synthetic texts: exact, MinHash LSH, embedding and real-data leak stages.

Every stage has the same shape (datatrove style): `run(texts, keep)` takes the texts and a
mask of those still in play and returns a `StageResult` with the new mask, how many it
removed and (removed text, text it duplicates) pairs for the report.

Semantics are greedy "keep the first": a text is dropped when it duplicates a text that was
*kept* earlier, never one that was itself dropped. `Deduplicator` resolves all stages in one
pass with that rule, so the batch result is exactly what `IncrementalDedup.add` returns when
fed the same texts one by one, which the "generate until N unique" loop relies on. Near-dup
stages compare normalised forms (`synthmix.core.text.normalize`), so texts that differ only in
case, spacing or punctuation behave identically in every stage.

MinHash LSH only proposes candidates; a candidate pair counts as a duplicate when the exact
Jaccard similarity of the two shingle sets reaches the threshold. Exact verification is cheap
for short texts and makes the counts deterministic, where a 128-slot estimate wobbles by
about ±0.035 around 0.8.
"""

from __future__ import annotations

import codecs
import gc
import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from synthmix.core.errors import ConfigError
from synthmix.core.text import normalize
from synthmix.data.labeled import LabeledData
from synthmix.embeddings.encoder import OFFLINE_DEFAULT, Encoder, build_encoder

log = logging.getLogger("synthmix")

EXAMPLES = 5
Shingles = Literal["word", "char"]
Backend = Literal["auto", "rensa", "datasketch"]
# LSH bands are chosen so a pair exactly at the threshold becomes a candidate with at least
# this probability; pairs above the threshold are found more often still.
LSH_TARGET_RECALL = 0.9
_EMBED_BLOCK = 512


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Match:
    """The text a duplicate matches: an earlier kept text (`position` in the input, or the
    order of acceptance in incremental mode) or a real text (`position` None)."""

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


# ---------------------------------------------------------------------------- protocols


class PreparedStage(Protocol):
    """A stage's index over one batch; positions are indices into that batch."""

    involved: np.ndarray  # texts that can match or be matched; the rest are kept unseen

    def match(self, position: int) -> Match | None: ...

    def accept(self, position: int) -> None: ...


class LiveStage(Protocol):
    """A stage's index that grows one accepted text at a time."""

    def match(self, text: str) -> Match | None: ...

    def accept(self, text: str, key: int) -> None: ...


@runtime_checkable
class DedupStage(Protocol):
    name: str
    drops: bool

    def prepare(self, texts: Sequence[str]) -> PreparedStage: ...

    def live(self) -> LiveStage: ...

    def run(self, texts: Sequence[str], keep: np.ndarray) -> StageResult: ...


class _StageBase:
    name = "stage"
    drops = True

    def prepare(self, texts: Sequence[str]) -> PreparedStage:
        raise NotImplementedError

    def run(self, texts: Sequence[str], keep: np.ndarray) -> StageResult:
        _, results = resolve([self], texts, keep)  # type: ignore[list-item]
        return results[0]


# ------------------------------------------------------------------------ normal forms


# Same pattern as synthmix.core.text.normalize; tests check normal_parts against it.
_NOT_WORD = re.compile(r"[^\w\s]+")
# Texts per normalisation pass: its arrays take about 18 bytes per character.
_NORMALISE_CHUNK = 100_000


def normal_parts(texts: Sequence[str]) -> list[str]:
    """Per text, `normalize(text)` before whitespace is collapsed: `" ".join(part.split())`
    is the normal form and `part.split()` its words. One pass over the joined texts instead
    of three calls per text: on 100k short texts the per-call overhead is most of the
    normalisation time."""
    parts: list[str] = []
    for start in range(0, len(texts), _NORMALISE_CHUNK):
        chunk = texts[start : start + _NORMALISE_CHUNK]
        blanked = _fold_and_blank("\n".join(chunk)).split("\n")
        if len(blanked) != len(chunk):  # some text holds a newline
            blanked = [_NOT_WORD.sub(" ", t.casefold()) for t in chunk]
        parts.extend(blanked)
    return parts


def _fold_and_blank(text: str) -> str:
    """`_NOT_WORD.sub(" ", text.casefold())` as table lookups over the text's code points
    (the table holds only the few hundred a corpus uses): a third of the time of casefold
    + regex on 100k texts."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if not codes.size:
        return text
    present = np.flatnonzero(np.bincount(codes)).tolist()
    folded = [chr(code).casefold() for code in present]
    if any(len(form) != 1 for form in folded):
        # "ß" folds to "ss" and a table cannot lengthen text; casefold is idempotent, so the
        # folded text maps every character to one.
        return _fold_and_blank(text.casefold())
    table = np.arange(present[-1] + 1, dtype=np.uint32)
    table[present] = [ord(form) for form in folded]
    blank = np.zeros(len(table), dtype=bool)
    blank[present] = [_NOT_WORD.match(form) is not None for form in folded]
    is_blank = blank[codes]
    first_of_run = np.ones(len(codes), dtype=bool)
    first_of_run[1:] = ~(is_blank[1:] & is_blank[:-1])  # a run of them becomes one space
    mapped = np.where(is_blank, np.uint32(32), table[codes])[first_of_run]
    blanked: str = codecs.utf_32_le_decode(mapped.data, "surrogatepass", True)[0]
    return blanked


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Dedup allocates millions of small acyclic lists and strings; the generational
    collections they trigger cost about a fifth of a 100k-text run and free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Forms:
    """Texts grouped by normalised form: `codes[i]` is the form of text i."""

    codes: np.ndarray
    uniques: list[str]

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Forms:
        return cls.grouping([" ".join(part.split()) for part in normal_parts(texts)])

    @classmethod
    def grouping(cls, keys: Sequence[str]) -> _Forms:
        codes, uniques = pd.factorize(np.array(keys, dtype=object))
        return cls(codes=np.asarray(codes, dtype=np.int64), uniques=list(uniques))

    def repeated(self) -> np.ndarray:
        counts = np.bincount(self.codes, minlength=len(self.uniques))
        return counts[self.codes] > 1


class _FormIndex:
    """Prepared stage over forms: a text duplicates a kept text of the same form or of a
    neighbouring form (neighbours: symmetric, best score first)."""

    def __init__(
        self, texts: Sequence[str], forms: _Forms, neighbours: dict[int, list[tuple[int, float]]]
    ) -> None:
        self.texts = texts
        self.codes = forms.codes
        self.neighbours = neighbours
        has_neighbour = np.zeros(len(forms.uniques), dtype=bool)
        has_neighbour[list(neighbours)] = True
        self.involved = forms.repeated() | has_neighbour[forms.codes]
        self._kept: dict[int, int] = {}

    def match(self, position: int) -> Match | None:
        form = int(self.codes[position])
        same = self._kept.get(form)
        if same is not None:
            return Match(self.texts[same], same, 1.0)
        for other, score in self.neighbours.get(form, ()):
            kept = self._kept.get(other)
            if kept is not None:
                return Match(self.texts[kept], kept, score)
        return None

    def accept(self, position: int) -> None:
        self._kept.setdefault(int(self.codes[position]), position)


def _neighbour_map(
    pairs: Sequence[tuple[int, int, float]],
) -> dict[int, list[tuple[int, float]]]:
    result: dict[int, list[tuple[int, float]]] = {}
    for a, b, score in pairs:
        result.setdefault(a, []).append((b, score))
        result.setdefault(b, []).append((a, score))
    for items in result.values():
        items.sort(key=lambda item: (-item[1], item[0]))
    return result


# ------------------------------------------------------------------------------- exact


class ExactDedup(_StageBase):
    """Same text after casefolding, collapsing whitespace and stripping punctuation."""

    name = "exact"

    def prepare(self, texts: Sequence[str]) -> PreparedStage:
        return _FormIndex(texts, _Forms.of(texts), {})

    def live(self) -> LiveStage:
        return _LiveExact()


class _LiveExact:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int]] = {}

    def match(self, text: str) -> Match | None:
        hit = self._seen.get(normalize(text))
        return None if hit is None else Match(hit[0], hit[1], 1.0)

    def accept(self, text: str, key: int) -> None:
        self._seen.setdefault(normalize(text), (text, key))


# ---------------------------------------------------------------------------- shingles


def shingle(form: str, kind: Shingles = "word", ngram: int | None = None) -> list[str]:
    """Shingles of a normalised text: word n-grams (default unigrams: one changed word in a
    ten-word sentence keeps Jaccard above 0.8, bigrams would halve it) or character n-grams
    (default 5). A text shorter than one n-gram is its own single shingle."""
    if kind == "word":
        words = form.split()
        n = ngram or 1
        if n == 1 or len(words) <= n:
            return words if n == 1 else [" ".join(words)] if words else []
        return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if kind == "char":
        n = ngram or 5
        if len(form) <= n:
            return [form] if form else []
        return [form[i : i + n] for i in range(len(form) - n + 1)]
    raise ConfigError(f"shingles must be 'word' or 'char', got {kind!r}")


def jaccard(a: set[str] | frozenset[str], b: set[str] | frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def lsh_bands(threshold: float, num_perm: int, target: float = LSH_TARGET_RECALL) -> int:
    """Fewest bands (fewest false candidates) among divisors of num_perm that make a pair at
    `threshold` a candidate with probability >= target."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    for bands in (b for b in range(1, num_perm + 1) if num_perm % b == 0):
        rows = num_perm // bands
        if 1 - (1 - threshold**rows) ** bands >= target:
            return bands
    return num_perm


# --------------------------------------------------------------------- LSH backends


class _LSHIndex(Protocol):
    def add(self, key: int, shingles: list[str]) -> None: ...

    def add_many(self, shingle_sets: list[list[str]]) -> None: ...

    def query(self, shingles: list[str]) -> list[int]: ...

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]: ...


class _RensaIndex:
    def __init__(self, num_perm: int, bands: int, seed: int) -> None:
        from rensa import RMinHashLSH

        self.num_perm, self.seed = num_perm, seed
        self._lsh = RMinHashLSH(0.5, num_perm, bands)  # threshold unused: only banding

    def _sketch(self, shingles: list[str]) -> Any:
        from rensa import RMinHash

        sketch = RMinHash(self.num_perm, self.seed)
        sketch.update(shingles)
        return sketch

    def add(self, key: int, shingles: list[str]) -> None:
        self._lsh.insert(key, self._sketch(shingles))

    def add_many(self, shingle_sets: list[list[str]]) -> None:
        from rensa import RMinHash

        self._lsh.insert_many(RMinHash.from_token_sets(shingle_sets, self.num_perm, self.seed))

    def query(self, shingles: list[str]) -> list[int]:
        return list(self._lsh.query(self._sketch(shingles)))

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]:
        from rensa import RMinHash

        sketches = RMinHash.from_token_sets(shingle_sets, self.num_perm, self.seed)
        return [list(keys) for keys in self._lsh.query_all(sketches)]


class _DatasketchIndex:
    def __init__(self, num_perm: int, bands: int, seed: int) -> None:
        from datasketch import MinHashLSH

        self.num_perm, self.seed = num_perm, seed
        self._lsh = MinHashLSH(num_perm=num_perm, params=(bands, num_perm // bands))
        self._size = 0

    def _sketch(self, shingles: list[str]) -> Any:
        from datasketch import MinHash

        sketch = MinHash(num_perm=self.num_perm, seed=self.seed)
        sketch.update_batch([s.encode("utf-8") for s in shingles])
        return sketch

    def add(self, key: int, shingles: list[str]) -> None:
        self._lsh.insert(key, self._sketch(shingles), check_duplication=False)
        self._size = max(self._size, key + 1)

    def add_many(self, shingle_sets: list[list[str]]) -> None:
        start = self._size
        for offset, shingles in enumerate(shingle_sets):
            self.add(start + offset, shingles)

    def query(self, shingles: list[str]) -> list[int]:
        return [int(k) for k in self._lsh.query(self._sketch(shingles))]

    def query_many(self, shingle_sets: list[list[str]]) -> list[list[int]]:
        return [self.query(s) for s in shingle_sets]


def resolve_backend(backend: Backend = "auto") -> Literal["rensa", "datasketch"]:
    if backend in ("rensa", "datasketch"):
        return backend
    try:
        import rensa  # noqa: F401
    except ImportError:
        log.info("rensa not installed; MinHash falls back to datasketch (much slower)")
        return "datasketch"
    return "rensa"


def _new_index(backend: Backend, num_perm: int, bands: int, seed: int) -> _LSHIndex:
    if resolve_backend(backend) == "rensa":
        return _RensaIndex(num_perm, bands, seed)
    return _DatasketchIndex(num_perm, bands, seed)


def candidate_pairs(
    shingle_sets: list[list[str]], num_perm: int, bands: int, seed: int, backend: Backend
) -> list[tuple[int, int]]:
    """Pairs (a < b) sharing at least one LSH band. With rensa, one native pass over a
    digest matrix first flags the texts that collide with anything; only those get sketch
    objects and per-text candidate lists, which is most of the speed on mostly-unique data.
    The one-shot flag query leaves the index empty: 10x faster than inserting the matrix."""
    if resolve_backend(backend) == "rensa":
        from rensa import RMinHash, RMinHashLSH

        matrix = RMinHash.digest_matrix_from_token_sets(shingle_sets, num_perm, seed)
        flags = RMinHashLSH(0.5, num_perm, bands).query_duplicate_flags_matrix_one_shot(matrix)
        members = np.flatnonzero(np.fromiter(flags, dtype=bool, count=len(shingle_sets)))
        subset = [shingle_sets[i] for i in members]
    else:
        members = np.arange(len(shingle_sets))
        subset = shingle_sets
    index = _new_index(backend, num_perm, bands, seed)
    index.add_many(subset)
    pairs: list[tuple[int, int]] = []
    for a, keys in enumerate(index.query_many(subset)):
        pairs.extend((int(members[a]), int(members[b])) for b in keys if b > a)
    return pairs


# ------------------------------------------------------------------------------ MinHash


class MinHashDedup(_StageBase):
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

    def _shingle(self, form: str) -> list[str]:
        return shingle(form, self.shingles, self.ngram)

    def _shingle_parts(self, parts: list[str]) -> list[list[str]]:
        if self.shingles == "word" and (self.ngram or 1) == 1:
            return [part.split() for part in parts]  # inline: a call per text costs 10%
        return [self._shingle(" ".join(part.split())) for part in parts]

    def prepare(self, texts: Sequence[str]) -> PreparedStage:
        # Grouped by the un-collapsed part (cheaper than building normal forms); texts that
        # differ only in spacing land in different groups and meet again as Jaccard-1 pairs.
        forms = _Forms.grouping(normal_parts(texts))
        sets = self._shingle_parts(forms.uniques)
        nonempty = [i for i, s in enumerate(sets) if s]  # empty forms: left to ExactDedup
        pairs = candidate_pairs(
            [sets[i] for i in nonempty], self.num_perm, self.bands, self.seed, self.backend
        )
        verified = []
        frozen: dict[int, frozenset[str]] = {}
        for a, b in pairs:
            ua, ub = nonempty[a], nonempty[b]
            sa = frozen.setdefault(ua, frozenset(sets[ua]))
            sb = frozen.setdefault(ub, frozenset(sets[ub]))
            score = jaccard(sa, sb)
            if score >= self.threshold:
                verified.append((ua, ub, score))
        return _FormIndex(texts, forms, _neighbour_map(verified))

    def live(self) -> LiveStage:
        return _LiveMinHash(self)


class _LiveMinHash:
    def __init__(self, stage: MinHashDedup) -> None:
        self.stage = stage
        self._index = _new_index(stage.backend, stage.num_perm, stage.bands, stage.seed)
        self._forms: dict[str, int] = {}
        self._sets: list[frozenset[str]] = []
        self._first: list[tuple[str, int]] = []  # per indexed form: first accepted text, key

    def match(self, text: str) -> Match | None:
        form = normalize(text)
        known = self._forms.get(form)
        if known is not None:
            return Match(*self._first[known], 1.0)
        shingles = self.stage._shingle(form)
        if not shingles:
            return None
        mine = frozenset(shingles)
        scored = [(jaccard(mine, self._sets[k]), k) for k in self._index.query(shingles)]
        hits = [(s, k) for s, k in scored if s >= self.stage.threshold]
        if not hits:
            return None
        score, best = min(hits, key=lambda hit: (-hit[0], hit[1]))
        return Match(*self._first[best], score)

    def accept(self, text: str, key: int) -> None:
        form = normalize(text)
        shingles = self.stage._shingle(form)
        if form in self._forms or not shingles:
            return
        self._forms[form] = len(self._sets)
        self._index.add(len(self._sets), shingles)
        self._sets.append(frozenset(shingles))
        self._first.append((text, key))


# ---------------------------------------------------------------------------- embedding


def _similar_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (a < b) with cosine >= threshold, one block of rows at a time so memory stays
    at block x n floats (20k texts: 40 MB), not n x n."""
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), _EMBED_BLOCK):
        block = vectors[start : start + _EMBED_BLOCK] @ vectors[start:].T
        rows, cols = np.nonzero(np.triu(block, k=1) >= threshold)
        pairs.extend(
            (start + int(r), start + int(c), float(block[r, c]))
            for r, c in zip(rows, cols, strict=True)
        )
    return pairs


class _LazyEncoder:
    """Builds the default encoder on first use: loading USE takes seconds that a run
    without embedding stages should not pay."""

    def __init__(self, encoder: Encoder | None, name: str = OFFLINE_DEFAULT) -> None:
        self._encoder = encoder
        self._name = name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = build_encoder(self._name)
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self._encoder.encode(list(texts)), dtype=np.float32)


class EmbeddingDedup(_StageBase):
    """Near-duplicates by cosine similarity of sentence vectors of the normalised texts
    (USE multilingual offline by default, through a CachedEncoder)."""

    name = "embedding"

    def __init__(self, threshold: float = 0.92, encoder: Encoder | None = None) -> None:
        self.threshold = threshold
        self.encoder = _LazyEncoder(encoder)

    def prepare(self, texts: Sequence[str]) -> PreparedStage:
        forms = _Forms.of(texts)
        vectors = self.encoder.encode(forms.uniques)
        return _FormIndex(texts, forms, _neighbour_map(_similar_pairs(vectors, self.threshold)))

    def live(self) -> LiveStage:
        return _LiveEmbedding(self)


class _LiveEmbedding:
    def __init__(self, stage: EmbeddingDedup) -> None:
        self.stage = stage
        self._forms: dict[str, int] = {}
        self._first: list[tuple[str, int]] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._pending: dict[str, np.ndarray] = {}  # vector of the last text matched

    def _vector(self, form: str) -> np.ndarray:
        if form not in self._pending:
            self._pending = {form: self.stage.encoder.encode([form])[0]}
        return self._pending[form]

    def match(self, text: str) -> Match | None:
        form = normalize(text)
        known = self._forms.get(form)
        if known is not None:
            return Match(*self._first[known], 1.0)
        if not len(self._first):
            return None
        scores = self._matrix[: len(self._first)] @ self._vector(form)
        best = int(np.argmax(scores))
        if scores[best] < self.stage.threshold:
            return None
        return Match(*self._first[best], float(scores[best]))

    def accept(self, text: str, key: int) -> None:
        form = normalize(text)
        if form in self._forms:
            return
        vector = self._vector(form)
        size = len(self._first)
        if size == len(self._matrix):  # grow by doubling: amortised O(1) per text
            grown = np.zeros((max(16, 2 * size), len(vector)), dtype=np.float32)
            if size:
                grown[:size] = self._matrix[:size]
            self._matrix = grown
        self._matrix[size] = vector
        self._forms[form] = size
        self._first.append((text, key))


# ---------------------------------------------------------------------- real-data leaks


class RealLeakCheck(_StageBase):
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
        self.encoder = _LazyEncoder(encoder)
        self._built = False

    def _build(self) -> None:
        # Built once per stage and shared by batch runs and every live index (all labels).
        if self._built:
            return
        forms = _Forms.of(self.real)
        first = pd.Series(np.arange(len(self.real))).groupby(forms.codes).first().to_numpy()
        self._real_of_form = [self.real[i] for i in first]
        self._form_ids = {form: i for i, form in enumerate(forms.uniques)}
        self._sets = [frozenset(self._shingle(f)) for f in forms.uniques]
        self._index = _new_index(self.backend, self.num_perm, self.bands, self.seed)
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
        scored = [(jaccard(mine, self._sets[k]), k) for k in keys]
        hits = [(s, k) for s, k in scored if s >= self.minhash_threshold]
        if not hits:
            return None
        score, best = min(hits, key=lambda hit: (-hit[0], hit[1]))
        return Match(self._real_of_form[best], None, score)

    def _embedding_matches(self, forms: list[str]) -> list[Match | None]:
        assert self._vectors is not None and self.embedding_threshold is not None
        if not forms or not len(self._vectors):
            return [None] * len(forms)
        vectors = self.encoder.encode(forms)
        found: list[Match | None] = []
        for start in range(0, len(vectors), _EMBED_BLOCK):
            block = vectors[start : start + _EMBED_BLOCK] @ self._vectors.T
            for row in block:
                best = int(np.argmax(row))
                hit = row[best] >= self.embedding_threshold
                found.append(
                    Match(self._real_of_form[best], None, float(row[best])) if hit else None
                )
        return found

    def prepare(self, texts: Sequence[str]) -> PreparedStage:
        forms = _Forms.of(texts)
        per_form = self.check_forms(forms.uniques)
        return _LeakIndex([per_form[c] for c in forms.codes])

    def live(self) -> LiveStage:
        return _LiveLeak(self)


class _LeakIndex:
    def __init__(self, matches: list[Match | None]) -> None:
        self.matches = matches
        self.involved = np.array([m is not None for m in matches], dtype=bool)

    def match(self, position: int) -> Match | None:
        return self.matches[position]

    def accept(self, position: int) -> None:
        return None  # the real texts are the whole index; accepted texts do not join it


class _LiveLeak:
    def __init__(self, stage: RealLeakCheck) -> None:
        self.stage = stage

    def match(self, text: str) -> Match | None:
        return self.stage.check_forms([normalize(text)])[0]

    def accept(self, text: str, key: int) -> None:
        return None


# ------------------------------------------------------------------------------ resolve


def resolve(
    stages: Sequence[DedupStage], texts: Sequence[str], keep: np.ndarray | None = None
) -> tuple[np.ndarray, list[StageResult]]:
    """Greedy keep-first over all stages at once: walking the texts in order, a text is
    dropped by the first stage that matches it to an already kept text (or a real text)."""
    keep = np.ones(len(texts), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    with _gc_paused():
        return _resolve(stages, texts, keep)


def _resolve(
    stages: Sequence[DedupStage], texts: Sequence[str], keep: np.ndarray
) -> tuple[np.ndarray, list[StageResult]]:
    active = np.flatnonzero(keep)
    batch = (
        list(texts) if len(active) == len(texts) else list(map(texts.__getitem__, active.tolist()))
    )
    prepared = [stage.prepare(batch) for stage in stages]
    involved = np.zeros(len(batch), dtype=bool)
    for index in prepared:
        involved |= index.involved
    found: list[list[Duplicate]] = [[] for _ in stages]
    dropped_by = np.full(len(texts), -1, dtype=np.int64)
    for local in np.flatnonzero(involved).tolist():
        stage_number = _first_drop(stages, prepared, local, active, batch, found)
        if stage_number is None:
            for index in prepared:
                index.accept(local)
        else:
            dropped_by[active[local]] = stage_number
    return _stage_results(stages, keep, dropped_by, found)


def _first_drop(
    stages: Sequence[DedupStage],
    prepared: list[PreparedStage],
    local: int,
    active: np.ndarray,
    batch: list[str],
    found: list[list[Duplicate]],
) -> int | None:
    for number, (stage, index) in enumerate(zip(stages, prepared, strict=True)):
        hit = index.match(local)
        if hit is None:
            continue
        where = None if hit.position is None else int(active[hit.position])
        found[number].append(
            Duplicate(int(active[local]), batch[local], Match(hit.text, where, hit.score))
        )
        if stage.drops:
            return number
    return None


def _stage_results(
    stages: Sequence[DedupStage],
    keep: np.ndarray,
    dropped_by: np.ndarray,
    found: list[list[Duplicate]],
) -> tuple[np.ndarray, list[StageResult]]:
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


# ---------------------------------------------------------------------------- batch API


@dataclass
class DedupResult:
    """Kept rows, per-stage counts and examples, and the removed rows with their reasons."""

    data: LabeledData
    removed: pd.DataFrame  # the removed rows plus stage, duplicate_of, score, label_of_match
    stages: list[StageResult]
    total: int
    across_labels: bool
    contradictions: int  # removed texts whose match carries another label

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": len(self.data),
            "removed": self.total - len(self.data),
            "across_labels": self.across_labels,
            "contradictions": self.contradictions,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    def summary(self) -> str:
        scope = "across labels" if self.across_labels else "within each label"
        lines = [
            f"dedup ({scope}): {self.total} texts in, {len(self.data)} kept, "
            f"{self.total - len(self.data)} removed"
        ]
        for stage in self.stages:
            verb = f"removed {stage.removed}" if stage.removed or stage.flagged == 0 else ""
            extra = f"flagged {stage.flagged}" if stage.flagged != stage.removed else ""
            counts = ", ".join(part for part in (verb, extra) if part)
            lines.append(f"  {stage.name}: {counts} of {stage.checked}")
            for dup in stage.duplicates[:EXAMPLES]:
                lines.append(
                    f"    {_clip(dup.text)!r} ~ {_clip(dup.match.text)!r} ({dup.match.score:.2f})"
                )
        if self.contradictions:
            lines.append(
                f"  {self.contradictions} removed texts duplicate a kept text with another "
                "label (contradictions; the first label was kept)"
            )
        return "\n".join(lines)


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Deduplicator:
    """Runs stages over LabeledData: across all labels (a text repeated under another label
    is a contradiction: the first is kept and the case counted) or within each label."""

    def __init__(self, stages: Sequence[DedupStage], across_labels: bool = True) -> None:
        self.stages = list(stages)
        self.across_labels = across_labels

    def run(self, data: LabeledData) -> DedupResult:
        texts = data.texts
        labels = np.asarray(data.labels, dtype=object)
        groups = [np.ones(len(texts), dtype=bool)]
        if not self.across_labels:
            groups = [labels == label for label in data.classes]
        parts = [resolve(self.stages, texts, group) for group in groups]
        keep = np.logical_or.reduce([part[0] for part in parts])
        stages = [_merge([part[1][n] for part in parts]) for n in range(len(self.stages))]
        return DedupResult(
            data=data.subset(np.flatnonzero(keep)),
            removed=_removed_frame(data, stages, labels),
            stages=stages,
            total=len(texts),
            across_labels=self.across_labels,
            contradictions=_contradictions(stages, labels),
        )


def _merge(results: list[StageResult]) -> StageResult:
    if len(results) == 1:
        return results[0]
    duplicates = sorted((d for r in results for d in r.duplicates), key=lambda d: d.position)
    return StageResult(
        name=results[0].name,
        checked=sum(r.checked for r in results),
        removed=sum(r.removed for r in results),
        flagged=sum(r.flagged for r in results),
        duplicates=duplicates,
        keep=np.logical_or.reduce([r.keep for r in results]),
    )


def _contradictions(stages: list[StageResult], labels: np.ndarray) -> int:
    return sum(
        1
        for stage in stages
        for d in stage.duplicates
        if d.match.position is not None and labels[d.match.position] != labels[d.position]
    )


def _removed_frame(
    data: LabeledData, stages: list[StageResult], labels: np.ndarray
) -> pd.DataFrame:
    rows: dict[int, dict[str, Any]] = {}
    for stage in stages:
        for d in stage.duplicates:
            if d.position in rows or stage.keep[d.position]:
                continue  # a flag-only stage does not remove
            rows[d.position] = {
                "stage": stage.name,
                "duplicate_of": d.match.text,
                "duplicate_label": None if d.match.position is None else labels[d.match.position],
                "score": d.match.score,
            }
    positions = sorted(rows)
    frame = data.frame.iloc[positions].reset_index(drop=True)
    extra = pd.DataFrame([rows[p] for p in positions], columns=list(_REMOVED_COLUMNS))
    return pd.concat([frame, extra], axis=1)


_REMOVED_COLUMNS = ("stage", "duplicate_of", "duplicate_label", "score")


def deduplicate(
    data: LabeledData,
    stages: Sequence[DedupStage] | None = None,
    real: LabeledData | Sequence[str] | None = None,
    across_labels: bool = True,
) -> DedupResult:
    """Deduplicate `data` with `stages` (default: build_stages(DedupConfig(), real)). Given
    `real` and stages without a RealLeakCheck, a default leak check runs first."""
    if stages is None:
        stages = build_stages(DedupConfig(across_labels=across_labels), real)
    elif real is not None and not any(isinstance(s, RealLeakCheck) for s in stages):
        stages = [RealLeakCheck(_texts_of(real)), *stages]
    return Deduplicator(stages, across_labels=across_labels).run(data)


def _texts_of(real: LabeledData | Sequence[str]) -> list[str]:
    return real.texts if isinstance(real, LabeledData) else list(real)


# ---------------------------------------------------------------------- incremental API


@dataclass
class IncrementalStats:
    removed: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    contradictions: int = 0


class IncrementalDedup:
    """Streaming dedup for "generate until N unique": `add` says whether a new text survives
    every stage given all texts accepted so far, and if so accepts it. Fed the same texts in
    the same order, it keeps exactly what `Deduplicator` keeps."""

    def __init__(self, stages: Sequence[DedupStage], across_labels: bool = True) -> None:
        self.stages = list(stages)
        self.across_labels = across_labels
        self.accepted: list[str] = []
        self.accepted_labels: list[str | None] = []
        self.stats = IncrementalStats()
        self._live: dict[str | None, list[LiveStage]] = {}

    def _indexes(self, label: str | None) -> list[LiveStage]:
        group = None if self.across_labels else label
        if group not in self._live:
            self._live[group] = [stage.live() for stage in self.stages]
        return self._live[group]

    def add(self, text: str, label: str | None = None) -> bool:
        indexes = self._indexes(label)
        for stage, index in zip(self.stages, indexes, strict=True):
            hit = index.match(text)
            if hit is None:
                continue
            self._record(stage, text, label, hit)
            if stage.drops:
                return False
        key = len(self.accepted)
        for index in indexes:
            index.accept(text, key)
        self.accepted.append(text)
        self.accepted_labels.append(label)
        return True

    def _record(self, stage: DedupStage, text: str, label: str | None, hit: Match) -> None:
        stats = self.stats
        stats.flagged[stage.name] = stats.flagged.get(stage.name, 0) + 1
        if stage.drops:
            stats.removed[stage.name] = stats.removed.get(stage.name, 0) + 1
            if hit.position is not None and self.accepted_labels[hit.position] != label:
                stats.contradictions += 1
        examples = stats.examples.setdefault(stage.name, [])
        if len(examples) < EXAMPLES:
            examples.append((text, hit.text))

    def __len__(self) -> int:
        return len(self.accepted)


# ------------------------------------------------------------------------------- config


@dataclass
class DedupConfig:
    """Which stages run and how strict they are. Stage order: real-leak (when real texts
    are given), exact, minhash, embedding."""

    exact: bool = True
    minhash: bool = True
    minhash_threshold: float = 0.8
    num_perm: int = 128
    shingles: Shingles = "word"
    ngram: int | None = None
    embedding: bool = False
    embedding_threshold: float = 0.92
    encoder: str = OFFLINE_DEFAULT
    encoder_cache: str | None = None
    leak_check: bool = True
    leak_minhash_threshold: float = 0.7
    leak_embedding_threshold: float | None = None
    drop_leaks: bool = True
    across_labels: bool = True
    backend: Backend = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_stages(
    config: DedupConfig, real: LabeledData | Sequence[str] | None = None
) -> list[DedupStage]:
    """Stages for a config; the leak check runs first so a copy of a real text is never the
    "first occurrence" that its own near-duplicates are measured against."""
    needs_encoder = config.embedding or (
        real is not None and config.leak_check and config.leak_embedding_threshold is not None
    )
    encoder = build_encoder(config.encoder, config.encoder_cache) if needs_encoder else None
    stages: list[DedupStage] = []
    if real is not None and config.leak_check:
        stages.append(
            RealLeakCheck(
                _texts_of(real),
                minhash_threshold=config.leak_minhash_threshold,
                embedding_threshold=config.leak_embedding_threshold,
                drop=config.drop_leaks,
                shingles=config.shingles,
                ngram=config.ngram,
                num_perm=config.num_perm,
                encoder=encoder,
                backend=config.backend,
            )
        )
    if config.exact:
        stages.append(ExactDedup())
    if config.minhash:
        stages.append(
            MinHashDedup(
                config.minhash_threshold,
                config.num_perm,
                config.shingles,
                config.ngram,
                backend=config.backend,
            )
        )
    if config.embedding:
        stages.append(EmbeddingDedup(config.embedding_threshold, encoder))
    return stages


# ------------------------------------------------------------------------------- report


def write_dedup_report(
    result: DedupResult, path: str | Path, config: DedupConfig | None = None
) -> Path:
    """JSON: totals, per-stage counts with up to five examples each, and the config."""
    path = Path(path)
    payload = result.to_dict()
    if config is not None:
        payload["config"] = config.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


__all__ = [
    "EXAMPLES",
    "DedupConfig",
    "DedupResult",
    "DedupStage",
    "Deduplicator",
    "Duplicate",
    "EmbeddingDedup",
    "ExactDedup",
    "IncrementalDedup",
    "Match",
    "MinHashDedup",
    "RealLeakCheck",
    "StageResult",
    "build_stages",
    "deduplicate",
    "jaccard",
    "lsh_bands",
    "normal_parts",
    "resolve",
    "shingle",
    "write_dedup_report",
]
