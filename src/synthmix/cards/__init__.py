"""Task cards (classes, descriptions, examples) and class keywords."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.cards.card import (
        ClassCard,
        TaskCard,
        draft_card,
        draft_card_yaml,
        load_card,
        parse_card,
    )
    from synthmix.cards.keywords import mine_keywords


_EXPORTS = {
    ".card": (
        "ClassCard",
        "TaskCard",
        "load_card",
        "parse_card",
        "draft_card",
        "draft_card_yaml",
    ),
    ".keywords": ("mine_keywords",),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "ClassCard",
    "TaskCard",
    "draft_card",
    "draft_card_yaml",
    "load_card",
    "mine_keywords",
    "parse_card",
]
