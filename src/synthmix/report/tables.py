"""The ranking of all cells and the tables describing the run."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from synthmix.report.cells import find_reference, ranked, rewrites_all_real
from synthmix.report.findings import format_p
from synthmix.report.model import DASH, CellSummary, Table, Versus

# --- tables ------------------------------------------------------------------------------


def ranking_table(
    cells: Sequence[CellSummary],
    rewrites: frozenset[str] = frozenset(),
    versus: Mapping[str, Versus] | None = None,
) -> Table:
    """`rewrites`: rule-based sources, whose synthetic-only cells get a note. `versus`: each
    mix's paired comparison with its baseline."""
    reference = find_reference(cells)
    versus = versus or {}
    rows = [
        _ranking_row(rank, cell, reference, rewrites_all_real(cell, rewrites))
        for rank, cell in enumerate(ranked(cells), 1)
    ]
    for row, cell in zip(rows, ranked(cells), strict=True):
        row[5:5] = _paired_columns(versus.get(cell.key))
    headers = [
        "rank",
        "source",
        "mix",
        "F1-macro",
        "gap to all real",
        "vs baseline [95% CI]",
        "P(improvement)",
        "Holm p",
        "verdict",
        "weighted F1",
        "accuracy",
        "train size",
        "seeds",
        "note",
    ]
    return Table(headers, rows, numeric=frozenset({0, 3, 4, 5, 6, 7, 9, 10, 11, 12}))


def _ranking_row(
    rank: int, cell: CellSummary, reference: CellSummary | None, rewrites_all_real: bool
) -> list[str]:
    if cell.is_reference:
        gap = "reference"
    elif reference is None:
        gap = DASH
    else:
        gap = f"{cell.f1_macro.mean - reference.f1_macro.mean:+.3f}"
    return [
        str(rank),
        cell.source if cell.source is not None else DASH,
        cell.title,
        cell.f1_macro.format(),
        gap,
        cell.f1_weighted.format(),
        cell.accuracy.format(),
        f"{cell.train_size:.0f}",
        str(cell.seeds),
        "rewrites of all real training texts" if rewrites_all_real else _shortfall_note(cell),
    ]


def _paired_columns(paired: Versus | None) -> list[str]:
    if paired is None:
        return [DASH, DASH, DASH, DASH]
    result = paired.result
    baseline = "all real" if paired.baseline.is_reference else paired.baseline.title
    p = DASH if math.isnan(result.p_adjusted) else format_p(result.p_adjusted)
    return [
        f"{result.format()} vs {baseline}",
        f"{result.p_improvement:.2f}",
        p,
        result.verdict.value,
    ]


def _shortfall_note(cell: CellSummary) -> str:
    if cell.shortfall <= 0:
        return ""
    return f"source had {cell.shortfall} fewer synthetic texts than asked (worst seed)"


def run_tables(
    info: dict[str, Any], records: Sequence[Mapping[str, Any]] = ()
) -> list[tuple[str, Table]]:
    tables = [("Configuration", _config_table(info)), ("Data", _data_table(info))]
    timings = timings_table(info, records)
    if timings is not None:
        tables.append(("Timings", timings))
    versions = info.get("versions")
    if isinstance(versions, dict) and versions:
        rows = [[str(package), str(version)] for package, version in sorted(versions.items())]
        tables.append(("Package versions", Table(["package", "version"], rows)))
    return tables


TIMING_STAGES = ("compose_s", "featurise_s", "fit_s", "predict_s")


