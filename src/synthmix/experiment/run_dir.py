"""Everything an experiment run directory holds, named in one place.

The runner, the feature store, quality measuring and the report all read and write the same
folder; a `RunDir` gives each file its path so no module spells a file name of another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmix.core.errors import SynthmixError

# Relative, because report.md links its plots by this name.
FIGURES_FOLDER = "figures"


@dataclass(frozen=True)
class RunDir:
    """An experiment run directory and the paths of what it holds."""

    root: Path

    @classmethod
    def of(cls, where: str | Path | RunDir) -> RunDir:
        return where if isinstance(where, RunDir) else cls(Path(where))

    @property
    def run_file(self) -> Path:
        """The resolved config, data fingerprints, package versions, timings."""
        return self.root / "run.json"

    @property
    def results_file(self) -> Path:
        """One line per finished (cell, seed, classifier) fit."""
        return self.root / "results.jsonl"

    @property
    def sources_file(self) -> Path:
        """Generation, labeling and redaction statistics of each source."""
        return self.root / "sources.json"

    @property
    def quality_dir(self) -> Path:
        """One JSON of quality metrics per source."""
        return self.root / "quality"

    def quality_file(self, source: str) -> Path:
        """The quality metrics of one source; its name made safe for a file name."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source)
        return self.quality_dir / f"{safe}.json"

    @property
    def features_dir(self) -> Path:
        """Hashed n-gram counts of every text, kept for a resumed run."""
        return self.root / "features"

    @property
    def tuned_dir(self) -> Path:
        """Per tuned-generator source and real sample: its adapter, texts and made.json."""
        return self.root / "tuned"

    @property
    def embeddings_cache(self) -> Path:
        return self.root / "embeddings.sqlite"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def figures_dir(self) -> Path:
        """The Markdown report's plots (the HTML report embeds its own)."""
        return self.root / FIGURES_FOLDER

    def has_run(self) -> bool:
        return self.run_file.exists()

    def read_info(self) -> dict[str, Any]:
        if not self.has_run():
            raise SynthmixError(
                f"{self.root}: not an experiment run directory (no {self.run_file.name})"
            )
        info: dict[str, Any] = json.loads(self.run_file.read_text(encoding="utf-8"))
        return info

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace run.json atomically: a kill leaves the old file or the new one."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.run_file.with_name(self.run_file.name + ".tmp")
        tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(self.run_file)


def read_run_info(run_dir: str | Path | RunDir) -> dict[str, Any]:
    """run.json of `run_dir` (for notebooks: `RunDir(path).read_info()`)."""
    return RunDir.of(run_dir).read_info()


def write_run_info(run_dir: str | Path | RunDir, info: dict[str, Any]) -> None:
    RunDir.of(run_dir).write_info(info)
