"""Quality metrics of a multi-label experiment's sources, for its report's per-label sections."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from synthmix.embeddings.encoder import Encoder, build_encoder
from synthmix.experiment.config import ExperimentConfig
from synthmix.experiment.multi_runner import load_multilabel_experiment_data
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.task_sources import MultiLabelAugment
from synthmix.quality.config import QualityConfig
from synthmix.quality.files import write_quality
from synthmix.quality.multilabel import measure_multilabel_quality


def measure_multilabel_source_quality(
    config: ExperimentConfig,
    run_dir: str | Path | RunDir,
    quality: QualityConfig | None = None,
    progress: bool = True,
    encoder: Encoder | None = None,
) -> list[Path]:
    """Per-label quality of every source against the real training data, in RUN_DIR/quality/
    (a source measured before is skipped). A derived (rule-based) source is measured on one
    augmentation of the full training set, each label asked for as many texts as the real
    data has (at most the sample size), as the single-label step does."""
    quality = quality or QualityConfig()
    run = RunDir.of(run_dir)
    data = load_multilabel_experiment_data(config)
    todo = {n: s for n, s in data.sources.items() if not run.quality_file(n).exists()}
    if not todo:
        return []
    encoder = encoder or build_encoder(cache_path=run.embeddings_cache)
    written = []
    for name, source in tqdm(todo.items(), desc="source quality", disable=not progress):
        if isinstance(source, MultiLabelAugment):
            wanted = {
                label: min(n, quality.sample_size) for label, n in data.train.label_counts().items()
            }
            source = source(data.train, wanted, quality.seed)
        metrics = measure_multilabel_quality(source, data.train, quality, encoder)
        written.append(write_quality({**metrics, "source_name": name}, run.quality_file(name)))
    return written