def timings_table(info: dict[str, Any], records: Sequence[Mapping[str, Any]]) -> Table | None:
    """The grid's wall time and fits/s (run.json, written by the runner), the texts
    featurised once for the whole run, and each stage of a fit: mean per fit and summed
    over fits (summed over parallel workers, so it can exceed the wall time)."""
    rows: list[list[str]] = []
    timings = info.get("timings")
    if isinstance(timings, dict) and timings.get("grid_s") is not None:
        rows.append(["grid, latest session", _grid_time(timings.get("fits"), timings["grid_s"])])
        sessions = timings.get("sessions", 1)
        if isinstance(sessions, int) and sessions > 1:
            rows.append(
                [
                    f"grid, all {sessions} sessions",
                    _grid_time(timings.get("total_fits"), timings.get("total_grid_s")),
                ]
            )
        if timings.get("texts_featurised"):
            rows.append(
                [
                    "n-gram counts",
                    f"{timings['texts_featurised']} distinct texts counted once in "
                    f"{float(timings.get('featurise_s', 0.0)):.1f} s",
                ]
            )
        if timings.get("augmented_texts"):
            rows.append(["rule-based augmentation", f"{timings['augmented_texts']} texts"])
    timed = [r["timings"] for r in records if isinstance(r.get("timings"), dict)]
    for stage in TIMING_STAGES:
        values = [float(t[stage]) for t in timed if isinstance(t.get(stage), int | float)]
        if values:
            rows.append(
                [
                    f"per fit: {stage.removesuffix('_s')}",
                    f"{sum(values) / len(values):.3f} s mean, {sum(values):.1f} s over "
                    f"{len(values)} fits",
                ]
            )
    return Table(["timing", "value"], rows) if rows else None


def _grid_time(fits: Any, seconds: Any) -> str:
    if not isinstance(seconds, int | float) or not isinstance(fits, int):
        return DASH
    rate = f"{fits / seconds:.2f} fits/s" if seconds > 0 else DASH
    return f"{fits} fits in {_duration(float(seconds))} ({rate})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _config_table(info: dict[str, Any]) -> Table:
    classifier = info.get("classifier")
    if isinstance(classifier, dict):
        params = json.dumps(classifier.get("params", {}), ensure_ascii=False, sort_keys=True)
        classifier_text = f"{classifier.get('name', '?')} {params}"
    else:
        classifier_text = DASH
    compared = info.get("classifiers")
    if isinstance(compared, list) and len(compared) > 1:
        classifier_text = "; ".join(
            f"{c.get('label')}: {c.get('name')} "
            + json.dumps(c.get("params", {}), ensure_ascii=False, sort_keys=True)
            for c in compared
            if isinstance(c, dict)
        )
    seeds = info.get("seeds")
    rows = [
        ["name", str(info.get("name", DASH))],
        ["classifier", classifier_text],
        ["tuned per cell", _tuned(compared)],
        ["seeds", ", ".join(str(s) for s in seeds) if isinstance(seeds, list) else DASH],
        ["started at", str(info.get("started_at", DASH))],
    ]
    small = info.get("small_real_seeds")
    if isinstance(small, list) and small:
        rows.insert(4, ["seeds of the small-real cells", ", ".join(str(s) for s in small)])
    return Table(["setting", "value"], rows)


def _tuned(compared: Any) -> str:
    """Which classifiers chose their regularisation per cell, from what (run.json)."""
    if not isinstance(compared, list):
        return "no"
    tuned = []
    for entry in compared:
        tune = entry.get("tune") if isinstance(entry, dict) else None
        if isinstance(tune, dict):
            grid = "; ".join(
                f"{name} from {', '.join(_value(v) for v in values)}"
                for name, values in (tune.get("grid") or {}).items()
            )
            tuned.append(f"{entry.get('label')}: {grid}, {tune.get('folds')}-fold CV")
    return "; ".join(tuned) if tuned else "no"


def _value(value: Any) -> str:
    return (
        f"{value:g}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
    )


def _data_table(info: dict[str, Any]) -> Table:
    data = info.get("data")
    data = data if isinstance(data, dict) else {}
    entries: list[tuple[str, Any]] = [("train", data.get("train")), ("test", data.get("test"))]
    sources = data.get("sources")
    if isinstance(sources, dict):
        entries.extend((f"synthetic: {name}", entry) for name, entry in sorted(sources.items()))
    rows = [_data_row(role, entry) for role, entry in entries if isinstance(entry, dict)]
    return Table(["role", "file", "rows", "class counts"], rows, numeric=frozenset({2}))


def _data_row(role: str, entry: dict[str, Any]) -> list[str]:
    counts = entry.get("class_counts")
    counts_text = (
        ", ".join(f"{label}: {n}" for label, n in counts.items())
        if isinstance(counts, dict)
        else DASH
    )
    return [role, str(entry.get("source", DASH)), str(entry.get("rows", DASH)), counts_text]
