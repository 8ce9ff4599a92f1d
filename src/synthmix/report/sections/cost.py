"""What each mix's gain cost to generate: calls, tokens and money per +0.01 F1-macro.

A source's generation report (RUN_DIR/sources.json) says what making all of its kept texts
took. A mix uses some of them (its synthetic texts, averaged over seeds), so it is charged its
share at the source's average cost per kept text; that charge divided by the paired gain over
the baseline, in hundredths of F1-macro, is the cost per point. The interval divides by the
ends of the gain's 95% CI: where the CI reaches zero, the cost per point has no upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthmix.report.html import esc, html_table
from synthmix.report.markdown import md_table
from synthmix.report.model import DASH, CellSummary, Section, Table, Versus
from synthmix.stats.paired import Verdict

SECTION_TITLE = "What the gains cost"
POINT = 0.01  # one point of F1-macro
HEADERS = [
    "source",
    "mix",
    "verdict",
    "vs baseline [95% CI]",
    "synthetic texts",
    "calls",
    "tokens",
    "cost",
    "calls per +0.01 F1",
    "tokens per +0.01 F1",
    "cost per +0.01 F1",
]


@dataclass(frozen=True)
class MixCost:
    """The share of a source's generation one mix used, and its paired gain."""

    source: str
    mix: str
    versus: Versus
    texts: float  # synthetic texts in the mix, mean over seeds
    calls: float
    tokens: float | None  # None: the generation report did not count tokens
    cost: float | None  # None: no price was known (a local model, or prices not set)

    def per_point(self, amount: float) -> tuple[float, float, float] | None:
        """`amount` per +0.01 F1-macro: at the mean gain, and at the ends of its CI (the
        largest gain gives the low end; inf where the CI reaches zero). None without a gain."""
        result = self.versus.result
        if result.difference <= 0:
            return None
        low = amount / (result.high / POINT) if result.high > 0 else math.inf
        high = amount / (result.low / POINT) if result.low > 0 else math.inf
        if math.isnan(result.low):
            low = high = math.nan
        return amount / (result.difference / POINT), low, high


def mix_costs(
    stats: Mapping[str, Mapping[str, Any]],
    cells: Sequence[CellSummary],
    versus: Mapping[str, Versus],
    records: Sequence[Mapping[str, Any]],
) -> list[MixCost]:
    """Every compared mix of a source with a generation report, largest gain first."""
    texts = _synthetic_texts(records)
    costs = []
    for cell in cells:
        totals = stats.get(cell.source or "")
        paired = versus.get(cell.key)
        if totals is None or paired is None or "calls" not in totals:
            continue
        kept = float(totals.get("kept") or 0)
        used = texts.get(cell.key, 0.0)
        if kept <= 0 or used <= 0:
            continue
        share = min(1.0, used / kept)
        tokens = None
        if "prompt_tokens" in totals or "completion_tokens" in totals:
            tokens = share * float(
                (totals.get("prompt_tokens") or 0) + (totals.get("completion_tokens") or 0)
            )
        money = float(totals.get("cost") or 0)
        costs.append(
            MixCost(
                source=str(cell.source),
                mix=cell.title,
                versus=paired,
                texts=used,
                calls=share * float(totals.get("calls") or 0),
                tokens=tokens,
                cost=share * money if money > 0 else None,
            )
        )
    return sorted(costs, key=lambda c: (-c.versus.result.difference, c.source, c.mix))


def cost_section(
    stats: Mapping[str, Mapping[str, Any]],
    cells: Sequence[CellSummary],
    versus: Mapping[str, Versus],
    records: Sequence[Mapping[str, Any]],
) -> Section | None:
    costs = mix_costs(stats, cells, versus, records)
    if not costs:
        return None
    table = Table(HEADERS, [_row(c) for c in costs], frozenset(range(3, len(HEADERS))))
    lead = _lead(costs)
    note = (
        "Each mix is charged its share of what generating its source took (its synthetic "
        "texts, mean over seeds, over the source's kept texts; cached calls included), divided "
        "by its paired gain over the baseline in hundredths of F1-macro; [ ] divides by the "
        "ends of the gain's 95% CI (∞ where the CI reaches zero: the data cannot rule out no "
        "gain). Cost is in the generators' configured prices, — where none were set (local "
        "models); rows without a gain have no cost per point. Rule-based sources and sources "
        "made outside synthmix have no row."
    )
    return Section(
        SECTION_TITLE,
        f'<p><b>{esc(lead)}</b></p>\n<p class="note">{esc(note)}</p>\n{html_table(table)}',
        f"**{lead}**\n\n_{note}_\n\n{md_table(table)}\n",
    )


def _lead(costs: Sequence[MixCost]) -> str:
    """The gains that survived the correction, each with what it cost."""
    helped = [c for c in costs if c.versus.result.verdict is Verdict.HELPED]
    if not helped:
        return (
            "No mix of a generated source helped beyond noise, so no gain has a cost yet; "
            "the table shows each mix's share of its source's cost."
        )
    parts = []
    for cost in helped:
        points = cost.versus.result.difference / POINT
        spent = f"{_amount(cost.calls)} calls"
        if cost.tokens is not None:
            spent += f", {_amount(cost.tokens)} tokens"
        if cost.cost is not None:
            spent += f", cost {_money(cost.cost)}"
        parts.append(f"{cost.source} ({cost.mix}) helped by {points:.1f} points for {spent}")
    return "; ".join(parts) + "."


def _row(cost: MixCost) -> list[str]:
    result = cost.versus.result
    return [
        cost.source,
        cost.mix,
        result.verdict.value,
        result.format(),
        f"{cost.texts:.0f}",
        _amount(cost.calls),
        _amount(cost.tokens),
        _money(cost.cost),
        _per_point(cost, cost.calls, _amount),
        _per_point(cost, cost.tokens, _amount),
        _per_point(cost, cost.cost, _money),
    ]


def _per_point(cost: MixCost, amount: float | None, fmt: Any) -> str:
    if amount is None:
        return DASH
    figures = cost.per_point(amount)
    if figures is None:
        return "no gain"
    value, low, high = figures
    if math.isnan(low):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _amount(value: float | None) -> str:
    if value is None:
        return DASH
    if math.isinf(value):
        return "∞"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1000:
        return f"{value / 1000:.3g}k"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _money(value: float | None) -> str:
    if value is None:
        return DASH
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}"


def _synthetic_texts(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean number of synthetic texts per seed in each cell's training mix."""
    sums: dict[str, list[int]] = {}
    for record in records:
        counts = record.get("synthetic_counts")
        if isinstance(counts, dict):
            used = sum(int(n) for n in counts.values())
            sums.setdefault(str(record["cell_key"]), []).append(used)
    return {key: sum(values) / len(values) for key, values in sums.items()}
