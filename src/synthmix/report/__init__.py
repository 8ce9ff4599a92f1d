"""The run report: findings, tables, plots, HTML and Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.report.model import Report, ReportPaths
    from synthmix.report.sections.compare import Comparison, compare
    from synthmix.report.sections.usefulness import UsefulnessAnalysis, analyse
    from synthmix.report.write import build_report, write_report


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
