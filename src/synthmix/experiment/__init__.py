"""The mixing grid: config, mixes, sources, results and the runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.experiment.config import (
        DataConfig,
        ExperimentConfig,
        load_experiment,
        parse_experiment,
    )
    from synthmix.experiment.mixing import Cell, PlanConfig, compose, plan_cells
    from synthmix.experiment.results import ResultsStore, summarize
    from synthmix.experiment.run_dir import RunDir, read_run_info
    from synthmix.experiment.runner import (
        RunDirInUse,
        RunOutcome,
        measure_source_quality,
        run_experiment,
    )
    from synthmix.experiment.sources import SourceConfig, load_sources


_EXPORTS = {
    ".config": (
        "DataConfig",
        "ExperimentConfig",
        "load_experiment",
        "parse_experiment",
    ),
    ".mixing": (
        "Cell",
        "PlanConfig",
        "plan_cells",
        "compose",
    ),
    ".sources": (
        "SourceConfig",
        "load_sources",
    ),
    ".results": (
        "ResultsStore",
        "summarize",
    ),
    ".run_dir": (
        "RunDir",
        "read_run_info",
    ),
    ".runner": (
        "run_experiment",
        "RunOutcome",
        "RunDirInUse",
        "measure_source_quality",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "Cell",
    "DataConfig",
    "ExperimentConfig",
    "PlanConfig",
    "ResultsStore",
    "RunDir",
    "RunDirInUse",
    "RunOutcome",
    "SourceConfig",
    "compose",
    "load_experiment",
    "load_sources",
    "measure_source_quality",
    "parse_experiment",
    "plan_cells",
    "read_run_info",
    "run_experiment",
    "summarize",
]
