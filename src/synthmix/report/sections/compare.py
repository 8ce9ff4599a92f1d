"""The report section "Classifiers compared", for runs that train several classifiers.

Every classifier of a run fits the same cells with the same seeds, and a seed fixes the real
and synthetic sample, so the classifiers see the same texts: their F1-macro per cell is a
paired comparison. The section shows it per cell (baselines included) as mean ± 95% CI over
seeds, plots the key cells with CI bars, says which classifier is best and whether its lead
over the runner-up survives the headline's test (paired over seeds and test texts,
Holm-corrected across cells), and repeats the headline's small-real question ("did synthetic
data help?") for each classifier.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from matplotlib.figure import Figure

from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLANS
from synthmix.experiment.results import record_classifier
from synthmix.experiment.run_dir import FIGURES_FOLDER
from synthmix.report.cells import (
    cell_summaries,
    find_reference,
    real_only_cell,
    small_real_fraction,
)
from synthmix.report.evidence import Evidence, mix_comparisons
from synthmix.report.findings import format_p, outcome, power, tally
from synthmix.report.html import esc, html_plot, html_table
from synthmix.report.markdown import md_cell, md_table
from synthmix.report.model import (
    DASH,
    PLAN_ORDER,
    CellSummary,
    Plot,
    Score,
    Section,
    Table,
)
from synthmix.report.plots import mpl_text, png_bytes
from synthmix.stats.paired import PairedComparison, Verdict, correct

SECTION_TITLE = "Classifiers compared"
FIGURE_NAME = "classifiers_compared"
# Beyond this many cells the bar chart stops being readable; the table still lists them all.
MAX_PLOTTED_CELLS = 12


@dataclass(frozen=True)
class Comparison:
    """Cell summaries of each classifier (by label, primary first), keyed by cell key."""

    labels: list[str]
    cells: dict[str, dict[str, CellSummary]]

    def shared(self) -> list[CellSummary]:
        """Cells every classifier has finished, as the primary classifier's summaries, in
        report order: baselines first, then the learning curve, then mixes by source."""
        keys = set.intersection(*(set(by_key) for by_key in self.cells.values()))
        primary = self.cells[self.labels[0]]
        return sorted((primary[key] for key in keys), key=_order)

    def scores(self, key: str) -> dict[str, Score]:
        return {label: self.cells[label][key].f1_macro for label in self.labels}


def compare(records: Sequence[dict[str, Any]], labels: Sequence[str]) -> Comparison:
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for record in records:
        label = record_classifier(record)
        if label in by_label:
            by_label[label].append(record)
    cells = {
        label: {cell.key: cell for cell in cell_summaries(group)}
        for label, group in by_label.items()
    }
    return Comparison(list(labels), cells)


def comparison_section(
    records: Sequence[dict[str, Any]],
    labels: Sequence[str],
    info: dict[str, Any],
    evidence: Evidence,
) -> Section:
    """The section for a run with two or more classifiers; its figure is
    figures/classifiers_compared.png for the Markdown report."""
    comparison = compare(records, labels)
    shared = comparison.shared()
    leads = lead_comparisons(comparison, shared, evidence)
    sentences = findings(comparison, shared, leads, evidence)
    tables = [
        ("Classifiers", classifier_table(records, labels, info)),
        ("F1-macro per cell", cell_table(comparison, shared, leads)),
    ]
    plot = comparison_plot(comparison, shared)
    note = (
        "Every classifier trained on the same cells and seeds (a seed fixes the real and "
        "synthetic sample, so all of them saw the same texts). F1-macro is the mean ± the "
        "95% CI half-width over seeds. The best classifier of a cell is compared with the "
        "runner-up paired over the same seeds and test texts, like a mix with its baseline "
        "above; the leads of all cells are Holm-corrected together, and each classifier's "
        "mixes against their baselines form a family of their own. The headline, plots and "
        f"ranking above are for the primary classifier, {labels[0]}; this section is the only "
        "one with all of them."
    )
    html_parts = [
        f'<p class="note">{esc(note)}</p>',
        "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>",
    ]
    md_parts = [f"_{note}_", "", *(f"- {s}" for s in sentences), ""]
    figures = {}
    if plot is not None:
        figures[f"{plot.name}.png"] = plot.png
        html_parts.append(html_plot(plot))
        md_parts.extend(
            [f"![{plot.title}]({FIGURES_FOLDER}/{plot.name}.png)", "", f"*{plot.caption}*", ""]
        )
    for title, table in tables:
        html_parts.append(f"<h3>{esc(title)}</h3>\n{html_table(table)}")
        md_parts.extend([f"### {md_cell(title)}", "", md_table(table), ""])
    return Section(SECTION_TITLE, "\n".join(html_parts), "\n".join(md_parts), figures)


# --- sentences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lead:
    """The best classifier of a cell against the runner-up, paired and corrected."""

    best: str
    runner_up: str
    result: PairedComparison | None


def lead_comparisons(
    comparison: Comparison, shared: Sequence[CellSummary], evidence: Evidence
) -> dict[str, Lead]:
    leads = {}
    for cell in shared:
        ranked = _ranked(comparison.scores(cell.key))
        best, runner = ranked[0][0], ranked[1][0]
        leads[cell.key] = Lead(best, runner, evidence.compare((best, cell.key), (runner, cell.key)))
    tested = [key for key, lead in leads.items() if lead.result is not None]
    corrected = correct([r for key in tested if (r := leads[key].result) is not None])
    for key, result in zip(tested, corrected, strict=True):
        leads[key] = replace(leads[key], result=result)
    return leads


def findings(
    comparison: Comparison,
    shared: Sequence[CellSummary],
    leads: Mapping[str, Lead],
    evidence: Evidence,
) -> list[str]:
    if not shared:
        return ["No cell has finished for every classifier yet, so none can be compared."]
    sentences = [_best_on(comparison, _headline_cell(shared), leads)]
    if len(shared) > 1:
        sentences.append(_wins(comparison, shared, leads))
    sentences.extend(_synthetic_help(comparison, label, evidence) for label in comparison.labels)
    return [s for s in sentences if s]


def _headline_cell(shared: Sequence[CellSummary]) -> CellSummary:
    """All real data when every classifier has it: the usual way to compare classifiers."""
    return find_reference(shared) or shared[0]


def _best_on(comparison: Comparison, cell: CellSummary, leads: Mapping[str, Lead]) -> str:
    lead = leads[cell.key]
    scores = comparison.scores(cell.key)
    top, runner = scores[lead.best], scores[lead.runner_up]
    where = "On all real data" if cell.is_reference else f"On {cell.label}"
    return (
        f"{where}, {lead.best} scores best: F1-macro {top.format()} against "
        f"{lead.runner_up}'s {runner.format()} (the runner-up); the gap of "
        f"{top.mean - runner.mean:+.3f} {_lead_text(lead)}."
    )


def _lead_text(lead: Lead) -> str:
    result = lead.result
    if result is None or result.seeds < 2:
        return "has no interval to judge it by (one seed): treat it as an anecdote"
    numbers = (
        f"paired over seeds and test texts: 95% CI [{result.low:+.3f}, {result.high:+.3f}], "
        f"P(improvement) {result.p_improvement:.2f}, corrected p {format_p(result.p_adjusted)}"
    )
    if result.verdict is Verdict.NO_EFFECT:
        return f"is within noise ({numbers}; {power(result)})"
    return f"is beyond noise ({numbers})"


def _wins(comparison: Comparison, shared: Sequence[CellSummary], leads: Mapping[str, Lead]) -> str:
    wins = dict.fromkeys(comparison.labels, 0)
    clear = dict.fromkeys(comparison.labels, 0)
    for cell in shared:
        lead = leads[cell.key]
        wins[lead.best] += 1
        if lead.result is not None and lead.result.verdict is not Verdict.NO_EFFECT:
            clear[lead.best] += 1
    order = sorted(comparison.labels, key=lambda label: (-wins[label], -clear[label]))
    parts = [f"{label} in {wins[label]} ({clear[label]} beyond noise)" for label in order]
    return (
        f"Highest mean F1-macro across the {len(shared)} cells every classifier finished: "
        + ", ".join(parts)
        + " (beyond noise: the paired lead over the runner-up survives the Holm correction)."
    )


def _synthetic_help(comparison: Comparison, label: str, evidence: Evidence) -> str:
    """The headline's small-real verdict, for one classifier."""
    cells = list(comparison.cells[label].values())
    fraction = small_real_fraction(cells)
    if fraction is None:
        return ""
    baseline = real_only_cell(cells, fraction)
    versus = mix_comparisons(cells, evidence, label)
    mixes = [
        c
        for c in cells
        if c.plan in SMALL_REAL_PLANS
        and c.source is not None
        and math.isclose(c.real_fraction, fraction)
        and c.key in versus
    ]
    if baseline is None or not mixes:
        return ""
    best = max(mixes, key=lambda c: (c.f1_macro.mean, c.key))
    return (
        f"{label}, {fraction:.0%} real data: synthetic data {tally(mixes, versus)}; best mix "
        f"{best.label} with F1-macro {best.f1_macro.format()} against "
        f"{baseline.f1_macro.format()} for {fraction:.0%} real alone: "
        f"{outcome(versus[best.key])}."
    )


