"""The Markdown report, whose plots are PNG files in figures/ next to it."""

from __future__ import annotations

from synthmix.experiment.run_dir import FIGURES_FOLDER
from synthmix.report.model import Finding, Report, Table

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
            [f"![{plot.title}]({FIGURES_FOLDER}/{plot.name}.png)", "", f"*{plot.caption}*", ""]
        )
    parts.extend(["## Ranking", "", md_table(report.ranking), ""])
    for section in report.sections:
        parts.extend([f"## {section.title}", "", section.markdown, ""])
    parts.extend(["## Run", ""])
    for title, table in report.run_tables:
        parts.extend([f"### {title}", "", md_table(table), ""])
    parts.extend(["### Full configuration", "", "```json", report.config_json, "```", ""])
    return "\n".join(parts)
