from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from run_records import result_record
from synthmix.core.errors import SynthmixError
from synthmix.experiment.mixing import (
    HALF_AND_HALF,
    REAL_ONLY,
    REAL_PLUS_EQUAL,
    SMALL_REAL_PLUS_SYNTHETIC,
    SYNTHETIC_ONLY,
    Cell,
)
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import write_run_info
from synthmix.report import write_report
from synthmix.report.cells import cell_summaries, rule_based_sources
from synthmix.report.tables import ranking_table

CLASSES = ["no_emotion", "joy", "sadness", "surprise", "fear", "anger"]
TRAIN_COUNTS = {
    "no_emotion": 300,
    "joy": 200,
    "sadness": 180,
    "surprise": 90,
    "fear": 80,
    "anger": 60,
}


def run_info(sources: list[str], classes: list[str] = CLASSES) -> dict[str, Any]:
    counts = {label: TRAIN_COUNTS.get(label, 50) for label in classes}
    return {
        "name": "cedr-demo",
        "config": {"name": "cedr-demo", "seeds": [0, 1, 2]},
        "seeds": [0, 1, 2],
        "classifier": {"name": "tfidf_logreg", "params": {"C": 4.0}},
        "data": {
            "train": {"source": "train.csv", "rows": 910, "class_counts": counts},
            "test": {"source": "test.csv", "rows": 300, "class_counts": counts},
            "sources": {
                name: {"source": f"{name}.csv", "rows": 900, "class_counts": counts}
                for name in sources
            },
        },
        "versions": {"scikit-learn": "1.5.0", "synthmix": "0.1.0"},
        "started_at": "2024-05-01T12:00:00+00:00",
    }


def make_run(
    run_dir: Path,
    scores: dict[Cell, list[float]],
    classes: list[str] = CLASSES,
    shortfall: dict[Cell, int] | None = None,
) -> Path:
    """A run directory with one record per (cell, seed); `scores` gives F1 per seed."""
    sources = sorted({cell.source for cell in scores if cell.source is not None})
    write_run_info(run_dir, run_info(sources, classes))
    store = ResultsStore(run_dir)
    for cell, values in scores.items():
        for seed, value in enumerate(values):
            store.append(
                result_record(cell, seed, value, classes, shortfall=(shortfall or {}).get(cell, 0))
            )
    return run_dir


def make_run_records(run_dir: Path, scores: dict[Cell, list[float]]) -> list[dict[str, Any]]:
    return ResultsStore(make_run(run_dir, scores)).records()


ALL_REAL = Cell(REAL_ONLY, 1.0)
SMALL_REAL = Cell(REAL_ONLY, 0.1)


def small_mix(ratio: float, source: str = "eda") -> Cell:
    return Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, ratio, source)


def full_grid() -> dict[Cell, list[float]]:
    return {
        SMALL_REAL: [0.50, 0.51, 0.52],
        Cell(REAL_ONLY, 0.5): [0.64, 0.65, 0.66],
        ALL_REAL: [0.70, 0.71, 0.72],
        Cell(SYNTHETIC_ONLY, 0.0, 1.0, "eda"): [0.40, 0.42, 0.44],
        Cell(HALF_AND_HALF, 0.5, 0.5, "eda"): [0.60, 0.62, 0.64],
        Cell(REAL_PLUS_EQUAL, 1.0, 1.0, "eda"): [0.73, 0.74, 0.75],
        small_mix(0.5): [0.55, 0.56, 0.57],
        small_mix(1.0): [0.60, 0.61, 0.62],
        Cell(SYNTHETIC_ONLY, 0.0, 1.0, "llm"): [0.30, 0.31, 0.32],
        small_mix(0.5, "llm"): [0.50, 0.52, 0.54],
        small_mix(1.0, "llm"): [0.49, 0.51, 0.53],
    }


def headline_of(html_text: str) -> str:
    match = re.search(r'<section class="headline">(.*?)</section>', html_text, re.S)
    assert match is not None
    return match.group(1)


