"""Rule-based augmentation (EDA)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.augment.eda import AugmentConfig, augment, write_source


_EXPORTS = {
    ".eda": (
        "AugmentConfig",
        "augment",
        "write_source",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["AugmentConfig", "augment", "write_source"]
