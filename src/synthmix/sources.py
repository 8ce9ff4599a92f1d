"""Synthetic sources: files of labeled texts with provenance columns, one source per
generator/strategy/temperature combination."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthmix.data import LABEL, TEXT, LabeledData, load_labeled
from synthmix.errors import ConfigError, DataError

log = logging.getLogger("synthmix")

PROVENANCE_COLUMNS = ("generator", "strategy", "temperature", "prompt_hash", "seed", "call_id")


@dataclass
class SourceConfig:
    """A synthetic data file. `split_by` names provenance columns whose value combinations
    become separate sources (one file from `synthmix generate` can hold several)."""

    path: str
    name: str | None = None
    split_by: list[str] = field(default_factory=list)
    text_column: str = TEXT
    label_column: str = LABEL


def load_sources(
    configs: list[SourceConfig], base_dir: Path, train: LabeledData
) -> dict[str, LabeledData]:
    """Load every source, split it by provenance and check its labels against training data.
    Source names must be unique across the experiment."""
    sources: dict[str, LabeledData] = {}
    for config in configs:
        path = Path(config.path)
        if not path.is_absolute():
            path = base_dir / path
        data = load_labeled(path, config.text_column, config.label_column)
        _check_labels(data, train)
        # A synthetic-only cell trains on the source alone; one class cannot train anything.
        data.require_classes(2)
        missing = sorted(set(train.classes) - set(data.classes))
        if missing:
            log.warning("%s: no texts for class(es) %s", data.source, ", ".join(missing))
        base = config.name or path.stem
        for name, part in _split(data, base, config.split_by).items():
            if name in sources:
                raise ConfigError(f"two synthetic sources are named {name!r}; set 'name'")
            sources[name] = part
    return sources


def _check_labels(synthetic: LabeledData, train: LabeledData) -> None:
    unknown = ~synthetic.frame[LABEL].isin(set(train.classes))
    positions = np.flatnonzero(unknown.to_numpy())
    if len(positions):
        label = synthetic.frame[LABEL].iloc[positions[0]]
        raise DataError(
            synthetic.source,
            f"label '{label}' does not occur in the training data ({train.source})",
            row=int(positions[0]) + 1,
        )


def _split(data: LabeledData, base: str, columns: list[str]) -> dict[str, LabeledData]:
    if not columns:
        return {base: data}
    for column in columns:
        if column not in data.frame.columns:
            raise DataError(data.source, f"no provenance column '{column}' to split sources by")
    parts: dict[str, LabeledData] = {}
    keys = data.frame[columns].astype(str)
    for values, index in keys.groupby(columns, sort=True).groups.items():
        values = values if isinstance(values, tuple) else (values,)
        name = f"{base}:" + "/".join(str(v) for v in values)
        parts[name] = data.subset(np.asarray(data.frame.index.get_indexer(index)))
    return parts
