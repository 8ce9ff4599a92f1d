"""Which quality metric predicts whether a synthetic source helps the classifier?

Given each source's quality metrics (`synthmix.quality.measure`) and its downstream F1-macro from an
experiment run, rank-correlate every metric with F1 across sources (Spearman and Kendall),
with a percentile bootstrap interval over sources. With a handful of sources the intervals
are wide; the analysis says so rather than crowning a predictor by chance.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from synthmix.core.errors import SynthmixError
from synthmix.experiment.mixing import (
    SMALL_REAL_PLUS_COUNT,
    SMALL_REAL_PLUS_SYNTHETIC,
    SYNTHETIC_ONLY,
)
from synthmix.experiment.results import (
    ResultsStore,
    classifier_labels,
    record_classifier,
    summarize,
)
from synthmix.experiment.run_dir import FIGURES_FOLDER, RunDir
from synthmix.quality.files import flat_values, read_quality
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import Table
from synthmix.report.plots import mpl_text, png_bytes

MIN_SOURCES = 3
TABLE_HEADERS = ["metric", "Spearman ρ", "95% CI", "Kendall τ", "95% CI", "sources"]


def downstream_scores(
    run_dir: str | Path | RunDir,
    plan: str = SMALL_REAL_PLUS_SYNTHETIC,
    ratio: float = 1.0,
    metric: str = "f1_macro",
    classifier: str | None = None,
) -> dict[str, float]:
    """Mean `metric` over seeds of each source's cell with `plan` (and, for the small-real
    plan, synthetic ratio `ratio`) in an experiment run, for `classifier` (a label; default
    the run's primary classifier)."""
    run = RunDir.of(run_dir)
    records = ResultsStore(run).records()
    if not records:
        raise SynthmixError(f"{run.root}: no finished cells yet; run the experiment first")
    if classifier is None:
        info = run.read_info() if run.has_run() else {}
        classifier = classifier_labels(info, records)[0]
    table = summarize([r for r in records if record_classifier(r) == classifier])
    cells = table[(table["plan"] == plan) & table["source"].notna()]
    if plan == SMALL_REAL_PLUS_SYNTHETIC:
        cells = cells[np.isclose(cells["synthetic_ratio"].astype(float), ratio)]
    elif plan == SMALL_REAL_PLUS_COUNT:  # `ratio` is then the number of texts per class
        cells = cells[np.isclose(cells["synthetic_count"].astype(float), ratio)]
    if cells.empty:
        raise SynthmixError(f"{run.root}: no {plan} cells (ratio {ratio:g}) in the results")
    return {str(row["source"]): float(row[metric]) for _, row in cells.iterrows()}


@dataclass(frozen=True)
class Correlation:
    """Rank correlation of one metric with downstream F1 across sources."""

    metric: str
    spearman: float
    spearman_low: float
    spearman_high: float
    kendall: float
    kendall_low: float
    kendall_high: float
    sources: list[str]
    values: list[float]
    scores: list[float]

    @property
    def reliable(self) -> bool:
        """The Spearman interval excludes 0, and the metric tells at least MIN_SOURCES
        sources apart: a metric on which one source differs and the rest tie (say, leak
        share 0 for every LLM source) only says where that one source ranks."""
        if math.isnan(self.spearman) or len(set(self.values)) < MIN_SOURCES:
            return False
        return self.spearman_low > 0 or self.spearman_high < 0


@dataclass
class UsefulnessAnalysis:
    correlations: list[Correlation]
    sources: list[str]
    score_name: str
    best: Correlation | None
    verdict: str
    skipped: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[list[str]]:
        """Table rows (TABLE_HEADERS), strongest |Spearman| first."""
        return [_row(c) for c in self.correlations]


def _row(c: Correlation) -> list[str]:
    return [
        c.metric,
        _fmt(c.spearman),
        f"[{_fmt(c.spearman_low)}, {_fmt(c.spearman_high)}]",
        _fmt(c.kendall),
        f"[{_fmt(c.kendall_low)}, {_fmt(c.kendall_high)}]",
        str(len(c.sources)),
    ]


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.2f}"


