"""Labeled data: reading, validating, sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.data.labeled import (
        LabeledData,
        from_frame,
        load_labeled,
        read_frame,
        sample_per_class,
        split_train_test,
        stratified_fraction,
    )


_EXPORTS = {
    ".labeled": (
        "LabeledData",
        "load_labeled",
        "read_frame",
        "from_frame",
        "stratified_fraction",
        "sample_per_class",
        "split_train_test",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "LabeledData",
    "from_frame",
    "load_labeled",
    "read_frame",
    "sample_per_class",
    "split_train_test",
    "stratified_fraction",
]
