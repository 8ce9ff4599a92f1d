"""Report sections on the synthetic sources: how each was generated, and its quality metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synthmix.experiment.mixing import SMALL_REAL_PLUS_COUNT, SMALL_REAL_PLUS_SYNTHETIC
from synthmix.experiment.run_dir import RunDir
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import DASH, CellSummary, Section, Table

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
    ("retries", "retries"),
    ("failed_calls", "calls gave up"),
)


def generation_sections(run: RunDir) -> list[Section]:
    """How each LLM source was made and what dedup removed, from RUN_DIR/sources.json."""
    from synthmix.experiment.source_stats import read_source_stats

    all_stats = read_source_stats(run)
    sections = [*_trust_sections(all_stats), *_judged_sections(all_stats)]
    stats = {name: totals for name, totals in all_stats.items() if "texts_returned" in totals}
    if not stats:
        return sections
    columns: tuple[tuple[str, str], ...] = GENERATION_COLUMNS
    if any(totals.get("unused_calls") for totals in stats.values()):
        # Only runs that made spare calls have the column.
        columns = (*columns[:2], ("unused_calls", "unused"), *columns[2:])
    if any(totals.get("classifier_dropped") for totals in stats.values()):
        # Only runs with a classifier filter have the column (in their generation report).
        columns = (*columns, ("classifier_dropped", "classifier drop"))
    headers = ["source", *(title for _, title in columns), "yield", "cost", "redacted"]
    rows = [
        [name]
        + [str(int(totals.get(key, 0))) for key, _ in columns]
        + [f"{float(totals.get('yield', 0.0)):.2f}", f"{float(totals.get('cost', 0.0)):.4f}"]
        + [_redacted(totals)]
        for name, totals in stats.items()
    ]
    table = Table(headers, rows, frozenset(range(1, len(headers))))
    note = (
        "What generating each source took: LLM calls (answered from the cache; unused: "
        "spare calls answered after their class reached its target, paid and cached but "
        "not read), texts the model returned, distinct texts among them (unique; the last "
        "batch of a class can overshoot its target, so unique can exceed kept), texts kept "
        "in the source, and "
        "what was dropped: exact repeats, near-duplicates of kept texts (MinHash), "
        "near-copies of real texts (privacy leaks), degenerate outputs, and the last text of "
        "answers cut off at max_tokens; then the server's faults: requests retried and calls "
        "that gave up. Yield = unique / returned. Redacted: whether personal data in the real "
        "examples was replaced before they went into prompts, and how many values. Sources "
        "made outside synthmix have no row."
    )
    return [*sections, _table_section("Generation and deduplication per source", note, table)]


def _redacted(totals: dict[str, Any]) -> str:
    if "redacted" not in totals:
        return DASH  # a report from before redaction was recorded
    if not totals["redacted"]:
        return "no"
    return f"yes ({int(totals.get('redacted_values', 0))} values)"


def _trust_sections(stats: dict[str, dict[str, Any]]) -> list[Section]:
    """How far the labels of auto-labeled sources can be trusted, from their label reports."""
    rows = []
    for name, totals in stats.items():
        trust = totals.get("trust")
        if not isinstance(trust, dict):
            continue
        rows.append(
            [
                name,
                str(trust.get("decided", 0)),
                _proportion(trust.get("decided_estimated_precision")),
                str(trust.get("fallback", 0)),
                _proportion(trust.get("fallback_estimated_precision")),
                "yes" if trust.get("calibrated") else "no",
            ]
        )
    if not rows:
        return []
    headers = ["source", "decided", "est. precision", "fallback guesses", "est. precision",
               "calibrated"]  # fmt: skip
    note = (
        "Sources labeled by `synthmix label`: how many labels a stage decided and the "
        "precision estimated for them (95% Wilson interval, from labeled examples held out "
        "in calibration), and the same for fallback guesses where the source keeps them."
    )
    table = Table(headers, rows, frozenset({1, 3}))
    return [_table_section("Trust in auto-labeled sources", note, table)]


def _judged_sections(stats: dict[str, dict[str, Any]]) -> list[Section]:
    """What each judged source's classifier filter and label-issue check dropped, per class,
    fitted inside each cell on the real texts the cell may see."""
    classes = sorted(
        {
            label
            for totals in stats.values()
            for entry in (totals.get("judged") or {}).values()
            for label in entry.get("dropped", {})
        }
    )
    rows = []
    for name, totals in stats.items():
        judged = totals.get("judged")
        if not isinstance(judged, dict):
            continue
        for fraction, entry in sorted(judged.items(), key=lambda item: float(item[0])):
            by_judge = entry.get("by_judge", {})
            rows.append(
                [
                    name,
                    f"{float(fraction):.0%}",
                    str(entry.get("texts", 0)),
                    _mean(sum(by_judge.get("classifier", {}).values()))
                    if "classifier" in by_judge
                    else DASH,
                    _mean(sum(by_judge.get("label_issues", {}).values()))
                    if "label_issues" in by_judge
                    else DASH,
                    f"{float(entry.get('dropped_share', 0.0)):.0%}",
                    *(_mean(entry.get("dropped", {}).get(label, 0)) for label in classes),
                ]
            )
    if not rows:
        return []
    headers = ["source", "real", "texts", "classifier drop", "label-issue drop", "dropped",
               *(f"dropped: {label}" for label in classes)]  # fmt: skip
    note = (
        "Sources judged inside each cell: a classifier trained on the real texts the cell may "
        "see keeps a text only when it confirms the text's label (the rule is in the config), "
        "and cleanlab drops the texts it flags as label issues among those real texts and "
        "the source's. Texts dropped, averaged over the seeds' real samples, per real "
        "fraction (synthetic-only cells are judged on all real texts: 100%)."
    )
    numeric = frozenset(range(2, len(headers)))
    return [_table_section("What the source filters dropped", note, Table(headers, rows, numeric))]


def _mean(value: float) -> str:
    return f"{value:g}"


def _proportion(value: Any) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return DASH
    return f"{value['value']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"


def quality_sections(run: RunDir, cells: Sequence[CellSummary]) -> list[Section]:
    """Sections for RUN_DIR/quality/*.json, written by `synthmix experiment --quality` or
    `synthmix quality ... --out RUN_DIR/quality/<source>.json`."""
    from synthmix.report.sections.usefulness import load_quality_dir, usefulness_section

    folder = run.quality_dir
    quality = load_quality_dir(folder) if folder.is_dir() else {}
    if not quality:
        return []
    from synthmix.report.sections.multilabel_quality import per_label_sections

    sections = [_quality_table_section(quality)]
    plan, amount = _usefulness_cell(cells)
    sections.extend(per_label_sections(quality, cells, plan, amount))
    if plan is not None:
        useful = usefulness_section(run, quality, plan=plan, ratio=amount)
        sections.append(
            Section(
                "Which quality metric predicts usefulness?",
                useful.html,
                useful.markdown,
                dict(useful.figures),
            )
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