def _rank_statistics(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    # A constant vector (e.g. a bootstrap draw of one source repeated) has no ranking.
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    spearman = float(stats.spearmanr(x, y).statistic)
    kendall = float(stats.kendalltau(x, y).statistic)
    return spearman, kendall


def _bootstrap(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, confidence: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            _rank_statistics(x[i], y[i])
            for i in (rng.integers(0, len(x), len(x)) for _ in range(n_boot))
        ]
    )
    if not np.isfinite(draws).any():
        nan = (float("nan"), float("nan"))
        return nan, nan
    # A draw whose metric or scores all tie carries no ranking: it counts as no association.
    # Dropping such draws instead keeps only the resamples that hold the odd source out
    # and makes a one-source difference look certain.
    draws = np.nan_to_num(draws, nan=0.0)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def correlate(
    metric: str,
    values: Mapping[str, float],
    scores: Mapping[str, float],
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Correlation:
    sources = sorted(set(values) & set(scores))
    x = np.array([values[s] for s in sources], dtype=float)
    y = np.array([scores[s] for s in sources], dtype=float)
    spearman, kendall = _rank_statistics(x, y)
    (s_low, s_high), (k_low, k_high) = _bootstrap(x, y, n_boot, seed, confidence)
    return Correlation(
        metric, spearman, s_low, s_high, kendall, k_low, k_high, sources, x.tolist(), y.tolist()
    )


def analyse(
    quality_by_source: Mapping[str, Mapping[str, Any]],
    scores: Mapping[str, float],
    score_name: str = "F1-macro",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> UsefulnessAnalysis:
    """Correlate every metric with `scores` across the sources present in both mappings.

    `quality_by_source` values are `measure_quality` results (their `overall` section is
    used) or flat {metric: value} mappings."""
    flat = {source: _flatten(q) for source, q in quality_by_source.items()}
    sources = sorted(set(flat) & set(scores))
    metrics = sorted({m for s in sources for m in flat[s]})
    correlations, skipped = [], {}
    for metric in metrics:
        values = {s: flat[s][metric] for s in sources if metric in flat[s]}
        if len(values) < MIN_SOURCES:
            skipped[metric] = f"measured on {len(values)} sources; needs {MIN_SOURCES}"
            continue
        correlations.append(correlate(metric, values, scores, n_boot, seed, confidence))
    correlations.sort(key=lambda c: -abs(c.spearman) if not math.isnan(c.spearman) else 0)
    best = next((c for c in correlations if c.reliable), None)
    return UsefulnessAnalysis(
        correlations, sources, score_name, best, _verdict(best, len(sources)), skipped
    )


def _flatten(quality: Mapping[str, Any]) -> dict[str, float]:
    if "overall" in quality:
        return flat_values(quality["overall"])
    return {k: float(v) for k, v in quality.items() if isinstance(v, int | float)}


def _verdict(best: Correlation | None, n_sources: int) -> str:
    if n_sources < MIN_SOURCES:
        return (
            f"Only {n_sources} source(s) have both quality metrics and results; "
            f"rank correlation needs at least {MIN_SOURCES}."
        )
    if best is None:
        return (
            f"No metric is a reliable predictor with {n_sources} sources: every Spearman "
            f"interval includes 0, or the metric tells fewer than {MIN_SOURCES} sources apart. "
            "Measure more sources before trusting any metric."
        )
    direction = "higher" if best.spearman > 0 else "lower"
    return (
        f"Best predictor: {best.metric} (Spearman ρ = {best.spearman:+.2f}, 95% CI "
        f"[{best.spearman_low:+.2f}, {best.spearman_high:+.2f}], {n_sources} sources): "
        f"{direction} values went with higher downstream scores."
    )


# --- figures -----------------------------------------------------------------------------


def scatter_png(correlation: Correlation, score_name: str = "F1-macro", dpi: int = 110) -> bytes:
    """One scatter of a metric against the downstream score, each source labelled."""
    figure = Figure(figsize=(4.8, 3.6))
    axes = figure.add_subplot()
    axes.scatter(correlation.values, correlation.scores, color="C0")
    for source, x, y in zip(
        correlation.sources, correlation.values, correlation.scores, strict=True
    ):
        axes.annotate(
            mpl_text(source), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    axes.set_xlabel(mpl_text(correlation.metric))
    axes.set_ylabel(mpl_text(score_name))
    axes.set_title(f"Spearman ρ = {_fmt(correlation.spearman)}", fontsize=10)
    axes.grid(alpha=0.3)
    return png_bytes(figure, dpi)


def scatter_figures(analysis: UsefulnessAnalysis, top: int | None = None) -> dict[str, bytes]:
    """PNG per metric (strongest first), keyed by metric name."""
    chosen = analysis.correlations if top is None else analysis.correlations[:top]
    return {c.metric: scatter_png(c, analysis.score_name) for c in chosen}


# --- report section ----------------------------------------------------------------------


@dataclass(frozen=True)
class UsefulnessSection:
    markdown: str
    html: str
    figures: dict[str, bytes]  # file name (under the report's figures/) -> PNG


def load_quality_dir(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Quality JSON files of a folder keyed by file stem (name them after the experiment's
    sources: `quality/<source>.json`)."""
    quality = {}
    for path in sorted(Path(folder).glob("*.json")):
        metrics = read_quality(path)
        # Source names may hold ":" and "/", which file names cannot; the file records it.
        quality[str(metrics.get("source_name", path.stem))] = metrics
    return quality


def usefulness_section(
    run_dir: str | Path | RunDir,
    quality_by_source: Mapping[str, Mapping[str, Any]],
    plan: str = SMALL_REAL_PLUS_SYNTHETIC,
    ratio: float = 1.0,
    top_figures: int = 4,
    figures_dir: str = FIGURES_FOLDER,
) -> UsefulnessSection:
    """Markdown and HTML for a report section "Which quality metric predicts usefulness?"."""
    scores = downstream_scores(run_dir, plan, ratio)
    cell = {
        SMALL_REAL_PLUS_SYNTHETIC: f"{plan} at ratio {ratio:g}",
        SMALL_REAL_PLUS_COUNT: f"{plan} with {ratio:g} texts per class",
    }.get(plan, plan)
    analysis = analyse(quality_by_source, scores, score_name=f"F1-macro ({cell})")
    pngs = scatter_figures(analysis, top_figures)
    figures = {f"usefulness_{_safe(m)}.png": png for m, png in pngs.items()}
    return UsefulnessSection(
        markdown=_markdown(analysis, list(figures), figures_dir),
        html=_html(analysis, pngs),
        figures=figures,
    )


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _intro(analysis: UsefulnessAnalysis) -> str:
    return (
        f"Rank correlation across {len(analysis.sources)} sources between each quality "
        f"metric and {analysis.score_name}; intervals are 95% percentile bootstraps over "
        "sources."
    )


def _table(analysis: UsefulnessAnalysis) -> Table:
    return Table(TABLE_HEADERS, analysis.rows(), frozenset(range(1, len(TABLE_HEADERS))))


def _markdown(analysis: UsefulnessAnalysis, figure_names: list[str], folder: str) -> str:
    # The report gives the section its heading.
    lines = [_intro(analysis), "", f"**{analysis.verdict}**", "", md_table(_table(analysis)), ""]
    lines += [f"![{name}]({folder}/{name})" for name in figure_names]
    return "\n".join(lines) + "\n"


def _html(analysis: UsefulnessAnalysis, pngs: Mapping[str, bytes]) -> str:
    images = "".join(
        f'<figure><img alt="{esc(m)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"></figure>'
        for m, png in pngs.items()
    )
    return (
        f'<p class="note">{esc(_intro(analysis))}</p>\n'
        f"<p><b>{esc(analysis.verdict)}</b></p>\n"
        f"{html_table(_table(analysis))}\n{images}\n"
    )


__all__ = [
    "SYNTHETIC_ONLY",
    "Correlation",
    "UsefulnessAnalysis",
    "UsefulnessSection",
    "analyse",
    "correlate",
    "downstream_scores",
    "load_quality_dir",
    "scatter_figures",
    "scatter_png",
    "usefulness_section",
]
