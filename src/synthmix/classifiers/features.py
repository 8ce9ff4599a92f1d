"""N-gram counts computed once per text, TF-IDF weighted per fit.

Hashing the n-grams (instead of fitting a vocabulary) makes a text's counts independent of
every other text: they can be computed once for all texts an experiment sees, stored, and
shared by every cell. What a TF-IDF vectorizer learns from its training texts (which
n-grams pass `min_df`, their IDF, `max_features`) is then learned per fit from the fit's own
rows by `TfidfWeights`, so a cell still learns nothing from texts it may not see. The
result equals scikit-learn's `TfidfVectorizer(sublinear_tf=True)` on those rows, up to hash
collisions (2^20 buckets per analyzer; F1-macro within 0.002 on CEDR and RuSentiment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

# Buckets per analyzer. The width costs nothing per fit (columns are compacted to those a
# fit's rows use); 2^20 keeps collisions rare for the few hundred thousand n-grams of a
# 10k-text corpus.
HASH_FEATURES = 2**20


@dataclass(frozen=True)
class NgramSpec:
    """Which n-grams are counted: word n-grams and character n-grams within word bounds
    (`char_wb`), lowercased, each analyzer in its own block of `n_features` columns."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    n_features: int = HASH_FEATURES

    @property
    def key(self) -> str:
        """Names the folder a run keeps these counts in: other n-grams, other counts."""
        (w0, w1), (c0, c1) = self.word_ngrams, self.char_ngrams
        return f"word{w0}-{w1}_charwb{c0}-{c1}_h{self.n_features}"

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Raw n-gram counts, one row per text, columns [word block | char block]."""
        blocks = [
            _hasher("word", self.word_ngrams, self.n_features).transform(list(texts)),
            _hasher("char_wb", self.char_ngrams, self.n_features).transform(list(texts)),
        ]
        matrix = sp.hstack(blocks, format="csr", dtype=np.float32)
        matrix.sort_indices()
        return matrix


def _hasher(analyzer: str, ngrams: tuple[int, int], n_features: int) -> HashingVectorizer:
    return HashingVectorizer(
        analyzer=analyzer,
        ngram_range=(int(ngrams[0]), int(ngrams[1])),
        n_features=n_features,
        alternate_sign=False,  # counts, not signed hashes: IDF and min_df need them
        norm=None,
        lowercase=True,
        dtype=np.float32,
    )


@dataclass(frozen=True)
class TfidfWeights:
    """What a TF-IDF vectorizer learns from one fit's training rows: the columns it keeps
    (`columns`, global hashed ids), their IDF, and where the word block ends."""

    columns: np.ndarray
    idf: np.ndarray
    n_word: int
    width: int

    @classmethod
    def fit(
        cls,
        counts: sp.csr_matrix,
        n_features: int,
        min_df: tuple[int, int] = (1, 2),
        max_features: int | None = None,
    ) -> TfidfWeights:
        """Learn from `counts` (the fit's own rows only). `min_df` per block (word, char);
        `max_features` per block, keeping the most frequent n-grams, as a TfidfVectorizer
        per analyzer would."""
        width = 2 * n_features
        df = np.bincount(counts.indices, minlength=width)
        limits = np.where(np.arange(width) < n_features, min_df[0], max(1, min_df[1]))
        columns = np.flatnonzero(df >= limits)
        if max_features is not None:
            total = np.bincount(counts.indices, weights=counts.data, minlength=width)
            columns = np.concatenate(
                [
                    _most_frequent(block, total, max_features)
                    for block in _blocks(columns, n_features)
                ]
            )
        rows = counts.shape[0]
        # Smoothed IDF, as TfidfVectorizer's default: as if one extra text held every n-gram.
        idf = np.log((1 + rows) / (1 + df[columns])) + 1.0
        n_word = int(np.searchsorted(columns, n_features))
        return cls(columns=columns, idf=idf, n_word=n_word, width=width)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def transform(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear TF x IDF over the kept columns, each block L2-normalised per row (what
        a FeatureUnion of two TfidfVectorizers gives)."""
        remap = np.full(self.width, -1, dtype=np.int64)
        remap[self.columns] = np.arange(len(self.columns))
        mapped = remap[counts.indices]
        kept = mapped >= 0
        cumulative = np.concatenate([[0], np.cumsum(kept)])
        indptr = cumulative[counts.indptr]
        indices = mapped[kept]
        values = (1.0 + np.log(counts.data[kept].astype(np.float64))) * self.idf[indices]
        n_rows = counts.shape[0]
        row_block = np.repeat(np.arange(n_rows), np.diff(indptr)) * 2 + (indices >= self.n_word)
        norms = np.sqrt(np.bincount(row_block, weights=values * values, minlength=2 * n_rows))
        norms[norms == 0] = 1.0
        values /= norms[row_block]
        return sp.csr_matrix(
            (values, indices.astype(np.int32), indptr), shape=(n_rows, len(self.columns))
        )


def _blocks(columns: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    split = int(np.searchsorted(columns, n_features))
    return columns[:split], columns[split:]


def _most_frequent(columns: np.ndarray, total: np.ndarray, limit: int) -> np.ndarray:
    if len(columns) <= limit:
        return columns
    order = np.argsort(-total[columns], kind="stable")[:limit]
    return np.sort(columns[order])
