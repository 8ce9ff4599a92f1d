"""The report of one experiment run: did synthetic data help, and which source and mix won.

`write_report(run_dir)` writes `report.html` (self-contained: plots are embedded as PNG data
URIs, so the file can be mailed or attached to a ticket on its own) and `report.md`, whose
plots are PNG files in `figures/` next to it. Every comparison uses the mean and 95% CI over
seeds from `results.summarize`; a difference counts as real only when the CIs do not overlap.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from synthmix.core.errors import SynthmixError
from synthmix.experiment.mixing import (
    HALF_AND_HALF,
    REAL_ONLY,
    REAL_PLUS_EQUAL,
    SMALL_REAL_PLANS,
    SMALL_REAL_PLUS_COUNT,
    SMALL_REAL_PLUS_SYNTHETIC,
    SYNTHETIC_ONLY,
)
from synthmix.experiment.results import (
    ResultsStore,
    classifier_labels,
    read_run_info,
    record_classifier,
    summarize,
)
from synthmix.experiment.runner import QUALITY_DIR

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
FIGURES_DIR = "figures"
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
)
_DPI = 110


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


class Verdict(Enum):
    HELPED = "synthetic data helped"
    WITHIN_NOISE = "synthetic data did not help: the difference is within noise (95% CIs overlap)"
    WORSE = "synthetic data did not help: it scored lower, beyond noise"


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


@dataclass(frozen=True)
class Section:
    """A report section built elsewhere (quality metrics, usefulness), already rendered."""

    title: str
    html: str
    markdown: str


def write_report(run_dir: str | Path) -> ReportPaths:
    """Write RUN_DIR/report.html, RUN_DIR/report.md and RUN_DIR/figures/*.png."""
    info = read_run_info(run_dir)
    records = ResultsStore(run_dir).records()
    if not records:
        raise SynthmixError(f"{run_dir}: no finished cells yet; run the experiment first")
    classifiers = classifier_labels(info, records)
    # Every section but "Classifiers compared" answers the synthetic-data question for one
    # classifier, the primary: a cell's mean over several classifiers would compare nothing.
    cells = cell_summaries([r for r in records if record_classifier(r) == classifiers[0]])
    report = build_report(info, cells)
    root = Path(run_dir)
    _write_figures(root / FIGURES_DIR, report.plots)
    if len(classifiers) > 1:
        from synthmix.report.compare import SECTION_TITLE, comparison_section

        report.notes.append(
            f"This run compares {len(classifiers)} classifiers ({', '.join(classifiers)}). "
            f"The headline, plots, ranking and quality sections are for the primary one, "
            f'{classifiers[0]}; the section "{SECTION_TITLE}" puts all of them side by side.'
        )
        report.sections.append(comparison_section(records, classifiers, info, root))
    report.sections.extend(_generation_sections(root))
    report.sections.extend(_quality_sections(root, cells))
    paths = ReportPaths(html=root / HTML_FILE, markdown=root / MARKDOWN_FILE)
    paths.html.write_text(render_html(report), encoding="utf-8")
    paths.markdown.write_text(render_markdown(report), encoding="utf-8")
    return paths


def cell_summaries(records: list[dict[str, Any]]) -> list[CellSummary]:
    rows = summarize(records).to_dict("records")
    return [_cell_from_row({str(key): value for key, value in row.items()}) for row in rows]


def _cell_from_row(row: dict[str, Any]) -> CellSummary:
    seeds = int(row["seeds"])

    def score(metric: str) -> Score:
        return Score(
            float(row[metric]), float(row[f"{metric}_low"]), float(row[f"{metric}_high"]), seeds
        )

    per_class = {
        column[3:-1]: float(value)
        for column, value in row.items()
        if column.startswith("f1[") and column.endswith("]") and not _is_nan(value)
    }
    source = row["source"]
    return CellSummary(
        key=str(row["cell_key"]),
        plan=str(row["plan"]),
        # pandas turns None into NaN when the column also holds source names.
        source=source if isinstance(source, str) else None,
        real_fraction=float(row["real_fraction"]),
        synthetic_ratio=float(row["synthetic_ratio"]),
        synthetic_count=int(row.get("synthetic_count", 0) or 0),
        title=str(row["title"]),
        seeds=seeds,
        train_size=float(row["train_size"]),
        shortfall=int(row["shortfall"]),
        f1_macro=score("f1_macro"),
        f1_weighted=score("f1_weighted"),
        accuracy=score("accuracy"),
        per_class=per_class,
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def build_report(info: dict[str, Any], cells: list[CellSummary]) -> Report:
    reference = find_reference(cells)
    rewrites = rule_based_sources(info)
    return Report(
        name=str(info.get("name", "experiment")),
        findings=headline(cells),
        plots=[
            plot
            for plot in (
                _ratio_plot(cells, reference),
                _count_plot(cells, reference),
                _learning_curve_plot(cells, reference),
                _per_class_plot(cells, reference),
            )
            if plot is not None
        ],
        ranking=ranking_table(cells, rewrites),
        run_tables=_run_tables(info),
        config_json=json.dumps(info.get("config", {}), ensure_ascii=False, indent=2),
        notes=_notes(cells, rewrites),
    )


def rule_based_sources(info: dict[str, Any]) -> frozenset[str]:
    """Sources made per cell by rewriting the cell's real texts (EDA and the like)."""
    sources = info.get("data", {}).get("sources", {})
    # A file source is described with its rows; a per-cell one has none of its own.
    return frozenset(name for name, described in sources.items() if "rows" not in described)


# --- comparisons -------------------------------------------------------------------------


def find_reference(cells: Sequence[CellSummary]) -> CellSummary | None:
    return next((cell for cell in cells if cell.is_reference), None)


def ranked(cells: Sequence[CellSummary]) -> list[CellSummary]:
    # The key breaks ties so that reruns of the report list cells in the same order.
    return sorted(cells, key=lambda cell: (-cell.f1_macro.mean, cell.key))


def verdict(candidate: Score, baseline: Score) -> Verdict:
    if candidate.overlaps(baseline):
        return Verdict.WITHIN_NOISE
    return Verdict.HELPED if candidate.mean > baseline.mean else Verdict.WORSE


def small_real_fraction(cells: Sequence[CellSummary]) -> float | None:
    """The real fraction of the small-real plan. A run has one; should an edited config have
    left several, the most measured one is shown and the rest still appear in the ranking."""
    fractions = Counter(c.real_fraction for c in cells if c.plan in SMALL_REAL_PLANS)
    return fractions.most_common(1)[0][0] if fractions else None


def real_only_cell(cells: Sequence[CellSummary], fraction: float) -> CellSummary | None:
    return next(
        (c for c in cells if c.plan == REAL_ONLY and math.isclose(c.real_fraction, fraction)),
        None,
    )


def _sources(cells: Sequence[CellSummary]) -> list[str]:
    return sorted({cell.source for cell in cells if cell.source is not None})


def _gap(cell: CellSummary, baseline: CellSummary | None, against: str) -> str:
    if baseline is None:
        return ""
    return f", {cell.f1_macro.mean - baseline.f1_macro.mean:+.3f} vs {against}"


def _describe(cell: CellSummary) -> str:
    return f"{cell.label} with F1-macro {cell.f1_macro.format()}"


# --- headline ----------------------------------------------------------------------------


def headline(cells: Sequence[CellSummary]) -> list[Finding]:
    reference = find_reference(cells)
    findings = [_reference_finding(reference)]
    findings.extend(_minimum_real_finding(cells, reference))
    findings.extend(_best_findings(cells, reference))
    if _sources(cells):
        findings.extend(_small_real_findings(cells))
        findings.extend(_source_ranking_findings(cells))
    else:
        findings.extend(_learning_curve_findings(cells, reference))
    return findings


def _reference_finding(reference: CellSummary | None) -> Finding:
    if reference is None:
        return Finding(
            "The all-real reference (100% real) has not finished yet, "
            "so no gap to it can be computed."
        )
    return Finding(
        f"All real data (the reference): F1-macro {reference.f1_macro.format()} "
        f"over {reference.seeds} seed{'' if reference.seeds == 1 else 's'}."
    )


def _minimum_real_finding(
    cells: Sequence[CellSummary], reference: CellSummary | None
) -> list[Finding]:
    """The smallest real fraction whose CI overlaps all-real: below it, more real data (or
    something else) is needed."""
    if reference is None:
        return []
    curve = sorted(
        (c for c in cells if c.plan == REAL_ONLY and not c.is_reference),
        key=lambda c: c.real_fraction,
    )
    enough = [c for c in curve if c.f1_macro.overlaps(reference.f1_macro)]
    if not curve:
        return []
    if not enough:
        largest = curve[-1]
        return [
            Finding(
                f"Minimum real data: every fraction up to {largest.real_fraction:.0%} scores "
                "below all real data beyond noise."
            )
        ]
    first = enough[0]
    return [
        Finding(
            f"Minimum real data: {first.real_fraction:.0%} of the real data is within noise of "
            f"all of it (F1-macro {first.f1_macro.format()})."
        )
    ]


def _best_findings(cells: Sequence[CellSummary], reference: CellSummary | None) -> list[Finding]:
    best = ranked(cells)[0]
    if best.is_reference:
        findings = [Finding("Best cell overall: all real data (the reference).")]
    else:
        findings = [_versus_reference("Best cell overall", best, reference)]
    best_synthetic = next((c for c in ranked(cells) if c.is_synthetic), None)
    if best_synthetic is not None and best_synthetic is not best:
        findings.append(
            _versus_reference("Best cell with synthetic data", best_synthetic, reference)
        )
    return findings


def _versus_reference(lead: str, cell: CellSummary, reference: CellSummary | None) -> Finding:
    text = f"{lead}: {_describe(cell)}{_gap(cell, reference, 'all real')}"
    if reference is None or not cell.is_synthetic:
        return Finding(text + ".")
    outcome = verdict(cell.f1_macro, reference.f1_macro)
    return Finding(f"{text}; compared with all real data, {outcome.value}.", outcome)


def _small_real_findings(cells: Sequence[CellSummary]) -> list[Finding]:
    fraction = small_real_fraction(cells)
    if fraction is None:
        return []
    baseline = real_only_cell(cells, fraction)
    per_source = _best_small_real_per_source(cells, fraction)
    regime = f"With only {fraction:.0%} of the real data"
    if baseline is None:
        return [Finding(f"{regime}: the {fraction:.0%}-real-only cell has not finished yet.")]
    findings = [Finding(f"{regime}, real data alone scores F1-macro {baseline.f1_macro.format()}.")]
    overall = ranked(list(per_source.values()))[0]
    against = f"{fraction:.0%} real alone"
    outcome = verdict(overall.f1_macro, baseline.f1_macro)
    findings.append(
        Finding(
            f"{regime}, {outcome.value}: the best mix is {_describe(overall)}"
            f"{_gap(overall, baseline, against)}.",
            outcome,
        )
    )
    if len(per_source) > 1:
        findings.extend(
            _small_real_source_finding(cell, baseline, against) for cell in per_source.values()
        )
    return findings


def _small_real_source_finding(cell: CellSummary, baseline: CellSummary, against: str) -> Finding:
    outcome = verdict(cell.f1_macro, baseline.f1_macro)
    return Finding(
        f"Source {cell.source}: best small-real mix {cell.title}, "
        f"F1-macro {cell.f1_macro.format()}{_gap(cell, baseline, against)}; {outcome.value}.",
        outcome,
    )


def _best_small_real_per_source(
    cells: Sequence[CellSummary], fraction: float
) -> dict[str, CellSummary]:
    best: dict[str, CellSummary] = {}
    for cell in ranked(cells):
        if (
            cell.plan in SMALL_REAL_PLANS
            and cell.source is not None
            and math.isclose(cell.real_fraction, fraction)
        ):
            best.setdefault(cell.source, cell)
    return best


def _source_ranking_findings(cells: Sequence[CellSummary]) -> list[Finding]:
    best: dict[str, CellSummary] = {}
    for cell in ranked(cells):
        if cell.source is not None:
            best.setdefault(cell.source, cell)
    if len(best) < 2:
        return []
    order = ", ".join(f"{source} ({cell.f1_macro.mean:.3f})" for source, cell in best.items())
    return [Finding(f"Sources ranked by their best cell: {order}.")]


def _learning_curve_findings(
    cells: Sequence[CellSummary], reference: CellSummary | None
) -> list[Finding]:
    findings = [Finding("No synthetic data in this run: only the real-data learning curve.")]
    curve = sorted((c for c in cells if c.plan == REAL_ONLY), key=lambda c: c.real_fraction)
    if curve and not curve[0].is_reference:
        smallest = curve[0]
        findings.append(
            Finding(
                f"With {smallest.real_fraction:.0%} of the real data: F1-macro "
                f"{smallest.f1_macro.format()}{_gap(smallest, reference, 'all real')}."
            )
        )
    return findings


def _notes(cells: Sequence[CellSummary], rewrites: frozenset[str] = frozenset()) -> list[str]:
    seeds = sorted({cell.seeds for cell in cells})
    rewritten = sorted({c.source for c in cells if _rewrites_all_real(c, rewrites) and c.source})
    notes = [
        "± is the half-width of the 95% Student-t confidence interval of the mean over seeds "
        f"(seeds per cell: {', '.join(str(s) for s in seeds)}). A mix counts as helping only "
        "when its mean is higher and the two intervals do not overlap."
    ]
    if seeds[0] < 2:
        notes.append("Cells with a single seed have no interval: treat their gaps as anecdotes.")
    if rewritten:
        notes.append(
            f"{', '.join(rewritten)}: rule-based rewrites of the real texts a cell trains on; "
            'its "synthetic only" cells rewrite all real training texts, so they do not show '
            "what a model trained without real data would score."
        )
    return notes


def _rewrites_all_real(cell: CellSummary, rewrites: frozenset[str]) -> bool:
    return cell.plan == SYNTHETIC_ONLY and cell.source in rewrites


# --- tables ------------------------------------------------------------------------------


def ranking_table(cells: Sequence[CellSummary], rewrites: frozenset[str] = frozenset()) -> Table:
    """`rewrites`: rule-based sources, whose synthetic-only cells get a note."""
    reference = find_reference(cells)
    rows = [
        _ranking_row(rank, cell, reference, _rewrites_all_real(cell, rewrites))
        for rank, cell in enumerate(ranked(cells), 1)
    ]
    headers = [
        "rank",
        "source",
        "mix",
        "F1-macro",
        "gap to all real",
        "weighted F1",
        "accuracy",
        "train size",
        "seeds",
        "note",
    ]
    return Table(headers, rows, numeric=frozenset({0, 3, 4, 5, 6, 7, 8}))


def _ranking_row(
    rank: int, cell: CellSummary, reference: CellSummary | None, rewrites_all_real: bool
) -> list[str]:
    if cell.is_reference:
        gap = "reference"
    elif reference is None:
        gap = DASH
    else:
        gap = f"{cell.f1_macro.mean - reference.f1_macro.mean:+.3f}"
    return [
        str(rank),
        cell.source if cell.source is not None else DASH,
        cell.title,
        cell.f1_macro.format(),
        gap,
        cell.f1_weighted.format(),
        cell.accuracy.format(),
        f"{cell.train_size:.0f}",
        str(cell.seeds),
        "rewrites of all real training texts" if rewrites_all_real else _shortfall_note(cell),
    ]


def _shortfall_note(cell: CellSummary) -> str:
    if cell.shortfall <= 0:
        return ""
    return f"source had {cell.shortfall} fewer synthetic texts than asked (worst seed)"


def _run_tables(info: dict[str, Any]) -> list[tuple[str, Table]]:
    tables = [("Configuration", _config_table(info)), ("Data", _data_table(info))]
    versions = info.get("versions")
    if isinstance(versions, dict) and versions:
        rows = [[str(package), str(version)] for package, version in sorted(versions.items())]
        tables.append(("Package versions", Table(["package", "version"], rows)))
    return tables


def _config_table(info: dict[str, Any]) -> Table:
    classifier = info.get("classifier")
    if isinstance(classifier, dict):
        params = json.dumps(classifier.get("params", {}), ensure_ascii=False, sort_keys=True)
        classifier_text = f"{classifier.get('name', '?')} {params}"
    else:
        classifier_text = DASH
    compared = info.get("classifiers")
    if isinstance(compared, list) and len(compared) > 1:
        classifier_text = "; ".join(
            f"{c.get('label')}: {c.get('name')} "
            + json.dumps(c.get("params", {}), ensure_ascii=False, sort_keys=True)
            for c in compared
            if isinstance(c, dict)
        )
    seeds = info.get("seeds")
    rows = [
        ["name", str(info.get("name", DASH))],
        ["classifier", classifier_text],
        ["seeds", ", ".join(str(s) for s in seeds) if isinstance(seeds, list) else DASH],
        ["started at", str(info.get("started_at", DASH))],
    ]
    return Table(["setting", "value"], rows)


def _data_table(info: dict[str, Any]) -> Table:
    data = info.get("data")
    data = data if isinstance(data, dict) else {}
    entries: list[tuple[str, Any]] = [("train", data.get("train")), ("test", data.get("test"))]
    sources = data.get("sources")
    if isinstance(sources, dict):
        entries.extend((f"synthetic: {name}", entry) for name, entry in sorted(sources.items()))
    rows = [_data_row(role, entry) for role, entry in entries if isinstance(entry, dict)]
    return Table(["role", "file", "rows", "class counts"], rows, numeric=frozenset({2}))


def _data_row(role: str, entry: dict[str, Any]) -> list[str]:
    counts = entry.get("class_counts")
    counts_text = (
        ", ".join(f"{label}: {n}" for label, n in counts.items())
        if isinstance(counts, dict)
        else DASH
    )
    return [role, str(entry.get("source", DASH)), str(entry.get("rows", DASH)), counts_text]


# --- plots -------------------------------------------------------------------------------


def mpl_text(text: str) -> str:
    # A "$" in a source or class name would switch matplotlib into mathtext.
    return text.replace("$", r"\$")


def _source_colours(cells: Sequence[CellSummary]) -> dict[str, str]:
    return {source: f"C{i % 10}" for i, source in enumerate(_sources(cells))}


def png_bytes(figure: Figure, dpi: int = _DPI) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _reference_band(axes: Any, reference: CellSummary | None) -> None:
    if reference is None:
        return
    score = reference.f1_macro
    axes.axhline(score.mean, color="black", linestyle="--", linewidth=1, label="all real")
    axes.axhspan(score.low, score.high, color="grey", alpha=0.15)


def _ratio_plot(cells: Sequence[CellSummary], reference: CellSummary | None) -> Plot | None:
    return _small_real_plot(
        cells,
        reference,
        plan=SMALL_REAL_PLUS_SYNTHETIC,
        amount=lambda c: c.synthetic_ratio,
        xlabel="synthetic ratio (synthetic texts per class ÷ full real class size)",
        name=FIGURE_NAMES[0],
        title="F1-macro vs amount of synthetic data",
    )


def _count_plot(cells: Sequence[CellSummary], reference: CellSummary | None) -> Plot | None:
    return _small_real_plot(
        cells,
        reference,
        plan=SMALL_REAL_PLUS_COUNT,
        amount=lambda c: float(c.synthetic_count),
        xlabel="synthetic texts added per class",
        name=FIGURE_NAMES[3],
        title="F1-macro vs synthetic texts per class",
    )


def _small_real_plot(
    cells: Sequence[CellSummary],
    reference: CellSummary | None,
    plan: str,
    amount: Callable[[CellSummary], float],
    xlabel: str,
    name: str,
    title: str,
) -> Plot | None:
    fraction = small_real_fraction(cells)
    if fraction is None or not any(c.plan == plan for c in cells):
        return None
    baseline = real_only_cell(cells, fraction)
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    for source, colour in _source_colours(cells).items():
        points = sorted(
            (
                c
                for c in cells
                if c.plan == plan and c.source == source and math.isclose(c.real_fraction, fraction)
            ),
            key=amount,
        )
        if not points:
            continue
        # The 0 point of every source's line is the same real-only cell: the lines share a start.
        series = ([baseline] if baseline is not None else []) + points
        xs = [0.0 if c is baseline else amount(c) for c in series]
        _line_with_band(axes, xs, [c.f1_macro for c in series], colour, mpl_text(source))
    _reference_band(axes, reference)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("F1-macro")
    axes.set_title(f"{fraction:.0%} real data plus synthetic")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return Plot(
        name,
        title,
        f"Each line is one source; x = 0 is {fraction:.0%} real data alone. "
        "Bands are 95% CIs over seeds; the dashed line is all real data.",
        png_bytes(figure),
    )


def _line_with_band(
    axes: Any, xs: list[float], scores: list[Score], colour: str, label: str
) -> None:
    axes.plot(xs, [s.mean for s in scores], marker="o", color=colour, label=label)
    axes.fill_between(
        xs, [s.low for s in scores], [s.high for s in scores], color=colour, alpha=0.2
    )


def _learning_curve_plot(
    cells: Sequence[CellSummary], reference: CellSummary | None
) -> Plot | None:
    curve = sorted((c for c in cells if c.plan == REAL_ONLY), key=lambda c: c.real_fraction)
    if not curve:
        return None
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    xs = [c.real_fraction * 100 for c in curve]
    _line_with_band(axes, xs, [c.f1_macro for c in curve], "C0", "real only")
    _reference_band(axes, reference)
    axes.set_xlabel("real training data used (%)")
    axes.set_ylabel("F1-macro")
    axes.set_title("Learning curve on real data")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return Plot(
        FIGURE_NAMES[1],
        "Learning curve: F1-macro vs real data used",
        "How much the classifier gains from more real data; bands are 95% CIs over seeds.",
        png_bytes(figure),
    )


def _heatmap_rows(cells: Sequence[CellSummary], reference: CellSummary | None) -> list[CellSummary]:
    mixes = sorted(
        (c for c in cells if c.plan != REAL_ONLY),
        key=lambda c: (
            c.source or "",
            PLAN_ORDER.index(c.plan) if c.plan in PLAN_ORDER else len(PLAN_ORDER),
            c.synthetic_ratio,
            c.synthetic_count,
            c.key,
        ),
    )
    # The small real fraction alone is the row the small-real mixes must beat.
    fraction = small_real_fraction(cells)
    small_alone = real_only_cell(cells, fraction) if fraction is not None else None
    baselines = [reference] if reference is not None else []
    if small_alone is not None and small_alone is not reference:
        baselines.append(small_alone)
    return baselines + mixes


def _per_class_plot(cells: Sequence[CellSummary], reference: CellSummary | None) -> Plot | None:
    rows = _heatmap_rows(cells, reference)
    classes = list(dict.fromkeys(label for cell in rows for label in cell.per_class))
    if not rows or not classes:
        return None
    values = np.array([[cell.per_class.get(label, np.nan) for label in classes] for cell in rows])
    figure = Figure(figsize=(2.2 + 1.1 * len(classes), 1.2 + 0.45 * len(rows)))
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    _annotate(axes, values)
    axes.set_xticks(range(len(classes)), [mpl_text(c) for c in classes], rotation=30, ha="right")
    labels = ["all real (reference)" if c.is_reference else mpl_text(c.label) for c in rows]
    axes.set_yticks(range(len(rows)), labels)
    axes.set_title("Per-class F1 (mean over seeds)")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    return Plot(
        FIGURE_NAMES[2],
        "Per-class F1",
        "Which classes each mix helps or hurts, against all real data (first row) and the small "
        "real fraction alone (second row).",
        png_bytes(figure),
    )


def _annotate(axes: Any, values: np.ndarray) -> None:
    for (row, column), value in np.ndenumerate(values):
        if math.isnan(value):
            continue
        # Viridis is dark at the low end, so low values need light text to stay legible.
        colour = "white" if value < 0.5 else "black"
        axes.text(column, row, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)


def _write_figures(directory: Path, plots: Sequence[Plot]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    produced = {plot.name for plot in plots}
    for name in FIGURE_NAMES:
        if name not in produced:
            # A figure left by an earlier report would show data this report no longer has.
            (directory / f"{name}.png").unlink(missing_ok=True)
    for plot in plots:
        (directory / f"{plot.name}.png").write_bytes(plot.png)


# --- quality of sources --------------------------------------------------------------------

QUALITY_COLUMNS = (
    ("distinct_2", "distinct-2"),
    ("self_bleu", "self-BLEU"),
    ("vendi_score", "Vendi"),
    ("mauve", "MAUVE"),
    ("frechet_distance", "Fréchet"),
    ("c2st_auc", "C2ST AUC"),
    ("real_to_synth_accuracy", "real→synth acc."),
    ("leak_share", "leak share"),
)


GENERATION_COLUMNS = (
    ("calls", "calls"),
    ("cached_calls", "cached"),
    ("texts_returned", "returned"),
    ("unique", "unique"),
    ("kept", "kept"),
    ("duplicates", "exact dup."),
    ("near_duplicates", "near dup."),
    ("leaks", "real leaks"),
    ("rejected", "degenerate"),
    ("truncated", "cut off"),
    ("parse_failures", "parse fail."),
)


def _generation_sections(root: Path) -> list[Section]:
    """How each LLM source was made and what dedup removed, from RUN_DIR/sources.json."""
    from synthmix.experiment.source_stats import read_source_stats

    stats = read_source_stats(root)
    if not stats:
        return []
    headers = ["source", *(title for _, title in GENERATION_COLUMNS), "yield", "cost"]
    rows = [
        [name]
        + [str(int(totals.get(key, 0))) for key, _ in GENERATION_COLUMNS]
        + [f"{float(totals.get('yield', 0.0)):.2f}", f"{float(totals.get('cost', 0.0)):.4f}"]
        for name, totals in stats.items()
    ]
    table = Table(headers, rows, frozenset(range(1, len(headers))))
    note = (
        "What generating each source took: LLM calls (answered from the cache), texts the "
        "model returned, distinct texts among them (unique; the last batch of a class can "
        "overshoot its target, so unique can exceed kept), texts kept in the source, and "
        "what was dropped: exact repeats, near-duplicates of kept texts (MinHash), "
        "near-copies of real texts (privacy leaks), degenerate outputs, and the last text of "
        "answers cut off at max_tokens. Yield = unique / returned. Sources made outside "
        "synthmix have no row."
    )
    return [_table_section("Generation and deduplication per source", note, table)]


def _quality_sections(root: Path, cells: Sequence[CellSummary]) -> list[Section]:
    """Sections for RUN_DIR/quality/*.json, written by `synthmix experiment --quality` or
    `synthmix quality ... --out RUN_DIR/quality/<source>.json`."""
    from synthmix.report.usefulness import load_quality_dir, usefulness_section

    folder = root / QUALITY_DIR
    quality = load_quality_dir(folder) if folder.is_dir() else {}
    if not quality:
        return []
    sections = [_quality_table_section(quality)]
    plan, amount = _usefulness_cell(cells)
    if plan is not None:
        useful = usefulness_section(root, quality, plan=plan, ratio=amount)
        for name, png in useful.figures.items():
            (root / FIGURES_DIR / name).write_bytes(png)
        sections.append(
            Section("Which quality metric predicts usefulness?", useful.html, useful.markdown)
        )
    return sections


def _usefulness_cell(cells: Sequence[CellSummary]) -> tuple[str | None, float]:
    """The small-real cell every source shares: the fixed-count plan at its largest count if
    the run has one, else the ratio plan at its largest ratio."""
    counts = [c.synthetic_count for c in cells if c.plan == SMALL_REAL_PLUS_COUNT]
    if counts:
        return SMALL_REAL_PLUS_COUNT, float(max(counts))
    ratios = [c.synthetic_ratio for c in cells if c.plan == SMALL_REAL_PLUS_SYNTHETIC]
    if ratios:
        return SMALL_REAL_PLUS_SYNTHETIC, max(ratios)
    return None, 0.0


def _quality_table_section(quality: dict[str, dict[str, Any]]) -> Section:
    headers = ["source", "texts", *(title for _, title in QUALITY_COLUMNS)]
    rows = [
        [source, str(metrics.get("synthetic", {}).get("rows", DASH))]
        + [_quality_value(metrics, key) for key, _ in QUALITY_COLUMNS]
        for source, metrics in quality.items()
    ]
    table = Table(headers, rows, frozenset(range(1, len(headers))))
    note = (
        "Cheap metrics of each source against the real training data (value [95% CI]): "
        "diversity (distinct-2 ↑, self-BLEU ↓, Vendi ↑), fidelity (MAUVE ↑, Fréchet ↓, C2ST AUC: "
        "0.5 = indistinguishable from real), label consistency (accuracy of a real-trained "
        "classifier on the synthetic labels) and memorisation (share of texts within the leak "
        "threshold of a real text)."
    )
    return _table_section("Quality of the synthetic sources", note, table)


def _table_section(title: str, note: str, table: Table) -> Section:
    return Section(
        title,
        f'<p class="note">{esc(note)}</p>\n{html_table(table)}',
        f"_{note}_\n\n{md_table(table)}\n",
    )


def _quality_value(metrics: dict[str, Any], key: str) -> str:
    entry = metrics.get("overall", {}).get(key)
    if not isinstance(entry, dict) or entry.get("value") is None:
        return DASH
    value = float(entry["value"])
    if entry.get("low") is None or entry.get("high") is None:
        return f"{value:.3g}"
    return f"{value:.3g} [{float(entry['low']):.3g}, {float(entry['high']):.3g}]"


# --- HTML --------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.headline { border: 2px solid #444; border-radius: 6px; padding: 0.6em 1.2em;
            background: #f7f7f2; }
.headline li { margin: 0.3em 0; }
.helped { color: #11632b; font-weight: 600; }
.within_noise { color: #6b5a00; }
.worse { color: #9b1c1c; font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; white-space: nowrap; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; }
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def html_table(table: Table) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(v)}</td>' if i in table.numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>\n"
        for row in table.rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _html_finding(finding: Finding) -> str:
    if finding.verdict is None:
        return f"<li>{esc(finding.text)}</li>"
    return f'<li class="{finding.verdict.name.lower()}">{esc(finding.text)}</li>'


def html_plot(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img alt="{esc(plot.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{esc(plot.title)}.</b> {esc(plot.caption)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    findings = "\n".join(_html_finding(f) for f in report.findings)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in report.notes)
    plots = "\n".join(html_plot(p) for p in report.plots)
    run = "\n".join(f"<h3>{esc(title)}</h3>\n{html_table(t)}" for title, t in report.run_tables)
    title = esc(f"synthmix report: {report.name}")
    sections = "\n".join(f"<h2>{esc(s.title)}</h2>\n{s.html}" for s in report.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head>
<body>
<h1>{title}</h1>
<section class="headline"><h2>Did synthetic data help?</h2>
<ul>
{findings}
</ul>
{notes}
</section>
<h2>Plots</h2>
{plots}
<h2>Ranking</h2>
<p class="note">All cells by mean F1-macro. Gap is the mean F1-macro minus that of all real
data.</p>
{html_table(report.ranking)}
{sections}
<h2>Run</h2>
{run}
<details><summary>Full configuration</summary><pre>{esc(report.config_json)}</pre></details>
</body>
</html>
"""


# --- Markdown ----------------------------------------------------------------------------


def md_cell(text: str) -> str:
    # A "|" would split a table cell; newlines would end the row.
    return text.replace("|", r"\|").replace("\n", " ")


def md_table(table: Table) -> str:
    align = ["---:" if i in table.numeric else "---" for i in range(len(table.headers))]
    lines = [
        "| " + " | ".join(md_cell(h) for h in table.headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines.extend("| " + " | ".join(md_cell(v) for v in row) + " |" for row in table.rows)
    return "\n".join(lines)


def _md_finding(finding: Finding) -> str:
    return f"- **{finding.text}**" if finding.verdict is not None else f"- {finding.text}"


def render_markdown(report: Report) -> str:
    parts = [f"# synthmix report: {report.name}", "", "## Did synthetic data help?", ""]
    parts.extend(_md_finding(f) for f in report.findings)
    parts.extend(["", *(f"_{n}_" for n in report.notes), "", "## Plots", ""])
    for plot in report.plots:
        parts.extend(
            [f"![{plot.title}]({FIGURES_DIR}/{plot.name}.png)", "", f"*{plot.caption}*", ""]
        )
    parts.extend(["## Ranking", "", md_table(report.ranking), ""])
    for section in report.sections:
        parts.extend([f"## {section.title}", "", section.markdown, ""])
    parts.extend(["## Run", ""])
    for title, table in report.run_tables:
        parts.extend([f"### {title}", "", md_table(table), ""])
    parts.extend(["### Full configuration", "", "```json", report.config_json, "```", ""])
    return "\n".join(parts)
