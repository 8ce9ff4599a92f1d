"""Text helpers every layer uses: the normal form texts are compared in, one-line display, and
the language test that picks Russian or English templates."""

from __future__ import annotations

import re

NOT_WORD = re.compile(r"[^\w\s]+")
SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form two texts are compared in: a variant that differs from a real text only in
    case, spacing or punctuation is a copy of it, not a new example."""
    return SPACES.sub(" ", NOT_WORD.sub(" ", text.casefold())).strip()


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut at a word before `limit` characters (marked "…") if longer."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def is_russian(language: str) -> bool:
    """Whether a card's language code asks for the Russian templates, stop words and tools
    (`ru`, `ru-RU`, `RU`); every other language gets the English ones."""
    return language.lower().startswith("ru")
