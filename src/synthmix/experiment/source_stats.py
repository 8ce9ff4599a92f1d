"""What making each synthetic source took: calls, texts returned, and how many the exact,
near-duplicate and real-leak checks dropped, read from the generation reports that
`synthmix generate` writes next to its output (`<out stem>.report.json`).

The experiment copies these figures into RUN_DIR/sources.json, so the report can show them
without the source files, and a source made elsewhere (no report) simply has no row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from synthmix.core.files import sidecar
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.sources import SourceConfig

log = logging.getLogger("synthmix")

COUNTS = (
    "calls",
    "cached_calls",
    "unused_calls",
    "texts_returned",
    "unique",
    "kept",
    "duplicates",
    "near_duplicates",
    "leaks",
    "rejected",
    "truncated",
    "parse_failures",
    "classifier_dropped",
)
FAULTS = ("retries", "failed_calls")
# Summed only where a report has them (older generation reports do not): a missing count is
# unknown, not zero.
TOKENS = ("prompt_tokens", "completion_tokens")


def _reports(source_path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The generation report and the labeling report beside a source file (either may be
    missing). `synthmix label` wrote `<name>.report.json` before every command used `sidecar`."""
    beside = _read_report(sidecar(source_path))
    if beside is not None and "labels" in beside:  # the report `synthmix label` writes
        return None, beside
    return beside, _read_report(source_path.with_name(source_path.name + ".report.json"))


def generation_stats(configs: list[SourceConfig], base_dir: Path) -> dict[str, dict[str, Any]]:
    """Per experiment source name: summed generation totals of the runs that made it, and for
    a source `synthmix label` made, how far its labels can be trusted."""
    stats: dict[str, dict[str, Any]] = {}
    for config in configs:
        if config.path is None:
            continue
        path = Path(config.path)
        path = path if path.is_absolute() else base_dir / path
        report, labeled = _reports(path)
        if labeled is not None and isinstance(labeled.get("trust"), dict):
            stats.setdefault(config.name or path.stem, {})["trust"] = labeled["trust"]
        if report is None:
            continue
        base = config.name or path.stem
        for run in _runs(report):
            name = _source_name(base, config.split_by, run, report)
            if name is None:
                continue
            into = stats.setdefault(name, {})
            _add(into, run.get("totals", {}), run.get("faults"))
            _add_redaction(into, run.get("redaction"))
    for totals in stats.values():
        if "texts_returned" in totals:
            returned = totals["texts_returned"]
            totals["yield"] = totals["unique"] / returned if returned else 0.0
    return stats