def test_writes_self_contained_html_and_markdown_with_figures(tmp_path: Path) -> None:
    paths = write_report(make_run(tmp_path, full_grid()))

    assert paths.html == tmp_path / "report.html"
    assert paths.markdown == tmp_path / "report.md"
    html_text = paths.html.read_text(encoding="utf-8")
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert html_text.count("data:image/png;base64,") == 3
    assert 'src="figures/' not in html_text
    for name in ("f1_vs_synthetic_ratio", "learning_curve", "per_class_f1"):
        assert f"(figures/{name}.png)" in markdown
        assert (tmp_path / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    # The run section makes the report reproducible.
    assert "tfidf_logreg" in html_text and "scikit-learn" in html_text
    assert "no_emotion: 300" in markdown


def test_ranking_puts_best_cell_first_and_computes_gap(tmp_path: Path) -> None:
    make_run(tmp_path, full_grid())
    table = ranking_table(cell_summaries(ResultsStore(tmp_path).records()))

    first = dict(zip(table.headers, table.rows[0], strict=True))
    assert (first["rank"], first["source"], first["mix"]) == (
        "1",
        "eda",
        "all real + equal synthetic",
    )
    means = [float(row[3].split(" ")[0]) for row in table.rows]
    assert means == sorted(means, reverse=True)
    half = next(row for row in table.rows if row[2] == "half real + half synthetic")
    # mean 0.62, t(0.975, 2) * 0.02 / sqrt(3) = 0.0497; all real is 0.71.
    assert half[3] == "0.620 ± 0.050"
    assert half[4] == "-0.090"
    reference = next(row for row in table.rows if row[2] == "100% real")
    assert (reference[1], reference[4]) == ("—", "reference")


def test_headline_says_helped_when_paired_differences_are_consistent(tmp_path: Path) -> None:
    scores = {SMALL_REAL: [0.50, 0.51, 0.52], ALL_REAL: [0.70, 0.71, 0.72]}
    scores[small_mix(1.0)] = [0.60, 0.61, 0.62]
    headline = headline_of(write_report(make_run(tmp_path, scores)).html.read_text())

    assert "With only 10% of the real data, synthetic data helped" in headline
    assert "+0.100 vs 10% real alone" in headline
    assert "within noise" not in headline


def test_headline_says_no_detectable_effect_when_paired_differences_vary(
    tmp_path: Path,
) -> None:
    scores = {SMALL_REAL: [0.50, 0.51, 0.52], ALL_REAL: [0.70, 0.71, 0.72]}
    scores[small_mix(1.0)] = [0.49, 0.53, 0.57]
    headline = headline_of(write_report(make_run(tmp_path, scores)).html.read_text())

    assert "With only 10% of the real data, synthetic data had no detectable effect" in headline
    assert "this design detects about ±" in headline
    assert "synthetic data helped" not in headline


def test_headline_says_hurt_when_mix_is_worse_on_every_seed(tmp_path: Path) -> None:
    scores = {SMALL_REAL: [0.50, 0.51, 0.52], ALL_REAL: [0.70, 0.71, 0.72]}
    scores[small_mix(1.0)] = [0.40, 0.41, 0.42]
    headline = headline_of(write_report(make_run(tmp_path, scores)).html.read_text())

    assert "With only 10% of the real data, synthetic data hurt" in headline
    assert "hurt: -0.100 vs 10% real alone" in headline
    assert "synthetic data helped" not in headline


def test_headline_names_best_source_per_source(tmp_path: Path) -> None:
    headline = headline_of(write_report(make_run(tmp_path, full_grid())).html.read_text())

    assert "Best cell overall: eda — all real + equal synthetic" in headline
    assert "+0.030 vs all real" in headline
    assert "Source eda: best small-real mix 10% real + 100% synthetic" in headline
    assert "Source llm: best small-real mix 10% real + 50% synthetic" in headline
    assert "Sources ranked by their best cell: eda (0.740), llm (0.520)." in headline


def test_html_escapes_labels(tmp_path: Path) -> None:
    classes = ["a<b", "joy&fun"]
    scores = {ALL_REAL: [0.7, 0.7, 0.7], SMALL_REAL: [0.5, 0.5, 0.5]}
    scores[small_mix(0.5, "<script>")] = [0.6, 0.6, 0.6]
    html_text = write_report(make_run(tmp_path, scores, classes)).html.read_text()

    assert "a<b" not in html_text and "<script>" not in html_text
    assert "&lt;script&gt;" in html_text
    assert "joy&amp;fun" in html_text


def test_shortfall_is_noted(tmp_path: Path) -> None:
    scores = {ALL_REAL: [0.7, 0.7, 0.7], SMALL_REAL: [0.5, 0.5, 0.5]}
    mix = small_mix(1.0)
    scores[mix] = [0.6, 0.6, 0.6]
    markdown = write_report(make_run(tmp_path, scores, shortfall={mix: 7})).markdown.read_text()

    assert "source had 7 fewer synthetic texts than asked" in markdown


def test_empty_run_raises(tmp_path: Path) -> None:
    write_run_info(tmp_path, run_info([]))

    with pytest.raises(SynthmixError) as error:
        write_report(tmp_path)
    assert str(error.value) == f"{tmp_path}: no finished cells yet; run the experiment first"


def test_learning_curve_only_run_renders(tmp_path: Path) -> None:
    scores = {SMALL_REAL: [0.50, 0.51, 0.52], ALL_REAL: [0.70, 0.71, 0.72]}
    make_run(tmp_path, scores)
    write_run_info(tmp_path, {"name": "bare"})  # optional keys missing must not break it
    paths = write_report(tmp_path)

    html_text = paths.html.read_text()
    assert "No synthetic data in this run" in headline_of(html_text)
    assert "-0.200 vs all real" in headline_of(html_text)
    assert (tmp_path / "figures" / "learning_curve.png").exists()
    assert not (tmp_path / "figures" / "f1_vs_synthetic_ratio.png").exists()


def test_synthetic_only_cells_of_rule_based_sources_are_marked_as_rewrites(
    tmp_path: Path,
) -> None:
    make_run(tmp_path, full_grid())
    info = run_info(["eda", "llm"])
    info["data"]["sources"]["eda"] = {"source": "rule-based augmentation per cell: {}"}
    write_run_info(tmp_path, info)
    markdown = write_report(tmp_path).markdown.read_text(encoding="utf-8")

    assert rule_based_sources(info) == {"eda"}
    rows = [line.split(" | ") for line in markdown.splitlines() if " | synthetic only | " in line]
    notes = {row[1]: row[-1].rstrip(" |") for row in rows}
    assert notes == {"eda": "rewrites of all real training texts", "llm": ""}
    assert "eda: rule-based rewrites of the real texts a cell trains on" in markdown


def test_single_seed_cells_render_without_interval(tmp_path: Path) -> None:
    scores = {ALL_REAL: [0.70], SMALL_REAL: [0.50], small_mix(1.0): [0.55]}
    table = ranking_table(cell_summaries(make_run_records(tmp_path, scores)))

    assert table.rows[0][3] == "0.700"


def test_headline_names_the_minimum_real_fraction(tmp_path: Path) -> None:
    scores = {
        SMALL_REAL: [0.50, 0.51, 0.52],
        Cell(REAL_ONLY, 0.5): [0.69, 0.70, 0.71],
        Cell(REAL_ONLY, 0.8): [0.70, 0.71, 0.72],
        ALL_REAL: [0.70, 0.71, 0.72],
    }
    html_text = write_report(make_run(tmp_path / "a", scores)).html.read_text()
    assert "Minimum real data: 50% of the real data is within noise of all of it" in html_text
    scores[Cell(REAL_ONLY, 0.5)] = [0.60, 0.61, 0.62]
    scores[Cell(REAL_ONLY, 0.8)] = [0.64, 0.65, 0.66]
    html_text = write_report(make_run(tmp_path / "b", scores)).html.read_text()
    assert "every fraction up to 80% scores below all real data beyond noise" in html_text
