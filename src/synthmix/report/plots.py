"""The report's matplotlib figures, as PNG bytes."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_COUNT, SMALL_REAL_PLUS_SYNTHETIC
from synthmix.report.cells import real_only_cell, small_real_fraction, source_names
from synthmix.report.findings import against
from synthmix.report.model import DPI, FIGURE_NAMES, PLAN_ORDER, CellSummary, Plot, Score, Versus
from synthmix.stats.paired import PairedComparison, Verdict

# --- plots -------------------------------------------------------------------------------


def mpl_text(text: str) -> str:
    # A "$" in a source or class name would switch matplotlib into mathtext.
    return text.replace("$", r"\$")


def _source_colours(cells: Sequence[CellSummary]) -> dict[str, str]:
    return {source: f"C{i % 10}" for i, source in enumerate(source_names(cells))}


def png_bytes(figure: Figure, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _reference_band(axes: Any, reference: CellSummary | None) -> None:
    if reference is None:
        return
    score = reference.f1_macro
    axes.axhline(score.mean, color="black", linestyle="--", linewidth=1, label="all real")
    axes.axhspan(score.low, score.high, color="grey", alpha=0.15)


def _ratio_plot(
    cells: Sequence[CellSummary], reference: CellSummary | None, versus: Mapping[str, Versus]
) -> Plot | None:
    return _small_real_plot(
        cells,
        reference,
        versus,
        plan=SMALL_REAL_PLUS_SYNTHETIC,
        amount=lambda c: c.synthetic_ratio,
        xlabel="synthetic ratio (synthetic texts per class ÷ full real class size)",
        name=FIGURE_NAMES[0],
        title="F1-macro gained vs amount of synthetic data",
    )


def _count_plot(
    cells: Sequence[CellSummary], reference: CellSummary | None, versus: Mapping[str, Versus]
) -> Plot | None:
    return _small_real_plot(
        cells,
        reference,
        versus,
        plan=SMALL_REAL_PLUS_COUNT,
        amount=lambda c: float(c.synthetic_count),
        xlabel="synthetic texts added per class",
        name=FIGURE_NAMES[3],
        title="F1-macro gained vs synthetic texts per class",
    )


def _small_real_plot(
    cells: Sequence[CellSummary],
    reference: CellSummary | None,
    versus: Mapping[str, Versus],
    plan: str,
    amount: Callable[[CellSummary], float],
    xlabel: str,
    name: str,
    title: str,
) -> Plot | None:
    """Each source's paired difference to the small real fraction alone, with its 95% CI;
    filled markers survived the correction."""
    fraction = small_real_fraction(cells)
    if fraction is None:
        return None
    series = {
        source: sorted(
            (
                c
                for c in cells
                if c.plan == plan
                and c.source == source
                and math.isclose(c.real_fraction, fraction)
                and c.key in versus
            ),
            key=amount,
        )
        for source in source_names(cells)
    }
    series = {source: points for source, points in series.items() if points}
    if not series:
        return None
    figure = Figure(figsize=(7, 4.2))
    axes = figure.subplots()
    # Sources measured at the same amounts would hide each other's intervals: spread them.
    step = 0.012 * max(amount(c) for points in series.values() for c in points)
    colours = _source_colours(cells)
    for index, (source, points) in enumerate(series.items()):
        shift = step * (index - (len(series) - 1) / 2)
        results = [versus[c.key].result for c in points]
        xs = [amount(c) + shift for c in points]
        colour = colours[source]
        axes.plot([0.0, *xs], [0.0, *(r.difference for r in results)], color=colour, alpha=0.6)
        axes.errorbar(
            xs,
            [r.difference for r in results],
            yerr=[
                [r.difference - r.low for r in results],
                [r.high - r.difference for r in results],
            ],
            fmt="none",
            ecolor=colour,
            capsize=3,
        )
        significant = [r.verdict is not Verdict.NO_EFFECT for r in results]
        axes.scatter(
            xs,
            [r.difference for r in results],
            color=[colour if s else "white" for s in significant],
            edgecolors=colour,
            zorder=3,
            label=mpl_text(source),
        )
    axes.axhline(0, color="black", linewidth=1)
    # All real data's gap is named in the caption, not drawn: a line 15 points up would
    # squash the differences of a few points that this plot is for.
    baseline = real_only_cell(cells, fraction)
    gap = ""
    if reference is not None and baseline is not None and baseline is not reference:
        difference = reference.f1_macro.mean - baseline.f1_macro.mean
        gap = f" All real data scores {difference:+.3f} against {fraction:.0%} real alone."
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"F1-macro minus {fraction:.0%} real alone")
    axes.set_title(f"{fraction:.0%} real data plus synthetic, paired against {fraction:.0%} alone")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return Plot(
        name,
        title,
        f"Each line is one source: its mean paired difference in F1-macro to {fraction:.0%} real "
        "data alone (0, the black line), over the same seeds and test texts, with 95% CIs. "
        "Filled markers survived the Holm correction (helped above 0, hurt below); hollow ones "
        "had no detectable effect." + gap,
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


def _per_class_plot(
    cells: Sequence[CellSummary],
    reference: CellSummary | None,
    per_class: Mapping[tuple[str, str], PairedComparison],
) -> Plot | None:
    rows = _heatmap_rows(cells, reference)
    classes = list(dict.fromkeys(label for cell in rows for label in cell.per_class))
    if not rows or not classes:
        return None
    values = np.array([[cell.per_class.get(label, np.nan) for label in classes] for cell in rows])
    figure = Figure(figsize=(2.2 + 1.1 * len(classes), 1.2 + 0.45 * len(rows)))
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    _annotate(axes, values)
    _mark_findings(axes, rows, classes, per_class)
    axes.set_xticks(range(len(classes)), [mpl_text(c) for c in classes], rotation=30, ha="right")
    labels = ["all real (reference)" if c.is_reference else mpl_text(c.label) for c in rows]
    axes.set_yticks(range(len(rows)), labels)
    axes.set_title("Per-class F1 (mean over seeds)")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    return Plot(
        FIGURE_NAMES[2],
        "Per-class F1",
        "Which classes each mix helps or hurts, against all real data (first row) and the small "
        "real fraction alone (second row). A frame marks a class whose F1 differs from the mix's "
        "baseline beyond noise (paired over seeds and test texts, Holm-corrected over every "
        "mix and class): green higher, red lower.",
        png_bytes(figure),
    )


def _mark_findings(
    axes: Any,
    rows: Sequence[CellSummary],
    classes: Sequence[str],
    per_class: Mapping[tuple[str, str], PairedComparison],
) -> None:
    for row, cell in enumerate(rows):
        for column, label in enumerate(classes):
            result = per_class.get((cell.key, label))
            if result is None or result.verdict is Verdict.NO_EFFECT:
                continue
            colour = "#1a9641" if result.verdict is Verdict.HELPED else "#d7191c"
            axes.add_patch(
                Rectangle(
                    (column - 0.46, row - 0.42), 0.92, 0.84, fill=False, edgecolor=colour,
                    linewidth=2.5,
                )
            )  # fmt: skip


def _annotate(
    axes: Any,
    values: np.ndarray,
    dark: Callable[[float], bool] = lambda v: v < 0.5,
    signed: bool = False,
) -> None:
    """Each cell's value; `dark` says where the colour map is dark (viridis: the low end)."""
    for (row, column), value in np.ndenumerate(values):
        if math.isnan(value):
            continue
        colour = "white" if dark(value) else "black"
        text = f"{value:+.2f}" if signed else f"{value:.2f}"
        axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=8)


