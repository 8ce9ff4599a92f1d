"""Synthetic sources for text-pair and multi-label tasks.

Rule-based augmentation (EDA) rewrites the *first* text of a pair and keeps its second text
(the aspect term, the question) as it is: a swapped or inserted word inside a three-word
aspect would make a different aspect, not a variant. For multi-label texts EDA runs per
label set (its in-class words come from texts with the same labels), and the mix then draws
from its output to per-label targets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from synthmix.core.errors import ConfigError, DataError
from synthmix.data.labeled import LABEL, TEXT, TEXT_PAIR, LabeledData, read_frame
from synthmix.data.multilabel import LABELS, MultiLabelData, multilabel_from_frame
from synthmix.data.pairs import PAIR_SEP, join_pairs, split_pair
from synthmix.experiment.multimix import GROUP
from synthmix.experiment.sources import DerivedSource, SourceConfig, _split

# Joins a label set into one EDA "class"; never part of a label name read from a file.
_SET_SEP = "\u241f"
# EDA makes this many more texts of a label set than its share asks for, so the per-label
# draw has texts to choose from where a set's texts also carry an over-target label.
_POOL_MARGIN = 1.25


def joined(data: LabeledData) -> LabeledData:
    """Pair data with each text replaced by `text + PAIR_SEP + pair`, the form mixing and
    classifiers pass around (see data.pairs)."""
    pairs = data.pairs
    if pairs is None:
        return data
    frame = data.frame.copy()
    frame[TEXT] = join_pairs(data.texts, pairs)
    return LabeledData(frame=frame, source=data.source, encoding=data.encoding)


class PairDerivedSource(DerivedSource):
    """EDA of the first texts of joined pairs; each output keeps its parent's second text."""

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData:
        split = [split_pair(text) for text in visible.texts]
        firsts = visible.frame[[LABEL]].assign(**{TEXT: [t for t, _ in split]})
        made = super().__call__(LabeledData(firsts, visible.source), per_class, seed)
        parents = made.frame["parent_row"].to_numpy() - 1
        frame = made.frame.copy()
        frame[TEXT] = [
            f"{text}{PAIR_SEP}{split[parent][1]}"
            for text, parent in zip(made.texts, parents, strict=True)
        ]
        return LabeledData(frame=frame, source=made.source)


class MultiLabelAugment:
    """EDA per label set of the visible texts, sized so each label can reach its target."""

    def __init__(self, source: DerivedSource) -> None:
        self.source = source
        self.name = source.name
        self.settings = source.settings

    def __call__(
        self, visible: MultiLabelData, per_label: Mapping[str, int], seed: int
    ) -> MultiLabelData:
        counts = visible.label_counts()
        factor = {label: per_label.get(label, 0) / n for label, n in counts.items() if n}
        keys = [_SET_SEP.join(labels) for labels in visible.label_sets]
        wanted: dict[str, int] = {}
        for key, size in pd.Series(keys).value_counts().items():
            labels = str(key).split(_SET_SEP) if key else []
            share = max((factor.get(label, 0.0) for label in labels), default=0.0)
            if share > 0:
                wanted[str(key)] = math.ceil(size * share * _POOL_MARGIN)
        rows = np.flatnonzero([bool(key) for key in keys])
        frame = pd.DataFrame(
            {TEXT: [visible.texts[i] for i in rows], LABEL: [keys[i] for i in rows]}
        )
        made = self.source(LabeledData(frame, visible.source), wanted, seed)
        out = made.frame.drop(columns=[LABEL]).copy()
        out.insert(1, LABELS, [tuple(key.split(_SET_SEP)) for key in made.labels])
        parents = rows[made.frame["parent_row"].to_numpy() - 1]
        pairs = visible.pairs
        if pairs is not None:
            out.insert(2, TEXT_PAIR, [pairs[i] for i in parents])
        # Which real text each variant rewrites: threshold tuning keeps the two in one fold.
        out[GROUP] = [visible.texts[i] for i in parents]
        return MultiLabelData(out.reset_index(drop=True), made.source)


def load_multilabel_sources(
    configs: list[SourceConfig],
    base_dir: Path,
    train: MultiLabelData,
    labels_column: str,
    delimiter: str | None,
    text_pair_column: str | None,
) -> dict[str, MultiLabelData]:
    """File sources of a multi-label experiment. A source's label lists are in the
    experiment's labels column unless its own `label_column` is set; labels must occur in the
    training data."""
    sources: dict[str, MultiLabelData] = {}
    known = set(train.classes)
    for config in configs:
        if config.augment is not None:
            continue
        if config.path is None:
            raise ConfigError("a source needs 'path' (a file) or 'augment' (rule-based)")
        path = Path(config.path)
        path = path if path.is_absolute() else base_dir / path
        frame, encoding = read_frame(path)
        column = config.label_column if config.label_column != LABEL else labels_column
        data = multilabel_from_frame(
            frame, config.text_column, column, delimiter, text_pair_column, str(path), encoding
        )
        for position, labels in enumerate(data.label_sets):
            unknown = sorted(set(labels) - known)
            if unknown:
                raise DataError(
                    str(path),
                    f"label '{unknown[0]}' does not occur in the training data ({train.source})",
                    row=position + 1,
                )
        base = config.name or path.stem
        as_single = LabeledData(data.frame.assign(**{LABEL: "-"}), data.source)
        for name, part in _split(as_single, base, config.split_by).items():
            if name in sources:
                raise ConfigError(f"two synthetic sources are named {name!r}; set 'name'")
            sources[name] = MultiLabelData(part.frame.drop(columns=[LABEL]), data.source)
    return sources
