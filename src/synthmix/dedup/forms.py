"""Normal forms and shingles: what the stages compare.

`synthmix.core.text.normalize` is the normal form every layer shares (dedup, generation,
personas); `normal_parts` computes it for a whole batch at once, and `Forms` groups a batch by
it, so a stage works once per distinct form instead of once per text.
"""

from __future__ import annotations

import codecs
import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from synthmix.core.errors import ConfigError
from synthmix.core.text import normalize

Shingles = Literal["word", "char"]

# Same pattern as synthmix.core.text.normalize; tests check normal_parts against it.
_NOT_WORD = re.compile(r"[^\w\s]+")
# Texts per normalisation pass: its arrays take about 18 bytes per character.
_NORMALISE_CHUNK = 100_000
# Below this many texts the per-text calls are cheaper than the table lookups' set-up (the
# incremental path normalises one text at a time).
_SMALL_BATCH = 32


def normal_parts(texts: Sequence[str]) -> list[str]:
    """Per text, `normalize(text)` before whitespace is collapsed: `" ".join(part.split())`
    is the normal form and `part.split()` its words. One pass over the joined texts instead
    of three calls per text: on 100k short texts the per-call overhead is most of the
    normalisation time."""
    if len(texts) < _SMALL_BATCH:
        return [_NOT_WORD.sub(" ", t.casefold()) for t in texts]
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


def collapse(part: str) -> str:
    """The normal form of a `normal_parts` entry."""
    return " ".join(part.split())


@contextmanager
def gc_paused() -> Iterator[None]:
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
class Forms:
    """Texts grouped by a key (their normal form, or the un-collapsed part): `codes[i]` is
    the group of text i, `uniques[code]` its key, numbered in order of first appearance."""

    codes: np.ndarray
    uniques: list[str]

    @classmethod
    def of(cls, texts: Sequence[str]) -> Forms:
        if len(texts) < _SMALL_BATCH:
            return cls.grouping([normalize(t) for t in texts])
        return cls.grouping([collapse(part) for part in normal_parts(texts)])

    @classmethod
    def grouping(cls, keys: Sequence[str]) -> Forms:
        if len(keys) < _SMALL_BATCH:  # pd.factorize costs ~50 µs whatever the size
            numbers: dict[str, int] = {}
            small = [numbers.setdefault(key, len(numbers)) for key in keys]
            return cls(codes=np.array(small, dtype=np.int64), uniques=list(numbers))
        codes, uniques = pd.factorize(np.array(keys, dtype=object))
        return cls(codes=np.asarray(codes, dtype=np.int64), uniques=list(uniques))

    def repeated(self) -> np.ndarray:
        counts = np.bincount(self.codes, minlength=len(self.uniques))
        return counts[self.codes] > 1


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


__all__ = [
    "Forms",
    "Shingles",
    "collapse",
    "gc_paused",
    "jaccard",
    "normal_parts",
    "normalize",
    "shingle",
]
