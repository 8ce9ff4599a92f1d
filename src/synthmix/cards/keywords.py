"""Class-salient keywords: which words set a class apart from the others.

Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn
2008, "Fightin' Words", eq. 22): each class is compared with all other classes, the
whole corpus' word counts serve as the prior, and the score is the z-score of the
log-odds difference. Unlike raw frequency it ignores words common everywhere; unlike
plain log-odds it does not crown words seen twice. Russian words are lemmatised with
pymorphy3 so "кошки" and "кошку" count as "кошка".

The keywords feed the few-shot-with-keywords ("fskw") prompt strategy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from synthmix.core.text import is_russian
from synthmix.data.labeled import LabeledData

_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")

# Short lists on purpose: function words only; anything topical may be a keyword.
_RU_WORDS = """а без более бы был была были было быть в вам вас весь во вот все всё всего всех вы
    где да даже для до его ее её ей ему если есть еще ещё же за здесь и из или им их к как
    какой когда кто ли либо между меня мне мной мы на над надо наш не него нее неё нет ни
    них но ну о об однако он она они оно от очень по под при про раз с сам свой себя так
    также такой там те тем то тогда того тоже только том тот ту ты у уже хотя чего чем что
    чтобы чей эта эти это этот я"""
STOPWORDS_RU = frozenset(_RU_WORDS.split())
_EN_WORDS = """a about after all also am an and any are as at be been but by can could did do does
    for from had has have he her him his how i if in into is it its just me more my no not
    of on or our out she so some than that the their them then there these they this to too
    up us was we were what when which who will with would you your"""
STOPWORDS_EN = frozenset(_EN_WORDS.split())


def _stopwords(language: str) -> frozenset[str]:
    return STOPWORDS_RU if is_russian(language) else STOPWORDS_EN


def make_lemmatizer(language: str) -> Callable[[str], str]:
    """Lowercased lemma for Russian (pymorphy3, cached per word form), lowercased word
    otherwise."""
    if not is_russian(language):
        return str.lower
    import pymorphy3  # deferred: slow to set up, needed for Russian only

    analyzer: Any = pymorphy3.MorphAnalyzer()
    cache: dict[str, str] = {}

    def lemma(word: str) -> str:
        key = word.lower()
        if key not in cache:
            cache[key] = str(analyzer.parse(key)[0].normal_form).replace("ё", "е")
        return cache[key]

    return lemma


def tokens(text: str, lemma: Callable[[str], str], stopwords: frozenset[str]) -> list[str]:
    """Lemmas of the words of a text, without stop words and one-letter words."""
    out = []
    for word in _WORD.findall(text):
        form = lemma(word)
        if len(form) > 1 and form not in stopwords and word.lower() not in stopwords:
            out.append(form)
    return out


def log_odds_z(class_counts: np.ndarray, other_counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """z-scores of the log-odds ratio of each word, class vs. rest, with Dirichlet prior
    `prior` (pseudo-counts per word)."""
    a0 = prior.sum()
    n_class = class_counts.sum()
    n_other = other_counts.sum()
    class_odds = (class_counts + prior) / (n_class + a0 - class_counts - prior)
    other_odds = (other_counts + prior) / (n_other + a0 - other_counts - prior)
    delta = np.log(class_odds) - np.log(other_odds)
    variance = 1.0 / (class_counts + prior) + 1.0 / (other_counts + prior)
    z: np.ndarray = delta / np.sqrt(variance)
    return z


def _count(docs: Iterable[list[str]], index: dict[str, int]) -> np.ndarray:
    counts = np.zeros(len(index))
    for doc in docs:
        for word, n in Counter(doc).items():
            counts[index[word]] += n
    return counts


def mine_keywords(
    data: LabeledData, language: str = "ru", top_k: int = 20, min_count: int = 3
) -> dict[str, list[tuple[str, float]]]:
    """Top `top_k` keywords per class with their z-scores, best first. A keyword occurs
    at least `min_count` times in its class and is over-represented there (z > 0)."""
    lemma = make_lemmatizer(language)
    stopwords = _stopwords(language)
    docs = [tokens(t, lemma, stopwords) for t in data.texts]
    vocabulary = sorted({w for doc in docs for w in doc})  # sorted: stable tie order
    index = {w: i for i, w in enumerate(vocabulary)}
    labels = np.asarray(data.labels)
    total = _count(docs, index)
    result: dict[str, list[tuple[str, float]]] = {}
    for label in data.classes:
        in_class = _count((d for d, lab in zip(docs, labels, strict=True) if lab == label), index)
        z = log_odds_z(in_class, total - in_class, prior=total)
        eligible = np.flatnonzero((in_class >= min_count) & (z > 0))
        # Ties broken by word, so the order does not depend on numpy's sort.
        ranked = sorted(eligible, key=lambda i: (-z[i], vocabulary[i]))[:top_k]
        result[label] = [(vocabulary[i], float(z[i])) for i in ranked]
    return result
