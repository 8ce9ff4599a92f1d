"""Text pairs as one string: the experiment's mixing, sources and classifiers pass texts
around, so a pair travels as `text + PAIR_SEP + pair` and pair-aware classifiers split it.

The separator is U+241E (SYMBOL FOR RECORD SEPARATOR), which no ordinary text holds, and it is
a non-word character, so rule-based augmentation never moves it.
"""

from __future__ import annotations

from collections.abc import Sequence

PAIR_SEP = "\u241e"


def join_pair(text: str, pair: str) -> str:
    return f"{text}{PAIR_SEP}{pair}"


def split_pair(joined: str) -> tuple[str, str]:
    """(text, pair); a string without the separator is a text with an empty pair."""
    text, _, pair = joined.partition(PAIR_SEP)
    return text, pair


def join_pairs(texts: Sequence[str], pairs: Sequence[str]) -> list[str]:
    return [join_pair(t, p) for t, p in zip(texts, pairs, strict=True)]


def has_pairs(texts: Sequence[str]) -> bool:
    return any(PAIR_SEP in text for text in texts)
