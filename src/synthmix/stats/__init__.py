"""Statistics shared by every layer: classification metrics and intervals."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".classification": (
        "evaluate",
        "Estimate",
        "mean_ci",
    ),
    ".intervals": (
        "Proportion",
        "wilson",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["Estimate", "Proportion", "evaluate", "mean_ci", "wilson"]
