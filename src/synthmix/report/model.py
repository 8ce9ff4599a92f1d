"""What a report is made of: scores, cell summaries, findings, tables, plots, sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synthmix.experiment.mixing import (
    HALF_AND_HALF,
    REAL_ONLY,
    REAL_PLUS_EQUAL,
    SMALL_REAL_PLUS_COUNT,
    SMALL_REAL_PLUS_SYNTHETIC,
    SYNTHETIC_ONLY,
)
from synthmix.stats.paired import PairedComparison, Verdict

DASH = "—"
PLAN_ORDER = (
    REAL_ONLY,
    SYNTHETIC_ONLY,
    HALF_AND_HALF,
    REAL_PLUS_EQUAL,
    SMALL_REAL_PLUS_SYNTHETIC,
    SMALL_REAL_PLUS_COUNT,
)
FIGURE_NAMES = (
    "f1_vs_synthetic_ratio",
    "learning_curve",
    "per_class_f1",
    "f1_vs_synthetic_count",
    "classifiers_compared",
    "per_label_f1_difference",
)
DPI = 110


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    markdown: Path


@dataclass(frozen=True)
class Score:
    """A metric's mean over seeds with its 95% CI."""

    mean: float
    low: float
    high: float
    seeds: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def format(self) -> str:
        # One seed has no spread; "± 0.000" would claim a precision nobody measured.
        if self.seeds < 2:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} ± {self.half_width:.3f}"

    def overlaps(self, other: Score) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class CellSummary:
    key: str
    plan: str
    source: str | None
    real_fraction: float
    synthetic_ratio: float
    synthetic_count: int
    title: str
    seeds: int
    train_size: float
    shortfall: int
    f1_macro: Score
    f1_weighted: Score
    accuracy: Score
    per_class: dict[str, float]

    @property
    def is_reference(self) -> bool:
        return self.plan == REAL_ONLY and self.real_fraction >= 1

    @property
    def is_synthetic(self) -> bool:
        return self.source is not None

    @property
    def label(self) -> str:
        if self.source is None:
            return f"{self.title} (real data only)"
        return f"{self.source} — {self.title}"


@dataclass(frozen=True)
class Versus:
    """A cell's paired comparison with its baseline, corrected with the report's others."""

    baseline: CellSummary
    result: PairedComparison


@dataclass(frozen=True)
class Finding:
    """One sentence of the headline; the verdict, if any, colours it."""

    text: str
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: frozenset[int] = frozenset()  # right-aligned column indices


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    caption: str
    png: bytes


@dataclass
class Report:
    name: str
    findings: list[Finding]
    plots: list[Plot]
    ranking: Table
    run_tables: list[tuple[str, Table]]
    config_json: str
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    # Each mix's paired comparison with its baseline, by cell key (sections built later use it).
    versus: dict[str, Versus] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """A report section built elsewhere (quality metrics, usefulness), already rendered.
    `figures` (file name -> PNG) are what its Markdown links to in figures/; `write_report`
    writes them, so building a section never touches the run directory."""

    title: str
    html: str
    markdown: str
    figures: dict[str, bytes] = field(default_factory=dict)
