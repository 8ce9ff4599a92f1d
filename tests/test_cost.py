"""Cost per F1 point: each mix charged its share of its source's recorded generation cost."""

from __future__ import annotations

from pathlib import Path

from run_records import result_record
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_SYNTHETIC, Cell
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import write_run_info
from synthmix.experiment.source_stats import write_source_stats
from synthmix.report import write_report
from synthmix.stats.paired import paired_comparison

CLASSES = ["joy", "sadness"]


def _table(markdown: str, title: str) -> list[dict[str, str]]:
    lines = markdown.splitlines()
    start = lines.index(f"## {title}")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| source"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")]
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = (c.strip() for c in line.strip("|").split("|"))
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def test_cost_per_f1_point_from_the_recorded_generation_cost(tmp_path: Path) -> None:
    small = Cell(REAL_ONLY, 0.1)
    paid = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "paid")
    local = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "local")
    eda = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "eda")
    scores = {
        Cell(REAL_ONLY, 1.0): [0.70, 0.71, 0.72],
        small: [0.50, 0.51, 0.52],
        paid: [0.53, 0.541, 0.549],  # +0.030, +0.031, +0.029: helped
        local: [0.49, 0.50, 0.52],  # a loss
        eda: [0.51, 0.52, 0.53],
    }
    used = {paid: 50, local: 30, eda: 20}  # synthetic texts per seed
    write_run_info(
        tmp_path,
        {
            "name": "cost",
            "config": {"name": "cost"},
            "seeds": [0, 1, 2],
            "classifier": {"name": "tfidf_logreg", "params": {}},
            "data": {"sources": {"eda": {"source": "rule-based"}}},
        },
    )
    store = ResultsStore(tmp_path)
    for cell, values in scores.items():
        for seed, value in enumerate(values):
            record = result_record(cell, seed, value, CLASSES)
            if cell in used:
                record["synthetic_counts"] = {"joy": used[cell] - 10, "sadness": 10}
            store.append(record)
    write_source_stats(
        tmp_path,
        {
            # A paid API: 100 kept texts for 200 calls, 40k tokens and 2.0.
            "paid": {"calls": 200, "kept": 100, "texts_returned": 120, "cost": 2.0,
                     "prompt_tokens": 30000, "completion_tokens": 10000},
            # A local model: no price, and a generation report from before tokens were counted.
            "local": {"calls": 90, "kept": 60, "texts_returned": 60, "cost": 0.0},
        },
    )  # fmt: skip
    markdown = write_report(tmp_path).markdown.read_text(encoding="utf-8")
    # These records are untuned (C=4, as configured), and the method note says so.
    assert (
        "Baselines were not tuned: every cell, baseline and mix alike, was fitted with C=4. "
        in markdown
    )
    rows = {row["source"]: row for row in _table(markdown, "What the gains cost")}
    assert set(rows) == {"paid", "local"}  # EDA has no generation cost to show
    assert (
        "**paid (10% real + 100% synthetic) helped by 3.0 points for 100 calls, 20k tokens, "
        "cost 1.**"
    ) in markdown

    # Half of the paid source's kept texts: half its calls, tokens and cost.
    row = rows["paid"]
    assert (row["synthetic texts"], row["calls"], row["tokens"], row["cost"]) == (
        "50", "100", "20k", "1",
    )  # fmt: skip
    gain = paired_comparison(scores[paid], scores[small])
    assert gain.difference == 0.03 or abs(gain.difference - 0.03) < 1e-9
    points = gain.difference / 0.01, gain.high / 0.01, gain.low / 0.01
    calls = [f"{100 / p:.0f}" for p in points]
    assert row["calls per +0.01 F1"] == f"{calls[0]} [{calls[1]}, {calls[2]}]"
    assert row["cost per +0.01 F1"] == (
        f"{1 / points[0]:.3g} [{1 / points[1]:.3g}, {1 / points[2]:.3g}]"
    )
    assert row["cost per +0.01 F1"].startswith("0.333 [")
    assert row["tokens per +0.01 F1"].startswith("6.67k [")

    row = rows["local"]
    assert (row["calls"], row["tokens"], row["cost"]) == ("45", "—", "—")
    assert row["calls per +0.01 F1"] == "no gain"
    assert row["cost per +0.01 F1"] == "—"


def test_a_gain_whose_interval_reaches_zero_has_no_upper_bound(tmp_path: Path) -> None:
    from synthmix.report.model import CellSummary, Score, Versus
    from synthmix.report.sections.cost import mix_costs

    def cell(key: str, source: str | None) -> CellSummary:
        score = Score(0.5, 0.4, 0.6, 3)
        return CellSummary(key, REAL_ONLY, source, 0.1, 1.0, 0, key, 3, 100.0, 0, score, score,
                           score, {})  # fmt: skip

    baseline, mix = cell("base", None), cell("mix", "llm")
    noisy = paired_comparison([0.52, 0.50, 0.54], [0.50, 0.51, 0.50])
    assert noisy.low < 0 < noisy.difference
    (cost,) = mix_costs(
        {"llm": {"calls": 10, "kept": 10, "cost": 0.5}},
        [baseline, mix],
        {"mix": Versus(baseline, noisy)},
        [{"cell_key": "mix", "synthetic_counts": {"joy": 10}}],
    )
    figures = cost.per_point(10.0)
    assert figures is not None
    value, low, high = figures
    assert value == 10.0 / (noisy.difference / 0.01)
    assert low == 10.0 / (noisy.high / 0.01)
    assert high == float("inf")
