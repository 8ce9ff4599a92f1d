"""Diversity of a set of texts: distinct-n, compression ratio, pairwise cosine, Vendi score,
self-BLEU."""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthmix.data.labeled import LABEL, LabeledData

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class NgramIndex:
    """All n-grams of a corpus as integer ids, text by text, so distinct-n of any subset of
    texts is a vectorised count."""

    ids: np.ndarray
    lengths: np.ndarray
    vocabulary: int

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], n: int) -> NgramIndex:
        codes: dict[tuple[str, ...], int] = {}
        ids: list[int] = []
        lengths = []
        for words in token_lists:
            grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            ids.extend(codes.setdefault(g, len(codes)) for g in grams)
            lengths.append(len(grams))
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(lengths), len(codes))

    def distinct(self, texts: np.ndarray) -> float:
        counts = np.bincount(texts, minlength=len(self.lengths))
        per_gram = np.repeat(counts, self.lengths)
        total = float(per_gram.sum())
        if total == 0:
            return float("nan")
        seen = np.zeros(self.vocabulary, dtype=bool)
        seen[self.ids[per_gram > 0]] = True
        return float(seen.sum()) / total


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over lowercased word tokens; n-grams do not cross texts.
    NaN when no text has n words."""
    index = NgramIndex.build([tokens(t) for t in texts], n)
    return index.distinct(np.arange(len(texts)))


def compression_ratio(texts: Sequence[str]) -> float:
    """gzip-compressed size / raw UTF-8 size of the texts joined by newlines.

    Higher = less compressible = less repetitive (more diverse); repeated phrasing drives it
    down. Note Shaib et al. (2024) report the inverse (raw / compressed). gzip only sees
    repeats within its 32 KB window (about 150 Russian sentences), so on large samples
    per-class values are the more sensitive ones.
    """
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return float("nan")
    return len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw)


def weighted_mean_pairwise_cosine(vectors: np.ndarray, weights: np.ndarray) -> float:
    """Mean cosine over pairs of distinct texts, each text counted `weights[i]` times; the
    weights let the bootstrap repeat a text without pairing it with itself."""
    weights = weights.astype(float)
    total = weights @ vectors
    self_terms = float((weights**2) @ np.einsum("ij,ij->i", vectors, vectors))
    pairs = weights.sum() ** 2 - float((weights**2).sum())
    if pairs <= 0:
        return float("nan")
    return (float(total @ total) - self_terms) / pairs


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    return weighted_mean_pairwise_cosine(vectors, np.ones(len(vectors)))


def vendi_score(vectors: np.ndarray) -> float:
    """exp(Shannon entropy of the eigenvalues of K/n), K the cosine-similarity matrix
    (Friedman & Dieng 2023): the effective number of distinct texts, 1 for identical texts
    and n for mutually orthogonal ones.

    K = X Xᵀ for unit rows shares its non-zero eigenvalues with Xᵀ X, so the smaller of the
    two Gram matrices is decomposed.
    """
    n = len(vectors)
    if n == 0:
        return float("nan")
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    gram = x @ x.T if n <= x.shape[1] else x.T @ x
    eigenvalues = np.clip(np.linalg.eigvalsh(gram / n), 0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def self_bleu_scores(texts: Sequence[str]) -> np.ndarray:
    """Sentence BLEU (sacrebleu, 0-100, effective order) of each text with all the others as
    references; high = texts repeat each other's phrasing."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    texts = list(texts)
    if len(texts) < 2:
        return np.array([])
    return np.array(
        [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    )


def self_bleu_per_text(data: LabeledData, per_class: int, seed: int) -> np.ndarray:
    """Self-BLEU of up to `per_class` sampled texts of each class, each scored against the
    other sampled texts of its own class (repeats that matter come from one prompt, one
    label); NaN for texts not sampled."""
    scores = np.full(len(data), np.nan)
    labels = data.frame[LABEL].to_numpy()
    rng = np.random.default_rng(seed)
    texts = data.texts
    for label in data.classes:
        pool = np.flatnonzero(labels == label)
        chosen = np.sort(rng.choice(pool, size=min(per_class, len(pool)), replace=False))
        if len(chosen) >= 2:
            scores[chosen] = self_bleu_scores([texts[i] for i in chosen])
    return scores
