"""Whether the baselines were tuned, and what each cell's cross-validation chose.

A mix is only worth its gain over a baseline that had the same chance: a baseline fitted with
a fixed C may be handicapped by it (Piedboeuf & Langlais 2024). The note says which case the
report is, and a tuned run lists the values chosen per cell and seed.
"""

from __future__ import annotations

import inspect
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from synthmix.classifiers.registry import CLASSIFIERS
from synthmix.classifiers.tuning import DEFAULT_GRIDS
from synthmix.report.cells import ranked
from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import DASH, CellSummary, Section, Table

SECTION_TITLE = "Tuned regularisation per cell"


def tuning_note(records: Sequence[Mapping[str, Any]]) -> str:
    """One method note: tuned (the grid, the folds, what was chosen how often) or not."""
    plan = next((_plan(r) for r in records if _plan(r) is not None), None)
    if plan is None:
        classifier: Mapping[str, Any] = next(
            (r["classifier"] for r in records if _classifier(r)), {}
        )
        fixed = _fixed(str(classifier.get("name")), classifier.get("params") or {})
        return (
            "Baselines were not tuned: every cell, baseline and mix alike, was fitted with "
            f"{fixed}. A mix's gain over an untuned baseline can be a better-suited "
            'regularisation in disguise (Piedboeuf & Langlais 2024, "Is ChatGPT the ultimate '
            'data augmentation algorithm?"); `tune: true` in the experiment chooses it per '
            "cell by cross-validation on the cell's own training rows."
        )
    grid = plan.get("grid") or {}
    tried = "; ".join(
        f"{name} from {', '.join(_value(v) for v in values)}" for name, values in grid.items()
    )
    chosen = _chosen_counts(records)
    picks = "; ".join(
        ", ".join(f"{name}={value} in {_fits(n)}" for value, n in by.most_common())
        for name, by in chosen.items()
    )
    kept = sum(1 for r in records if isinstance(r.get("tuning"), dict) and not r["tuning"]["folds"])
    small = (
        f" {_fits(kept)} had a class with fewer than 2 training rows and kept the configured value."
        if kept
        else ""
    )
    grouped = any(isinstance(r.get("tuning"), dict) and r["tuning"].get("grouped") for r in records)
    together = (
        ", each real text in one fold with its rewrites (EDA) so that no fold is scored on "
        "near-copies of its training texts"
        if grouped
        else ""
    )
    edges = _edges(grid, chosen)
    return (
        "Baselines were tuned: every cell, baseline and mix alike, chose "
        f"{tried} by {plan.get('folds')}-fold stratified cross-validation (F1-macro) on its own "
        f"training rows{together}, never the test set, then refitted on all of them (so no "
        "mix is compared with a baseline handicapped by a fixed value; Piedboeuf & Langlais "
        f"2024). Chosen: {picks or DASH}.{small}{edges}"
    )


def _edges(grid: Mapping[str, Sequence[Any]], chosen: Mapping[str, Counter[str]]) -> str:
    """A warning when most fits chose an end of the grid: the best value may lie beyond."""
    warnings = []
    for name, values in grid.items():
        counts = chosen.get(name)
        if counts is None or len(values) < 2:
            continue
        fits = sum(counts.values())
        for end in dict.fromkeys((_value(values[0]), _value(values[-1]))):
            if fits and counts[end] * 2 >= fits:
                warnings.append(
                    f" {counts[end]} of {fits} fits chose {name}={end}, an end of the grid: the "
                    f"best value may lie beyond it (widen it, e.g. tune: {{{name}: [...]}})."
                )
    return "".join(warnings)


def tuning_section(
    records: Sequence[Mapping[str, Any]], cells: Sequence[CellSummary]
) -> Section | None:
    """The values each cell chose per seed, best cell first; None for an untuned run."""
    by_cell: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if isinstance(record.get("tuning"), dict):
            by_cell.setdefault(str(record["cell_key"]), []).append(record)
    if not by_cell:
        return None
    rows = []
    for cell in ranked(cells):
        mine = sorted(by_cell.get(cell.key, []), key=lambda r: int(r["seed"]))
        if not mine:
            continue
        names = list(dict.fromkeys(n for r in mine for n in r["tuning"].get("chosen", {})))
        chosen = "; ".join(
            f"{name}: " + ", ".join(_value(r["tuning"]["chosen"].get(name)) for r in mine)
            for name in names
        )
        cv = [r["tuning"].get("cv_f1_macro") for r in mine]
        known = [float(v) for v in cv if isinstance(v, int | float) and not math.isnan(v)]
        rows.append(
            [
                cell.source if cell.source is not None else DASH,
                cell.title,
                chosen or DASH,
                f"{sum(known) / len(known):.3f}" if known else DASH,
                str(mine[0]["tuning"].get("rows", DASH)),
            ]
        )
    headers = ["source", "mix", "chosen (per seed)", "inner-CV F1-macro", "rows cross-validated"]
    table = Table(headers, rows, frozenset({3, 4}))
    note = (
        "What each cell's cross-validation chose, seed by seed, and its mean inner-CV "
        "F1-macro: the folds split the cell's training rows only (real and synthetic as the "
        "cell trains on them), so the test set played no part in the choice."
    )
    return Section(
        SECTION_TITLE,
        f'<p class="note">{esc(note)}</p>\n{html_table(table)}',
        f"_{note}_\n\n{md_table(table)}\n",
    )


def _fits(n: int) -> str:
    return f"{n} fit{'' if n == 1 else 's'}"


def _classifier(record: Mapping[str, Any]) -> bool:
    return isinstance(record.get("classifier"), dict)


def _plan(record: Mapping[str, Any]) -> dict[str, Any] | None:
    classifier = record.get("classifier")
    if not isinstance(classifier, dict) or not isinstance(classifier.get("tune"), dict):
        return None
    plan: dict[str, Any] = classifier["tune"]
    return plan


def _chosen_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for record in records:
        tuning = record.get("tuning")
        if not isinstance(tuning, dict) or not tuning.get("folds"):
            continue
        for name, value in (tuning.get("chosen") or {}).items():
            counts.setdefault(str(name), Counter())[_value(value)] += 1
    return counts


def _fixed(name: str, params: Mapping[str, Any]) -> str:
    """The regularisation every cell was fitted with: as configured, else the default."""
    grid = DEFAULT_GRIDS.get(name)
    if grid is None:
        return "the classifier's configured regularisation"
    values = {param: params.get(param, _default(name, param)) for param in grid}
    return ", ".join(f"{param}={_value(value)}" for param, value in values.items()) + (
        "" if set(grid) & set(params) else " (the default)"
    )


def _default(name: str, param: str) -> Any:
    signature = inspect.signature(CLASSIFIERS.get(name))
    found = signature.parameters.get(param)
    return found.default if found is not None else "?"


def _value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return f"{value:g}"