def _ranked(scores: dict[str, Score]) -> list[tuple[str, Score]]:
    return sorted(scores.items(), key=lambda item: -item[1].mean)


# --- tables ------------------------------------------------------------------------------


def classifier_table(
    records: Sequence[dict[str, Any]], labels: Sequence[str], info: dict[str, Any]
) -> Table:
    settings = {
        str(c.get("label")): c for c in info.get("classifiers") or [] if isinstance(c, dict)
    }
    rows = []
    for label in labels:
        mine = [r for r in records if record_classifier(r) == label]
        spec = settings.get(label) or mine[0].get("classifier", {})
        fit = [float(r.get("timings", {}).get("fit_s", 0.0)) for r in mine]
        predict = [float(r.get("timings", {}).get("predict_s", 0.0)) for r in mine]
        rows.append(
            [
                label + (" (primary)" if label == labels[0] else ""),
                str(spec.get("name", DASH)),
                json.dumps(spec.get("params", {}), ensure_ascii=False, sort_keys=True),
                str(len(mine)),
                f"{sum(fit) / len(fit):.2f}" if fit else DASH,
                f"{sum(predict) / len(predict):.2f}" if predict else DASH,
            ]
        )
    headers = ["label", "classifier", "params", "fits", "mean fit (s)", "mean predict (s)"]
    return Table(headers, rows, numeric=frozenset({3, 4, 5}))


