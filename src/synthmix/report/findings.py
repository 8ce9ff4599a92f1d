"""The headline: did synthetic data help, which cell and which source won, and the method notes."""

from __future__ import annotations

import math
from collections.abc import Sequence

from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLANS
from synthmix.report.cells import (
    find_reference,
    ranked,
    real_only_cell,
    rewrites_all_real,
    small_real_fraction,
    source_names,
)
from synthmix.report.model import CellSummary, Finding, Score, Verdict


def verdict(candidate: Score, baseline: Score) -> Verdict:
    if candidate.overlaps(baseline):
        return Verdict.WITHIN_NOISE
    return Verdict.HELPED if candidate.mean > baseline.mean else Verdict.WORSE


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
    if source_names(cells):
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


def notes(cells: Sequence[CellSummary], rewrites: frozenset[str] = frozenset()) -> list[str]:
    seeds = sorted({cell.seeds for cell in cells})
    rewritten = sorted({c.source for c in cells if rewrites_all_real(c, rewrites) and c.source})
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
