"""The headline: did synthetic data help, which cell and which source won, and the method notes."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from synthmix.experiment.mixing import REAL_ONLY, REAL_PLUS_EQUAL, SMALL_REAL_PLANS, SYNTHETIC_ONLY
from synthmix.report.cells import (
    find_reference,
    ranked,
    real_only_cell,
    rewrites_all_real,
    small_real_fraction,
    source_names,
)
from synthmix.report.model import CellSummary, Finding, Versus
from synthmix.stats.paired import ALPHA, MAX_SUGGESTED_SEEDS, RESAMPLES, PairedComparison, Verdict


def _gap(cell: CellSummary, baseline: CellSummary | None, against: str) -> str:
    if baseline is None:
        return ""
    return f", {cell.f1_macro.mean - baseline.f1_macro.mean:+.3f} vs {against}"


def _describe(cell: CellSummary) -> str:
    return f"{cell.label} with F1-macro {cell.f1_macro.format()}"


# --- headline ----------------------------------------------------------------------------


def headline(
    cells: Sequence[CellSummary], versus: Mapping[str, Versus] | None = None
) -> list[Finding]:
    """`versus`: each mix's paired comparison with its baseline (`evidence.mix_comparisons`)."""
    versus = versus or {}
    reference = find_reference(cells)
    findings = [_reference_finding(reference)]
    findings.extend(_minimum_real_finding(cells, reference))
    findings.extend(_best_findings(cells, reference, versus))
    if source_names(cells):
        findings.extend(_small_real_findings(cells, versus))
        findings.extend(_all_real_findings(cells, versus))
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


def _best_findings(
    cells: Sequence[CellSummary], reference: CellSummary | None, versus: Mapping[str, Versus]
) -> list[Finding]:
    best = ranked(cells)[0]
    if best.is_reference:
        findings = [Finding("Best cell overall: all real data (the reference).")]
    else:
        findings = [_best_cell("Best cell overall", best, reference, versus)]
    best_synthetic = next((c for c in ranked(cells) if c.is_synthetic), None)
    if best_synthetic is not None and best_synthetic is not best:
        findings.append(
            _best_cell("Best cell with synthetic data", best_synthetic, reference, versus)
        )
    return findings


def _best_cell(
    lead: str, cell: CellSummary, reference: CellSummary | None, versus: Mapping[str, Versus]
) -> Finding:
    text = f"{lead}: {_describe(cell)}{_gap(cell, reference, 'all real')}"
    paired = versus.get(cell.key)
    if paired is None:
        return Finding(text + ".")
    return Finding(f"{text}; {outcome(paired)}.", paired.result.verdict)


def _small_real_findings(
    cells: Sequence[CellSummary], versus: Mapping[str, Versus]
) -> list[Finding]:
    fraction = small_real_fraction(cells)
    if fraction is None:
        return []
    baseline = real_only_cell(cells, fraction)
    regime = f"With only {fraction:.0%} of the real data"
    if baseline is None:
        return [Finding(f"{regime}: the {fraction:.0%}-real-only cell has not finished yet.")]
    findings = [Finding(f"{regime}, real data alone scores F1-macro {baseline.f1_macro.format()}.")]
    mixes = [
        c
        for c in ranked(cells)
        if c.plan in SMALL_REAL_PLANS
        and c.source is not None
        and math.isclose(c.real_fraction, fraction)
        and c.key in versus
    ]
    if not mixes:
        return findings
    best = mixes[0]
    findings.append(
        Finding(
            f"{regime}, synthetic data {tally(mixes, versus)}. The best mix, {best.label}: "
            f"{outcome(versus[best.key])}.",
            _overall(mixes, versus),
        )
    )
    sources = list(dict.fromkeys(c.source for c in mixes if c.source is not None))
    if len(sources) > 1:
        for source in sources:
            mine = [c for c in mixes if c.source == source]
            counts = "" if len(mine) == 1 else f"; {tally(mine, versus)}"
            findings.append(
                Finding(
                    f"Source {source}: best small-real mix {mine[0].title}, "
                    f"{outcome(versus[mine[0].key])}{counts}.",
                    _overall(mine, versus),
                )
            )
    return findings


def _all_real_findings(cells: Sequence[CellSummary], versus: Mapping[str, Versus]) -> list[Finding]:
    """All real + synthetic and synthetic only: both are measured against all real data."""
    findings = []
    for plan, lead in (
        (REAL_PLUS_EQUAL, "All real data + synthetic"),
        (SYNTHETIC_ONLY, "Synthetic data only"),
    ):
        mixes = [c for c in ranked(cells) if c.plan == plan and c.key in versus]
        if not mixes:
            continue
        parts = "; ".join(f"{c.source}: {outcome(versus[c.key])}" for c in mixes)
        findings.append(
            Finding(f"{lead}, against all real data: {parts}.", _overall(mixes, versus))
        )
    return findings


def tally(mixes: Sequence[CellSummary], versus: Mapping[str, Versus]) -> str:
    counts = Counter(versus[c.key].result.verdict for c in mixes)
    if len(mixes) == 1:
        verdict = versus[mixes[0].key].result.verdict
        return "had no detectable effect" if verdict is Verdict.NO_EFFECT else verdict.value
    if not counts[Verdict.HELPED] and not counts[Verdict.HURT]:
        return f"had no detectable effect in any of the {len(mixes)} mixes"
    return (
        f"helped in {counts[Verdict.HELPED]} of {len(mixes)} mixes and hurt in "
        f"{counts[Verdict.HURT]}"
    )