def cell_table(
    comparison: Comparison, shared: Sequence[CellSummary], leads: Mapping[str, Lead]
) -> Table:
    """One row per cell (baselines first), one F1-macro column per classifier, then the best
    classifier and whether its paired lead over the runner-up survives the correction."""
    keys = {key for by_key in comparison.cells.values() for key in by_key}
    every = {key: _any_summary(comparison, key) for key in keys}
    fraction = small_real_fraction(shared) or small_real_fraction(list(every.values()))
    rows = []
    for cell in sorted(every.values(), key=_order):
        scores = {
            label: by_key[cell.key].f1_macro
            for label, by_key in comparison.cells.items()
            if cell.key in by_key
        }
        row = [
            cell.source if cell.source is not None else DASH,
            _row_title(cell, fraction),
            *(scores[label].format() if label in scores else DASH for label in comparison.labels),
        ]
        lead = leads.get(cell.key)
        if lead is not None and len(scores) == len(comparison.labels):
            row += [lead.best, *_short_lead(lead)]
        else:
            row += [DASH, DASH, "not finished for every classifier"]
        rows.append(row)
    headers = ["source", "mix", *comparison.labels, "best", "lead", "lead vs runner-up"]
    columns = len(comparison.labels)
    return Table(headers, rows, numeric=frozenset([*range(2, 2 + columns), 3 + columns]))


def _any_summary(comparison: Comparison, key: str) -> CellSummary:
    return next(by_key[key] for by_key in comparison.cells.values() if key in by_key)


def _row_title(cell: CellSummary, small_fraction: float | None) -> str:
    if cell.is_reference:
        return f"{cell.title} (all real, reference)"
    if (
        cell.plan == REAL_ONLY
        and small_fraction is not None
        and math.isclose(cell.real_fraction, small_fraction)
    ):
        return f"{cell.title} (small-real baseline)"
    return cell.title


