"""The report of one experiment run: did synthetic data help, and which source and mix won.

`write_report(run_dir)` writes `report.html` (self-contained: plots are embedded as PNG data
URIs, so the file can be mailed or attached to a ticket on its own) and `report.md`, whose
plots are PNG files in `figures/` next to it. Every mix is compared with its baseline on
paired seeds and test texts (`stats.paired`), all comparisons Holm-corrected together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthmix.core.errors import SynthmixError
from synthmix.experiment.results import ResultsStore, classifier_labels, record_classifier
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.source_stats import read_source_stats
from synthmix.report.cells import cell_summaries, find_reference, rule_based_sources
from synthmix.report.evidence import Evidence, class_comparisons, mix_comparisons
from synthmix.report.findings import headline, notes
from synthmix.report.html import render_html
from synthmix.report.markdown import render_markdown
from synthmix.report.model import (
    FIGURE_NAMES,
    CellSummary,
    Report,
    ReportPaths,
)
from synthmix.report.plots import figures
from synthmix.report.sections.cost import cost_section
from synthmix.report.sections.quality import generation_sections, quality_sections
from synthmix.report.sections.tuning import tuning_note, tuning_section
from synthmix.report.tables import ranking_table, run_tables
from synthmix.report.testset import load_test_labels


def write_report(run_dir: str | Path | RunDir) -> ReportPaths:
    """Write RUN_DIR/report.html, RUN_DIR/report.md and RUN_DIR/figures/*.png."""
    run = RunDir.of(run_dir)
    info = run.read_info()
    records = ResultsStore(run).records()
    if not records:
        raise SynthmixError(f"{run.root}: no finished cells yet; run the experiment first")
    classifiers = classifier_labels(info, records)
    # Every section but "Classifiers compared" answers the synthetic-data question for one
    # classifier, the primary: a cell's mean over several classifiers would compare nothing.
    primary = [r for r in records if record_classifier(r) == classifiers[0]]
    cells = cell_summaries(primary)
    gold = load_test_labels(info)
    evidence = Evidence(records, gold.labels, gold.reason, gold_sets=gold.label_sets)
    report = build_report(info, cells, evidence, classifiers[0], records)
    report.notes.append(tuning_note(primary))
    if len(classifiers) > 1:
        from synthmix.report.sections.compare import SECTION_TITLE, comparison_section

        report.notes.append(
            f"This run compares {len(classifiers)} classifiers ({', '.join(classifiers)}). "
            f"The headline, plots, ranking and quality sections are for the primary one, "
            f'{classifiers[0]}; the section "{SECTION_TITLE}" puts all of them side by side.'
        )
        report.sections.append(comparison_section(records, classifiers, info, evidence))
    if info.get("task") == "multi_label":
        from synthmix.report.sections.multilabel import multilabel_section

        report.sections.insert(
            0, multilabel_section(records, classifiers[0], info, cells, evidence, report.versus)
        )
    tuned = tuning_section(primary, cells)
    if tuned is not None:
        report.sections.append(tuned)
    report.sections.extend(generation_sections(run))
    costs = cost_section(read_source_stats(run), cells, report.versus, primary)
    if costs is not None:
        report.sections.append(costs)
    report.sections.extend(quality_sections(run, cells))
    write_figures(run.figures_dir, report)
    paths = ReportPaths(html=run.report_html, markdown=run.report_markdown)
    paths.html.write_text(render_html(report), encoding="utf-8")
    paths.markdown.write_text(render_markdown(report), encoding="utf-8")
    return paths


def build_report(
    info: dict[str, Any],
    cells: list[CellSummary],
    evidence: Evidence | None = None,
    classifier: str = "",
    records: Sequence[dict[str, Any]] = (),
) -> Report:
    """The report of `classifier`'s `cells`; with `evidence` (its fits), every mix is compared
    with its baseline, paired over seeds and test texts. `records` (every fit of the run)
    give the timings table."""
    reference = find_reference(cells)
    rewrites = rule_based_sources(info)
    versus = mix_comparisons(cells, evidence, classifier)
    fallback = evidence.reason if evidence is not None else ""
    return Report(
        name=str(info.get("name", "experiment")),
        findings=headline(cells, versus),
        plots=figures(
            cells, reference, versus, class_comparisons(cells, evidence, classifier, versus)
        ),
        ranking=ranking_table(cells, rewrites, versus),
        run_tables=run_tables(info, records),
        config_json=json.dumps(info.get("config", {}), ensure_ascii=False, indent=2),
        notes=notes(cells, rewrites, versus, fallback, info.get("task") == "multi_label"),
        versus=versus,
    )


def write_figures(directory: Path, report: Report) -> None:
    """The plots and every section's figures, as PNG files for the Markdown report."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {f"{plot.name}.png": plot.png for plot in report.plots}
    for section in report.sections:
        files.update(section.figures)
    for name in FIGURE_NAMES:
        if f"{name}.png" not in files:
            # A figure left by an earlier report would show data this report no longer has.
            (directory / f"{name}.png").unlink(missing_ok=True)
    for name, png in files.items():
        (directory / name).write_bytes(png)
