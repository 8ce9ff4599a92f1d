"""TF-IDF features of text pairs (`data.pairs`: a pair travels as one joined string).

Each *block* is a word (1-2) + character (2-5) TF-IDF of one view of the pair, and the
blocks are stacked side by side, so a weight learned on a word of the second text is not
confused with the same word in the first:

- `text`: the first text (the review, the passage);
- `pair`: the second text (the aspect term, the question);
- `context`: the words of the first text within `window` words of where the second text
  occurs in it (matched word by word on a prefix, so "обслуживание" finds "обслуживания").
  This is the interaction of the two: a review holds several aspects, and the words near
  each one say what is said about *it*; a text-only model sees the same review for all.

For texts without a pair only the `text` block has content, and empty blocks are dropped at
fit time, so the vectorizer is also the plain single-text TF-IDF.

Each block is vectorised over its distinct strings (IDF counts a repeated review once) and
the rows are gathered back: in aspect and passage tasks the first text repeats on every
pair it is part of (a SentiRuEval review on 14 rows), and featurising it once per row was
most of the fit time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from synthmix.core.errors import ConfigError
from synthmix.data.pairs import split_pair

BLOCKS = ("text", "pair", "context")
_WORD = re.compile(r"\w+")


def pair_context(text: str, pair: str, window: int) -> str:
    """Words of `text` within `window` words of an occurrence of `pair` (all occurrences),
    the pair's own words left out; empty when the pair does not occur."""
    words = _WORD.findall(text.lower())
    stems = [w[: max(3, len(w) - 2)] for w in _WORD.findall(pair.lower())]
    if not words or not stems:
        return ""
    first = stems[0]
    keep: set[int] = set()
    own: set[int] = set()
    for i, word in enumerate(words):
        if word.startswith(first):
            span = range(i, min(len(words), i + len(stems)))
            own.update(span)
            keep.update(range(max(0, i - window), min(len(words), i + len(stems) + window)))
    return " ".join(words[i] for i in sorted(keep - own))


class PairVectorizer(TransformerMixin, BaseEstimator):
    """Stacked TF-IDF blocks of joined pairs (see the module docstring)."""

    def __init__(
        self,
        blocks: Sequence[str] = BLOCKS,
        window: int = 6,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        max_features: int | None = None,
    ) -> None:
        self.blocks = blocks
        self.window = window
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.max_features = max_features

    def views(self, texts: Sequence[str]) -> dict[str, list[str]]:
        split = [split_pair(t) for t in texts]
        views = {"text": [t for t, _ in split], "pair": [p for _, p in split]}
        if "context" in self.blocks:
            views["context"] = [pair_context(t, p, self.window) for t, p in split]
        return views

    def fit(self, texts: Sequence[str], y: Any = None) -> PairVectorizer:
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None, **_: Any) -> sp.csr_matrix:
        unknown = [b for b in self.blocks if b not in BLOCKS]
        if unknown or not self.blocks:
            raise ConfigError(f"blocks must be a non-empty list of {', '.join(BLOCKS)}")
        views = self.views(texts)
        self.vectorizers_: dict[str, FeatureUnion] = {}
        parts = []
        for block in self.blocks:
            docs = views[block]
            # A block with no word in any training text (no pairs given) has no vocabulary.
            if not any(_WORD.search(d) for d in docs):
                continue
            union = FeatureUnion(
                [
                    ("word", self._vectorizer("word", self.word_ngrams, self.min_df)),
                    # Character n-grams seen once are mostly typos (as in TfidfLogReg).
                    ("char", self._vectorizer("char_wb", self.char_ngrams, max(2, self.min_df))),
                ]
            )
            distinct, rows = np.unique(np.asarray(docs, dtype=object), return_inverse=True)
            try:
                parts.append(union.fit_transform(distinct.tolist())[rows.ravel()])
            except ValueError:  # too few texts for min_df: the block has no vocabulary
                continue
            self.vectorizers_[block] = union
        if not parts:
            raise ConfigError("no features: every text block is empty")
        return sp.hstack(parts, format="csr")

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        views = self.views(texts)
        parts = []
        for block, union in self.vectorizers_.items():
            distinct, rows = np.unique(np.asarray(views[block], dtype=object), return_inverse=True)
            parts.append(union.transform(distinct.tolist())[rows.ravel()])
        return sp.hstack(parts, format="csr")

    def _vectorizer(self, analyzer: str, ngrams: tuple[int, int], min_df: int) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=analyzer,
            ngram_range=tuple(ngrams),
            min_df=min_df,
            max_features=self.max_features,
            sublinear_tf=True,
            lowercase=True,
            dtype=np.float32,
        )