def _overall(mixes: Sequence[CellSummary], versus: Mapping[str, Versus]) -> Verdict:
    verdicts = {versus[c.key].result.verdict for c in mixes}
    for verdict in (Verdict.HELPED, Verdict.HURT):
        if verdict in verdicts:
            return verdict
    return Verdict.NO_EFFECT


def against(baseline: CellSummary) -> str:
    if baseline.is_reference:
        return "all real data"
    return f"{baseline.real_fraction:.0%} real alone"


def outcome(paired: Versus) -> str:
    """`hurt: -0.020 vs 10% real alone (95% CI [-0.031, -0.009], P(improvement) 0.02,
    corrected p 0.004)`; for no detectable effect, also what this design could have found."""
    result = paired.result
    numbers = f"{result.difference:+.3f} vs {against(paired.baseline)}"
    if result.seeds < 2:
        return f"no detectable effect: {numbers} (one seed, so no test)"
    stats = (
        f"95% CI [{result.low:+.3f}, {result.high:+.3f}], P(improvement) "
        f"{result.p_improvement:.2f}, corrected p {format_p(result.p_adjusted)}"
    )
    if result.verdict is not Verdict.NO_EFFECT:
        return f"{result.verdict.value}: {numbers} ({stats})"
    return f"no detectable effect: {numbers} ({stats}; {power(result)})"


def power(result: PairedComparison) -> str:
    """What "no detectable effect" rules out, and whether more seeds would settle it."""
    detectable = f"this design detects about ±{result.detectable:.3f}"
    if result.difference == 0:
        return detectable
    seeds = result.seeds_for(result.difference)
    if seeds is None:
        most = MAX_SUGGESTED_SEEDS
        return f"{detectable}; not even {most} seeds would detect {result.difference:+.3f}"
    return f"{detectable}; about {seeds} seeds would detect {result.difference:+.3f}"


def format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


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


def notes(
    cells: Sequence[CellSummary],
    rewrites: frozenset[str] = frozenset(),
    versus: Mapping[str, Versus] | None = None,
    fallback: str = "",
    multi_label: bool = False,
) -> list[str]:
    """`fallback`: why per-text predictions could not be used, when they could not;
    `multi_label`: the run's texts carry label sets (F1-macro is the mean over labels)."""
    seeds = sorted({cell.seeds for cell in cells})
    rewritten = sorted({c.source for c in cells if rewrites_all_real(c, rewrites) and c.source})
    notes = [
        "± is the half-width of the 95% Student-t confidence interval of the mean over seeds "
        f"(seeds per cell: {', '.join(str(s) for s in seeds)})."
    ]
    if versus:
        notes.extend(method_notes([v.result for v in versus.values()], fallback, multi_label))
    if seeds[0] < 2:
        notes.append("Cells with a single seed have no interval: treat their gaps as anecdotes.")
    if rewritten:
        notes.append(
            f"{', '.join(rewritten)}: rule-based rewrites of the real texts a cell trains on; "
            'its "synthetic only" cells rewrite all real training texts, so they do not show '
            "what a model trained without real data would score."
        )
    return notes


def method_notes(
    results: Sequence[PairedComparison], fallback: str = "", multi_label: bool = False
) -> list[str]:
    """How "helped", "hurt" and "no detectable effect" were decided, with citations."""
    texts = max((r.texts for r in results), default=0)
    seed_level = sum(not r.text_level for r in results)
    tested = sum(not math.isnan(r.p_adjusted) for r in results)
    labels_part = (
        "; a resampled text brings all its label decisions, and F1-macro, the mean of "
        "per-label F1, is recomputed on each resample from the stored per-text label "
        "predictions"
        if multi_label
        else ""
    )
    texts_part = (
        f"a paired bootstrap over the {texts} test texts ({RESAMPLES} resamples; both models "
        'rescored on the same resampled texts, as recommended by Dror et al. 2018, "The '
        f"Hitchhiker's Guide to Testing Statistical Significance in NLP\"{labels_part}) and "
        if texts
        else ""
    )
    lines = [
        "Did a mix help? Each mix is compared with its baseline (the same real data without the "
        "synthetic texts; for synthetic data only, all real data) on the same seeds and test "
        f"texts: {texts_part}the spread of the per-seed differences (a paired t over seeds, "
        'after Bouthillier et al. 2021, "Accounting for Variance in Machine Learning '
        'Benchmarks"). [ ] is the 95% CI of the mean difference in F1-macro; P(improvement) is '
        "the probability that the mix beats its baseline on a random seed"
        + (" and resampled test set" if texts else "")
        + f". The {tested} tested comparisons of this report are corrected together with "
        f'Holm\'s method (family-wise error {ALPHA:.0%}): a mix "helped" or "hurt" only '
        f"when its corrected p is below {ALPHA}; otherwise it had no detectable effect, "
        "reported with the smallest difference this design detects (80% power) and the seeds "
        "that would detect the difference seen."
    ]
    if seed_level:
        why = fallback or (
            "their records hold no per-text test predictions (written before predictions "
            "were stored)"
        )
        lines.append(
            ("Seed-level only: " if seed_level == len(results) else "")
            + f"{seed_level} of {len(results)} comparisons used per-seed scores only (paired t "
            f"over seeds, without the test-text bootstrap), because {why}."
        )
    return lines
