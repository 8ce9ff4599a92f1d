"""Task cards (classes, descriptions, examples) and class keywords."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

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