def _short_lead(lead: Lead) -> list[str]:
    result = lead.result
    if result is None or result.seeds < 2:
        return [DASH, "one seed: no test"]
    if result.verdict is Verdict.NO_EFFECT:
        return [result.format(), "within noise"]
    return [result.format(), "beyond noise"]


def _order(cell: CellSummary) -> tuple[Any, ...]:
    """All real first, the real-only learning curve from the top down, then each source's
    mixes in plan order."""
    if cell.source is None:
        return (0, -cell.real_fraction, cell.key)
    plan = PLAN_ORDER.index(cell.plan) if cell.plan in PLAN_ORDER else len(PLAN_ORDER)
    return (1, cell.source, plan, cell.synthetic_ratio, cell.synthetic_count, cell.key)


# --- plot --------------------------------------------------------------------------------


def plotted_cells(comparison: Comparison, shared: Sequence[CellSummary]) -> list[CellSummary]:
    """All real, the small real fraction alone, and per source its best small-real mix (by
    the mean over classifiers); without sources, the learning curve."""
    reference = find_reference(shared)
    fraction = small_real_fraction(shared)
    small = real_only_cell(shared, fraction) if fraction is not None else None
    chosen = [c for c in (reference, small) if c is not None]
    if fraction is None:
        curve = [c for c in shared if c.plan == REAL_ONLY and c not in chosen]
        return (chosen + curve)[:MAX_PLOTTED_CELLS]
    best: dict[str, CellSummary] = {}
    for cell in shared:
        if (
            cell.plan in SMALL_REAL_PLANS
            and cell.source is not None
            and math.isclose(cell.real_fraction, fraction)
        ):
            current = best.get(cell.source)
            if current is None or _mean_over(comparison, cell) > _mean_over(comparison, current):
                best[cell.source] = cell
    return (chosen + [best[source] for source in sorted(best)])[:MAX_PLOTTED_CELLS]


def _mean_over(comparison: Comparison, cell: CellSummary) -> float:
    scores = comparison.scores(cell.key)
    return sum(s.mean for s in scores.values()) / len(scores)


def comparison_plot(comparison: Comparison, shared: Sequence[CellSummary]) -> Plot | None:
    cells = plotted_cells(comparison, shared)
    if not cells:
        return None
    labels = comparison.labels
    height = 1 / (len(labels) + 1)
    figure = Figure(figsize=(7.5, 1.2 + 0.35 * len(cells) * len(labels)))
    axes = figure.subplots()
    for index, label in enumerate(labels):
        scores = [comparison.cells[label][cell.key].f1_macro for cell in cells]
        # The y axis is inverted below, so within a cell the primary classifier's bar is on top.
        ys = [row + (index - (len(labels) - 1) / 2) * height for row in range(len(cells))]
        axes.barh(
            ys,
            [s.mean for s in scores],
            height=height,
            xerr=[[s.mean - s.low for s in scores], [s.high - s.mean for s in scores]],
            color=f"C{index % 10}",
            capsize=3,
            label=mpl_text(label),
        )
    axes.set_yticks(range(len(cells)), [mpl_text(_bar_title(c)) for c in cells])
    axes.invert_yaxis()
    axes.set_xlabel("F1-macro")
    highest = max(s.high for c in cells for s in comparison.scores(c.key).values())
    axes.set_xlim(0, min(1.0, highest + 0.1))
    axes.grid(axis="x", alpha=0.3)
    # Outside the axes: inside, it covers the longest bars, which are the ones that matter.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    axes.set_title("F1-macro per classifier")
    return Plot(
        FIGURE_NAME,
        "F1-macro per classifier",
        "All real data, the small real fraction alone and each source's best small-real mix "
        "(highest mean over classifiers); error bars are 95% CIs over seeds.",
        png_bytes(figure),
    )


def _bar_title(cell: CellSummary) -> str:
    if cell.is_reference:
        return "all real"
    if cell.source is None:
        return f"{cell.title} alone"
    return f"{cell.source}: {cell.title}"
