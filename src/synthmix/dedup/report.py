"""The dedup report file: totals, per-stage counts with examples, and the config."""

from __future__ import annotations

import json
from pathlib import Path

from synthmix.dedup.batch import DedupResult
from synthmix.dedup.config import DedupConfig


def write_dedup_report(
    result: DedupResult, path: str | Path, config: DedupConfig | None = None
) -> Path:
    """JSON: totals, per-stage counts with up to five examples each, and the config."""
    path = Path(path)
    payload = result.to_dict()
    if config is not None:
        payload["config"] = config.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
