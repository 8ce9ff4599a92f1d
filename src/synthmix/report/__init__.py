"""The run report: findings, tables, plots, HTML and Markdown."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".write": (
        "write_report",
        "build_report",
    ),
    ".model": (
        "Report",
        "ReportPaths",
    ),
    ".sections.compare": (
        "compare",
        "Comparison",
    ),
    ".sections.usefulness": (
        "analyse",
        "UsefulnessAnalysis",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "Comparison",
    "Report",
    "ReportPaths",
    "UsefulnessAnalysis",
    "analyse",
    "build_report",
    "compare",
    "write_report",
]
