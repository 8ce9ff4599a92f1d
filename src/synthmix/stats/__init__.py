"""Statistics shared by every layer: classification metrics, intervals, paired comparisons."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.stats.classification import Estimate, evaluate, mean_ci
    from synthmix.stats.intervals import Proportion, wilson
    from synthmix.stats.paired import (
        MultiLabelResampler,
        PairedComparison,
        TextResampler,
        Verdict,
        correct,
        paired_comparison,
    )


_EXPORTS = {
    ".classification": (
        "evaluate",
        "Estimate",
        "mean_ci",
    ),
    ".paired": (
        "MultiLabelResampler",
        "PairedComparison",
        "TextResampler",
        "Verdict",
        "correct",
        "paired_comparison",
    ),
    ".intervals": (
        "Proportion",
        "wilson",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "Estimate",
    "MultiLabelResampler",
    "PairedComparison",
    "Proportion",
    "TextResampler",
    "Verdict",
    "correct",
    "evaluate",
    "mean_ci",
    "paired_comparison",
    "wilson",
]
