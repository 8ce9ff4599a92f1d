"""The offline demo: the whole spine on a real Russian dataset shipped in the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from synthmix.augment import AugmentConfig, augment, write_source
from synthmix.config import DataConfig, ExperimentConfig
from synthmix.data import load_labeled
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
        sources=[SourceConfig(path=str(out_dir / "sources" / "eda.csv"), name="eda")],
        seeds=list(range(seeds)),
        base_dir=out_dir,
    )


def build_eda_source(config: ExperimentConfig, progress: bool = True) -> Path:
    """Enough augmented texts per class for the largest plan (all real + equal synthetic)."""
    path = Path(config.sources[0].path)
    if path.exists():
        return path
    train = load_labeled(config.resolve(config.data.train))
    per_class = max(train.class_counts().values())
    synthetic = augment(train, AugmentConfig(per_class=per_class, seed=0), progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    write_source(synthetic, partial)
    partial.replace(path)  # a killed demo never leaves a half-written source behind
    return path


def run_demo(
    out_dir: str | Path = "runs/demo", seeds: int = 3, jobs: int = 0, progress: bool = True
) -> ReportPaths:
    out_dir = Path(out_dir).resolve()
    config = demo_config(out_dir, seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "experiment.yaml").write_text(
        yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    build_eda_source(config, progress)
    run_dir = out_dir / "run"
    run_experiment(config, run_dir, jobs=jobs, progress=progress)
    return write_report(run_dir)
