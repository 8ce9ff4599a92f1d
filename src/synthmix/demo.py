"""The offline demo: the whole spine on a real Russian dataset shipped in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from synthmix.config import DataConfig, ExperimentConfig
from synthmix.experiment import run_experiment
from synthmix.report import ReportPaths, write_report
from synthmix.sources import SourceConfig

DEMO_DATASET = "cedr_emotions"


def demo_data_dir() -> Path:
    return Path(str(resources.files("synthmix") / "demo_data" / DEMO_DATASET))


def demo_config(out_dir: Path, seeds: int = 3) -> ExperimentConfig:
    data_dir = demo_data_dir()
    return ExperimentConfig(
        name="demo-cedr-emotions",
        data=DataConfig(train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv")),
        card=str(data_dir / "card.yaml"),
        # Augmented per cell from the real texts that cell sees; see sources.DerivedSource.
        sources=[SourceConfig(name="eda", augment={"alpha": 0.1})],
        seeds=list(range(seeds)),
        base_dir=out_dir,
    )


def run_demo(
    out_dir: str | Path = "runs/demo", seeds: int = 3, jobs: int = 0, progress: bool = True
) -> ReportPaths:
    out_dir = Path(out_dir).resolve()
    config = demo_config(out_dir, seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "experiment.yaml").write_text(
        yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    run_dir = out_dir / "run"
    run_experiment(config, run_dir, jobs=jobs, progress=progress)
    return write_report(run_dir)
