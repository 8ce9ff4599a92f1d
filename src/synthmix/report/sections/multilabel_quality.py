"""Report sections on the per-label quality of multi-label sources (`quality.multilabel`):
each label's cheap metrics per source, and which of them goes with that label's F1 gain."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from synthmix.experiment.mixing import SMALL_REAL_PLUS_COUNT
from synthmix.quality.files import flat_values
from synthmix.report.cells import real_only_cell
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import DASH, CellSummary, Section, Table
from synthmix.report.sections.usefulness import Correlation, correlate

PER_LABEL_TITLE = "Quality per label"
PREDICTS_TITLE = "Which per-label quality metric goes with the per-label gain?"
PER_LABEL_COLUMNS = (
    ("distinct_2", "distinct-2"),
    ("self_bleu", "self-BLEU"),
    ("mauve", "MAUVE"),
    ("c2st_auc", "C2ST AUC"),
    ("nn_real_similarity.mean", "NN similarity"),
    ("exact_copy_share", "exact copies"),
)
# Fewer (source, label) points than this give no ranking worth a line.
MIN_POINTS = 5


def is_multilabel_quality(metrics: Mapping[str, Any]) -> bool:
    return metrics.get("task") == "multi_label"


def per_label_sections(
    quality: Mapping[str, Mapping[str, Any]],
    cells: Sequence[CellSummary],
    plan: str | None,
    amount: float,
    n_boot: int = 500,
) -> list[Section]:
    """The per-label table of every multi-label source, and, given the small-real `plan`
    and `amount` every source shares, the per-label rank correlations."""
    multi = {name: q for name, q in quality.items() if is_multilabel_quality(q)}
    if not multi:
        return []
    sections = [_table_section(multi)]
    if plan is not None:
        gains = label_gains(cells, plan, amount)
        if gains:
            sections.append(_predicts_section(multi, gains, n_boot))
    return sections


def _table_section(quality: Mapping[str, Mapping[str, Any]]) -> Section:
    note = (
        "Each label's metrics per source, on the synthetic texts that carry the label against "
        "the real texts that carry it (a text with several labels counts for each; point "
        "values, the intervals are in the quality JSON). Label consistency is not measured for "
        "multi-label sources. Fidelity needs enough texts of a label on both sides, so rare "
        f"labels show {DASH}."
    )
    html, markdown = [f'<p class="note">{esc(note)}</p>'], [f"_{note}_\n"]
    for source, metrics in quality.items():
        table = per_label_table(metrics)
        html.append(f"<h3>{esc(source)}</h3>\n{html_table(table)}")
        markdown.append(f"### {source}\n\n{md_table(table)}\n")
    return Section(PER_LABEL_TITLE, "\n".join(html), "\n".join(markdown))


def per_label_table(metrics: Mapping[str, Any]) -> Table:
    """Rows: labels (most synthetic texts first); columns: texts per side and the metrics."""
    counts = metrics.get("label_counts") or {}
    per_class = metrics.get("per_class") or {}
    labels = sorted(
        per_class, key=lambda label: (-counts.get(label, {}).get("synthetic", 0), label)
    )
    rows = []
    for label in labels:
        values = flat_values(per_class[label])
        side = counts.get(label, {})
        rows.append(
            [
                label,
                str(side.get("synthetic", DASH)),
                str(side.get("real", DASH)),
                *(_fmt(values.get(key)) for key, _ in PER_LABEL_COLUMNS),
            ]
        )
    headers = ["label", "synthetic texts", "real texts", *(t for _, t in PER_LABEL_COLUMNS)]
    return Table(headers, rows, frozenset(range(1, len(headers))))


def label_gains(
    cells: Sequence[CellSummary], plan: str, amount: float
) -> dict[tuple[str, str], float]:
    """Per (source, label): the label's F1 in the source's `plan` cell at `amount` (ratio,
    or texts per class for the fixed-count plan) minus the same real fraction alone."""
    gains = {}
    for cell in cells:
        if cell.source is None or cell.plan != plan:
            continue
        at = float(cell.synthetic_count) if plan == SMALL_REAL_PLUS_COUNT else cell.synthetic_ratio
        if not math.isclose(at, amount):
            continue
        baseline = real_only_cell(cells, cell.real_fraction)
        if baseline is None:
            continue
        for label, f1 in cell.per_class.items():
            if label in baseline.per_class:
                gains[(cell.source, label)] = f1 - baseline.per_class[label]
    return gains


def correlations(
    quality: Mapping[str, Mapping[str, Any]],
    gains: Mapping[tuple[str, str], float],
    n_boot: int = 500,
) -> list[Correlation]:
    """Spearman and Kendall of every per-label metric with the per-label gain, across
    (source, label) points, strongest first; metrics on fewer than MIN_POINTS are left out."""
    values: dict[str, dict[str, float]] = {}
    scores = {_point(source, label): gain for (source, label), gain in gains.items()}
    for source, metrics in quality.items():
        for label, section in (metrics.get("per_class") or {}).items():
            if (source, label) not in gains:
                continue
            for name, value in flat_values(section).items():
                values.setdefault(name, {})[_point(source, label)] = value
    found = [
        correlate(name, points, scores, n_boot)
        for name, points in sorted(values.items())
        if len(points) >= MIN_POINTS
    ]
    return sorted(found, key=lambda c: -abs(c.spearman) if not math.isnan(c.spearman) else 0)


def _predicts_section(
    quality: Mapping[str, Mapping[str, Any]], gains: Mapping[tuple[str, str], float], n_boot: int
) -> Section:
    found = correlations(quality, gains, n_boot)
    note = (
        "Rank correlation, across (source, label) points, between a label's quality metric "
        "and that label's F1 gain in the source's small-real mix over the same real data alone "
        "(intervals: 95% percentile bootstrap over the points). The labels of one source share "
        "its generator, so the points are not independent and the intervals are optimistic; "
        "a metric that ranks labels well within sources can still say nothing across them."
    )
    rows = [
        [
            c.metric,
            _fmt(c.spearman, signed=True),
            f"[{_fmt(c.spearman_low, signed=True)}, {_fmt(c.spearman_high, signed=True)}]",
            _fmt(c.kendall, signed=True),
            str(len(c.sources)),
        ]
        for c in found
    ]
    table = Table(
        ["metric", "Spearman ρ", "95% CI", "Kendall τ", "points"], rows, frozenset({1, 2, 3, 4})
    )
    if not rows:
        note += f" No metric was measured on {MIN_POINTS} or more points."
    return Section(
        PREDICTS_TITLE,
        f'<p class="note">{esc(note)}</p>\n{html_table(table)}',
        f"_{note}_\n\n{md_table(table)}\n",
    )


def _point(source: str, label: str) -> str:
    return f"{source} · {label}"


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return DASH
    return f"{value:+.2f}" if signed else f"{value:.3g}"
