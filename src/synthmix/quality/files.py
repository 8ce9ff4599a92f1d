"""Quality files: writing and reading the metrics JSON, flat values, terminal summary."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def write_quality(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Write the metrics as UTF-8 JSON (class names stay readable); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def read_quality(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def flat_values(section: Mapping[str, Any]) -> dict[str, float]:
    """Point values of one section (`overall` or a class), nested distributions flattened as
    `nn_real_similarity.p90`; undefined metrics are left out."""
    return {name: float(entry["value"]) for name, entry in _defined_entries(section)}


def _defined_entries(section: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, entry in section.items():
        if not isinstance(entry, Mapping):
            continue
        if "value" in entry:
            if entry["value"] is not None:
                yield name, entry
            continue
        for part, sub in entry.items():
            if isinstance(sub, Mapping) and sub.get("value") is not None:
                yield f"{name}.{part}", sub


def summary_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The overall metrics with their intervals, one aligned line each (for a terminal);
    metrics undefined for this data are listed with the reason."""
    overall = metrics["overall"]
    width = max((len(name) for name in overall), default=0) + 6
    lines = [f"{'metric':<{width}} {'value':>9}  {metrics['config']['confidence']:.0%} interval"]
    for name, entry in _defined_entries(overall):
        low, high = entry.get("low"), entry.get("high")
        interval = "" if low is None or high is None else f"  [{low:.3f}, {high:.3f}]"
        lines.append(f"{name:<{width}} {entry['value']:9.3f}{interval}")
    for name, entry in overall.items():
        if isinstance(entry, Mapping) and entry.get("value", 0) is None:
            lines.append(f"{name:<{width}} {'-':>9}  {entry.get('reason', 'undefined')}")
    return lines
