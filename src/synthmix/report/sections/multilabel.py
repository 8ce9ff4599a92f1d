"""The report section of a multi-label run: the metrics a multi-label reader looks for,
per cell, beside the F1-macro (macro over labels) the rest of the report ranks by."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from synthmix.experiment.results import record_classifier
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import Section, Table
from synthmix.stats.classification import mean_ci

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
    records: list[dict[str, Any]], classifier: str, info: dict[str, Any] | None = None
) -> Section:
    """Mean ± 95% CI over seeds of micro/macro/samples F1, subset accuracy and Hamming loss,
    per cell, for `classifier`'s fits, best micro-F1 first; with `info` (run.json), what the
    data's label sets look like."""
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
    return Section(
        SECTION_TITLE,
        f'<p class="note">{esc(note)}</p>\n'
        + (f"<ul>{html_lines}</ul>\n" if lines else "")
        + html_table(table),
        f"_{note}_\n\n" + (f"{md_lines}\n" if lines else "") + f"{md_table(table)}\n",
    )