# A label with fewer test texts than this is marked rare: its F1 moves by 1/support per text.
RARE_SUPPORT = 10


def per_label_grid(
    cells: Sequence[CellSummary], versus: Mapping[str, Versus], support: Mapping[str, int]
) -> tuple[list[CellSummary], list[str], np.ndarray]:
    """The heatmap's rows (mixes with a baseline), columns (labels, most test texts first)
    and values (mix's per-label F1 minus its baseline's; NaN where either lacks the label)."""
    rows = [c for c in _heatmap_rows(cells, None) if c.key in versus]
    labels = sorted(
        {label for cell in rows for label in cell.per_class},
        key=lambda label: (-support.get(label, 0), label),
    )
    values = np.array(
        [
            [
                cell.per_class.get(label, np.nan)
                - versus[cell.key].baseline.per_class.get(label, np.nan)
                for label in labels
            ]
            for cell in rows
        ]
    ).reshape(len(rows), len(labels))
    return rows, labels, values


def per_label_difference_plot(
    cells: Sequence[CellSummary],
    versus: Mapping[str, Versus],
    per_label: Mapping[tuple[str, str], PairedComparison],
    support: Mapping[str, int],
) -> Plot | None:
    """Mixes x labels: each mix's per-label F1 minus its baseline's (mean over shared seeds),
    labels by test support, most frequent first, rare ones (< RARE_SUPPORT test texts)
    marked; frames as in the per-class heatmap (paired over seeds and test texts,
    Holm-corrected over every mix and label)."""
    rows, labels, values = per_label_grid(cells, versus, support)
    if not rows or not labels:
        return None
    finite = np.abs(values[np.isfinite(values)])
    limit = max(0.05, float(finite.max()) if finite.size else 0.05)
    figure = Figure(figsize=(2.6 + 0.55 * len(labels), 1.4 + 0.45 * len(rows)))
    axes = figure.subplots()
    image = axes.imshow(
        np.ma.masked_invalid(values), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto"
    )
    _annotate(axes, values, dark=lambda v: abs(v) > 0.6 * limit, signed=True)
    _mark_findings(axes, rows, labels, per_label)
    ticks = [_support_tick(label, support) for label in labels]
    axes.set_xticks(range(len(labels)), ticks, rotation=60, ha="right")
    for tick, label in zip(axes.get_xticklabels(), labels, strict=True):
        if support.get(label, 0) < RARE_SUPPORT:
            tick.set_color("#b2182b")
    axes.set_yticks(
        range(len(rows)),
        [f"{mpl_text(c.label)} vs {against(versus[c.key].baseline)}" for c in rows],
    )
    axes.set_title("Per-label F1 minus the mix's real-only baseline (mean over seeds)")
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    rare = [label for label in labels if support.get(label, 0) < RARE_SUPPORT]
    return Plot(
        FIGURE_NAMES[5],
        "Per-label F1 against the real-only baseline",
        "Each row is a mix, each column a label with its test support (n), most frequent "
        "first: the mix's F1 on that label minus its baseline's (the same real data alone; "
        "for synthetic data only, all real data), blue higher, red lower. A frame marks a "
        "difference beyond noise (paired over seeds and test texts, Holm-corrected over every "
        "mix and label): green helped, red hurt."
        + (
            f" Labels in red with * ({len(rare)} of {len(labels)}) have fewer than "
            f"{RARE_SUPPORT} test texts: one text moves their F1 by a lot."
            if rare
            else ""
        ),
        png_bytes(figure),
    )


def _support_tick(label: str, support: Mapping[str, int]) -> str:
    count = support.get(label, 0)
    mark = " *" if count < RARE_SUPPORT else ""
    return f"{mpl_text(label)} (n={count}){mark}"


def figures(
    cells: Sequence[CellSummary],
    reference: CellSummary | None,
    versus: Mapping[str, Versus] | None = None,
    per_class: Mapping[tuple[str, str], PairedComparison] | None = None,
) -> list[Plot]:
    """The plots of the primary classifier's cells, in report order; a plot without data to
    show is left out (the plots against the small real fraction need `versus`)."""
    versus = versus or {}
    made = (
        _ratio_plot(cells, reference, versus),
        _count_plot(cells, reference, versus),
        _learning_curve_plot(cells, reference),
        _per_class_plot(cells, reference, per_class or {}),
    )
    return [plot for plot in made if plot is not None]