def _read_report(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable generation report (%s); its source has no stats", path, exc)
        return None
    return report if isinstance(report, dict) else None


def _runs(report: dict[str, Any]) -> list[dict[str, Any]]:
    # A plan report lists its runs; a single run's report is the run itself.
    runs = report.get("runs")
    if isinstance(runs, list):
        return [r for r in runs if isinstance(r, dict)]
    return [report]


def _source_name(
    base: str, split_by: list[str], run: dict[str, Any], report: dict[str, Any]
) -> str | None:
    """The name `sources._split` gives the rows of this run (values as pandas prints them)."""
    if not split_by:
        return base
    plan: dict[str, Any] = report.get("plan") or {}
    config: dict[str, Any] = run.get("config") or {}
    values = {
        "generator": run.get("generator"),
        "strategy": run.get("strategy"),
        "temperature": run.get("temperature", config.get("temperature")),
        "prompt_hash": run.get("prompt_hash"),
        "seed": plan.get("seed", config.get("seed")),
    }
    parts = []
    for column in split_by:
        value = values.get(column)
        if value is None:
            return None
        parts.append(str(float(value)) if column == "temperature" else str(value))
    return f"{base}:" + "/".join(parts)


def _add(into: dict[str, Any], totals: dict[str, Any], faults: Any = None) -> None:
    for key in (*COUNTS, "cost"):
        into[key] = into.get(key, 0) + (totals.get(key) or 0)
    for key in TOKENS:
        if key in totals:
            into[key] = into.get(key, 0) + (totals.get(key) or 0)
    # The backend's retries and calls that gave up (generation reports from before faults
    # were counted have none: 0).
    faults = faults if isinstance(faults, dict) else {}
    for key in FAULTS:
        into[key] = into.get(key, 0) + (faults.get(key) or 0)


def _add_redaction(into: dict[str, Any], redaction: Any) -> None:
    """Whether the real texts in this source's prompts were redacted, and how many values
    were replaced ("no" for any run that sent them as they were; unknown for old reports)."""
    if not isinstance(redaction, dict) or "applied" not in redaction:
        return
    counts = redaction.get("counts") or {}
    replaced = sum(int(v) for v in counts.values()) if isinstance(counts, dict) else 0
    applied = bool(redaction["applied"])
    into["redacted"] = applied and into.get("redacted", True)
    into["redacted_values"] = into.get("redacted_values", 0) + replaced


def write_source_stats(run_dir: Path | RunDir, stats: dict[str, dict[str, Any]]) -> None:
    path = RunDir.of(run_dir).sources_file
    path.write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_source_stats(run_dir: Path | RunDir) -> dict[str, dict[str, Any]]:
    path = RunDir.of(run_dir).sources_file
    report = _read_report(path)
    return {k: v for k, v in (report or {}).items() if isinstance(v, dict)}


def judged_stats(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per judged source (a `filter` or `drop_label_issues`) and real fraction: what its
    judges dropped per class, averaged over the seeds' real samples. Cells sharing a real
    sample and seed share one judgement, so each (source, fraction, seed) counts once."""
    seen: dict[tuple[str, float, int], dict[str, Any]] = {}
    for record in records:
        judged = record.get("source_filter")
        cell = record.get("cell") or {}
        if not isinstance(judged, dict) or cell.get("source") is None:
            continue
        # Synthetic-only cells (fraction 0) are judged on all real texts, as 100% cells are.
        fraction = float(cell.get("real_fraction") or 1.0)
        seen.setdefault((str(cell["source"]), fraction, int(record["seed"])), judged)
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (source, share, _), judged in sorted(seen.items()):
        grouped.setdefault(source, {}).setdefault(f"{share:g}", []).append(judged)
    stats: dict[str, dict[str, Any]] = {}
    for source, by_fraction in grouped.items():
        into = stats.setdefault(source, {})
        for key, judgements in by_fraction.items():
            n = len(judgements)
            labels = sorted({label for j in judgements for label in j.get("dropped", {})})
            dropped = {
                label: round(sum(j.get("dropped", {}).get(label, 0) for j in judgements) / n, 2)
                for label in labels
            }
            texts = judgements[0].get("texts", 0)
            by_judge = {
                judge: _mean_counts([j.get(judge, {}).get("dropped", {}) for j in judgements])
                for judge in ("classifier", "label_issues")
                if any(judge in j for j in judgements)
            }
            rule = judgements[0].get("classifier", {}).get("rule")
            into[key] = {
                "samples": n,
                "texts": texts,
                "dropped": dropped,
                "dropped_share": round(sum(dropped.values()) / texts, 4) if texts else 0.0,
                "by_judge": by_judge,
                **({"rule": rule} if rule else {}),
            }
    return stats


def _mean_counts(counts: list[dict[str, int]]) -> dict[str, float]:
    labels = sorted({label for c in counts for label in c})
    return {label: round(sum(c.get(label, 0) for c in counts) / len(counts), 2) for label in labels}


def add_judged_stats(run_dir: Path | RunDir, records: list[dict[str, Any]]) -> None:
    """sources.json gains, per judged source, what its judges dropped (`judged`)."""
    judged = judged_stats(records)
    if not judged:
        return
    stats = read_source_stats(run_dir)
    for source, by_fraction in judged.items():
        stats.setdefault(source, {})["judged"] = by_fraction
    write_source_stats(run_dir, stats)
