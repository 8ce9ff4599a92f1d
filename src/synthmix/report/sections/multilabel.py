"""The report section of a multi-label run: the metrics a multi-label reader looks for,
per cell, beside the F1-macro (macro over labels) the rest of the report ranks by."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from synthmix.experiment.results import record_classifier
from synthmix.experiment.run_dir import FIGURES_FOLDER
from synthmix.report.evidence import F1_MICRO, Evidence, class_comparisons
from synthmix.report.findings import against, format_p
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import DASH, CellSummary, Section, Table, Versus
from synthmix.report.plots import per_label_difference_plot
from synthmix.stats.classification import mean_ci
from synthmix.stats.paired import RESAMPLES, PairedComparison, correct

SECTION_TITLE = "Multi-label metrics"
COLUMNS = (
    ("f1_micro", "micro-F1"),
    ("f1_macro", "macro-F1"),
    ("f1_samples", "samples-F1"),
    ("subset_accuracy", "subset accuracy"),
    ("hamming_loss", "Hamming loss"),
)


def is_multilabel(info: dict[str, Any]) -> bool:
    return info.get("task") == "multi_label"


def data_lines(info: dict[str, Any]) -> list[str]:
    """Rows with several labels, with none, and the most frequent label pairs, per split."""
    lines = []
    for role in ("train", "test"):
        described = (info.get("data") or {}).get(role) or {}
        if "rows_with_several_labels" not in described:
            continue
        pairs = ", ".join(
            f"{' + '.join(item['labels'])} ({item['texts']})"
            for item in described.get("cooccurrence", [])[:5]
        )
        lines.append(
            f"{role}: {described['rows']} texts, {described['rows_with_several_labels']} with "
            f"two or more labels, {described['rows_without_label']} with none"
            + (f"; most frequent pairs: {pairs}" if pairs else "")
        )
    return lines


def multilabel_section(
    records: list[dict[str, Any]],
    classifier: str,
    info: dict[str, Any] | None = None,
    cells: Sequence[CellSummary] = (),
    evidence: Evidence | None = None,
    versus: Mapping[str, Versus] | None = None,
) -> Section:
    """Mean ± 95% CI over seeds of micro/macro/samples F1, subset accuracy and Hamming loss,
    per cell, for `classifier`'s fits, best micro-F1 first; with `info` (run.json), what the
    data's label sets look like; with `evidence` and `versus` (each mix against its baseline,
    in macro-F1), the paired macro- and micro-F1 differences and the per-label heatmap."""
    by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
    titles: dict[str, str] = {}
    for record in records:
        if record_classifier(record) != classifier:
            continue
        by_cell[record["cell_key"]].append(record["metrics"])
        source = record["cell"].get("source")
        titles[record["cell_key"]] = (
            f"{source} — {record['cell']['title']}" if source else record["cell"]["title"]
        )
    rows = []
    for key, fits in by_cell.items():
        estimates = [mean_ci([float(fit[metric]) for fit in fits]) for metric, _ in COLUMNS]
        rows.append((estimates[0].mean, [titles[key], *(e.format() for e in estimates)]))
    rows.sort(key=lambda item: -item[0])
    table = Table(
        headers=["cell", *(title for _, title in COLUMNS)],
        rows=[row for _, row in rows],
        numeric=frozenset(range(1, len(COLUMNS) + 1)),
    )
    note = (
        "A multi-label run: a text carries any number of labels. F1-macro elsewhere in this "
        "report is the mean of per-label F1 and accuracy is subset accuracy (every label of "
        "a text right); micro-F1 pools every text-label decision, samples-F1 averages F1 "
        "per text, Hamming loss is the share of wrong text-label decisions (lower is better). "
        "The per-class heatmap shows per-label F1."
    )
    lines = data_lines(info or {})
    html_lines = "".join(f"<li>{esc(line)}</li>" for line in lines)
    md_lines = "".join(f"- {line}\n" for line in lines)
    html = (
        f'<p class="note">{esc(note)}</p>\n'
        + (f"<ul>{html_lines}</ul>\n" if lines else "")
        + html_table(table)
    )
    markdown = f"_{note}_\n\n" + (f"{md_lines}\n" if lines else "") + f"{md_table(table)}\n"
    figures: dict[str, bytes] = {}
    if evidence is not None and versus:
        paired, paired_note = paired_table(cells, evidence, classifier, versus)
        html += f'\n<h3>{PAIRED_TITLE}</h3>\n<p class="note">{esc(paired_note)}</p>\n'
        html += html_table(paired)
        markdown += f"\n### {PAIRED_TITLE}\n\n_{paired_note}_\n\n{md_table(paired)}\n"
        per_label = class_comparisons(cells, evidence, classifier, versus)
        support = test_support(info or {})
        plot = per_label_difference_plot(cells, versus, per_label, support)
        if plot is not None:
            name = f"{plot.name}.png"
            figures[name] = plot.png
            encoded = base64.b64encode(plot.png).decode("ascii")
            html += (
                f'\n<figure><img alt="{esc(plot.title)}" src="data:image/png;base64,{encoded}">'
                f"<figcaption>{esc(plot.caption)}</figcaption></figure>\n"
            )
            markdown += f"\n![{plot.title}]({FIGURES_FOLDER}/{name})\n\n_{plot.caption}_\n"
    return Section(SECTION_TITLE, html, markdown, figures)


PAIRED_TITLE = "Mixes against their baselines, in macro- and micro-F1"


def test_support(info: dict[str, Any]) -> dict[str, int]:
    """Test texts per label, from run.json."""
    counts = ((info.get("data") or {}).get("test") or {}).get("class_counts") or {}
    return {str(label): int(n) for label, n in counts.items()}


def paired_table(
    cells: Sequence[CellSummary],
    evidence: Evidence,
    classifier: str,
    versus: Mapping[str, Versus],
) -> tuple[Table, str]:
    """Every mix's paired difference to its baseline in macro-F1 (the headline's verdicts)
    and in micro-F1 (a family of its own, Holm-corrected together), with how it was paired."""
    by_key = {cell.key: cell for cell in cells}
    mixes = [by_key[key] for key in versus if key in by_key]
    micro = [
        evidence.compare(
            (classifier, cell.key), (classifier, versus[cell.key].baseline.key), metric=F1_MICRO
        )
        for cell in mixes
    ]
    tested = [result for result in micro if result is not None]
    corrected = iter(correct(tested))
    micro_corrected = [None if result is None else next(corrected) for result in micro]
    rows = []
    for cell, micro_result in zip(mixes, micro_corrected, strict=True):
        macro_result = versus[cell.key].result
        rows.append(
            [
                cell.label,
                against(versus[cell.key].baseline),
                macro_result.format(),
                _verdict(macro_result),
                DASH if micro_result is None else micro_result.format(),
                DASH if micro_result is None else _verdict(micro_result),
                "texts and seeds" if macro_result.text_level else SEED_LEVEL,
            ]
        )
    texts = max((versus[c.key].result.texts for c in mixes), default=0)
    how = (
        f"a paired bootstrap over the {texts} test texts ({RESAMPLES} resamples shared by "
        "every fit; a resampled text brings all its label decisions, and macro-F1 (mean of "
        "per-label F1) and micro-F1 (pooled decisions) are recomputed from the stored per-text "
        "label predictions on each resample) together with the spread of the per-seed "
        "differences (paired t over seeds), as for single-label runs"
        if texts
        else f"per-seed scores only (paired t over seeds; {SEED_LEVEL}), because "
        f"{evidence.reason or 'per-text predictions could not be paired'}"
    )
    note = (
        "Each mix against its baseline (the same real data alone; for synthetic data only, "
        f"all real data) on the same seeds and test texts: {how}. Macro-F1 comparisons are the "
        "headline's, Holm-corrected with it; the micro-F1 comparisons form a family of their "
        "own, Holm-corrected together."
    )
    headers = [
        "mix",
        "baseline",
        "Δ macro-F1 [95% CI]",
        "macro verdict (corrected p)",
        "Δ micro-F1 [95% CI]",
        "micro verdict (corrected p)",
        "paired over",
    ]
    return Table(headers, rows, frozenset({2, 4})), note


SEED_LEVEL = "seed-level only"


def _verdict(result: PairedComparison) -> str:
    return f"{result.verdict.value} ({format_p(result.p_adjusted)})"
