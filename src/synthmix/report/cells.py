"""Cell summaries (mean and 95% CI over seeds) from result records, and how to find cells."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLANS, SYNTHETIC_ONLY
from synthmix.experiment.results import summarize
from synthmix.report.model import CellSummary, Score


def cell_summaries(records: list[dict[str, Any]]) -> list[CellSummary]:
    rows = summarize(records).to_dict("records")
    return [_cell_from_row({str(key): value for key, value in row.items()}) for row in rows]


def _cell_from_row(row: dict[str, Any]) -> CellSummary:
    seeds = int(row["seeds"])

    def score(metric: str) -> Score:
        return Score(
            float(row[metric]), float(row[f"{metric}_low"]), float(row[f"{metric}_high"]), seeds
        )

    per_class = {
        column[3:-1]: float(value)
        for column, value in row.items()
        if column.startswith("f1[") and column.endswith("]") and not _is_nan(value)
    }
    source = row["source"]
    return CellSummary(
        key=str(row["cell_key"]),
        plan=str(row["plan"]),
        # pandas turns None into NaN when the column also holds source names.
        source=source if isinstance(source, str) else None,
        real_fraction=float(row["real_fraction"]),
        synthetic_ratio=float(row["synthetic_ratio"]),
        synthetic_count=int(row.get("synthetic_count", 0) or 0),
        title=str(row["title"]),
        seeds=seeds,
        train_size=float(row["train_size"]),
        shortfall=int(row["shortfall"]),
        f1_macro=score("f1_macro"),
        f1_weighted=score("f1_weighted"),
        accuracy=score("accuracy"),
        per_class=per_class,
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def rule_based_sources(info: dict[str, Any]) -> frozenset[str]:
    """Sources made per cell by rewriting the cell's real texts (EDA and the like)."""
    sources = info.get("data", {}).get("sources", {})
    # A file source is described with its rows; a per-cell one has none of its own.
    return frozenset(name for name, described in sources.items() if "rows" not in described)


def find_reference(cells: Sequence[CellSummary]) -> CellSummary | None:
    return next((cell for cell in cells if cell.is_reference), None)


def ranked(cells: Sequence[CellSummary]) -> list[CellSummary]:
    # The key breaks ties so that reruns of the report list cells in the same order.
    return sorted(cells, key=lambda cell: (-cell.f1_macro.mean, cell.key))


def small_real_fraction(cells: Sequence[CellSummary]) -> float | None:
    """The real fraction of the small-real plan. A run has one; should an edited config have
    left several, the most measured one is shown and the rest still appear in the ranking."""
    fractions = Counter(c.real_fraction for c in cells if c.plan in SMALL_REAL_PLANS)
    return fractions.most_common(1)[0][0] if fractions else None


def real_only_cell(cells: Sequence[CellSummary], fraction: float) -> CellSummary | None:
    return next(
        (c for c in cells if c.plan == REAL_ONLY and math.isclose(c.real_fraction, fraction)),
        None,
    )


def source_names(cells: Sequence[CellSummary]) -> list[str]:
    return sorted({cell.source for cell in cells if cell.source is not None})


def rewrites_all_real(cell: CellSummary, rewrites: frozenset[str]) -> bool:
    return cell.plan == SYNTHETIC_ONLY and cell.source in rewrites
