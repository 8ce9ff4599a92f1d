"""Synthetic sources: files of labeled texts with provenance columns, one source per
generator/strategy/temperature combination."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthmix.augment.eda import AugmentConfig, augment
from synthmix.core.errors import ConfigError, DataError
from synthmix.data.labeled import LABEL, TEXT, LabeledData, from_frame, read_frame
from synthmix.generation.classifier_filter import ClassifierFilterConfig
from synthmix.generation.tuning import TuneConfig

log = logging.getLogger("synthmix")

PROVENANCE_COLUMNS = ("generator", "strategy", "temperature", "prompt_hash", "seed", "call_id")
# `synthmix label` output has it: whether the cascade decided the row's label (at a
# calibrated precision) or its fallback guessed one, or none.
DECIDED = "decided"


@dataclass
class TunedSourceConfig(TuneConfig):
    """A source's `tune:` block: tune-generator's settings (model, epochs, lr, max_length,
    batch_size, lora_*, target_modules, device, max_steps; the cell's seed is the seed)
    and how the tuned model generates. `per_class` caps the texts made per class and cell
    (default: as many as the cell asks for); `keep_model` keeps each cell's merged model
    beside its adapter (a later, larger ask then generates without retraining)."""

    model: str = ""
    per_class: int | None = None
    temperature: float = 1.0
    top_p: float | None = None
    max_tokens: int = 64
    # The engine stops a class after this many calls per text asked for.
    calls_per_text: int = 4
    keep_model: bool = False

    def check(self) -> None:
        if not self.model:
            raise ConfigError("model is required (a hub name, a folder or a .gguf file)")
        if self.seed != 0:
            raise ConfigError("seed: each cell tunes with its own seed; leave it out")
        for name, count in (
            ("max_tokens", self.max_tokens),
            ("calls_per_text", self.calls_per_text),
        ):
            if count < 1:
                raise ConfigError(f"{name} must be >= 1, got {count}")
        if self.per_class is not None and self.per_class < 1:
            raise ConfigError(f"per_class must be >= 1, got {self.per_class}")
        super().check()


@dataclass
class SourceConfig:
    """A synthetic source: a file (`path`), rule-based augmentation (`augment`, with
    AugmentConfig settings such as alpha and operations) or a generator LoRA-tuned on the
    cell's real texts (`tune`, see experiment.tuned_source), the last two derived in every
    cell from the real texts that cell may see.

    `split_by` names provenance columns of a file whose value combinations become separate
    sources (one file from `synthmix generate` can hold several).
    """

    path: str | None = None
    name: str | None = None
    augment: dict[str, Any] | None = None
    tune: TunedSourceConfig | None = None
    split_by: list[str] = field(default_factory=list)
    # Limit this source to some plans, e.g. [small_real_plus_count] for a source of a few
    # dozen texts per class that could never fill "synthetic only".
    plans: list[str] | None = None
    text_column: str = TEXT
    label_column: str = LABEL
    # A file source judged inside each cell (experiment.filtered), fitted on the real texts
    # that cell may see: keep a text only when a classifier confirms its label
    # ({classifier: tfidf_logreg, min_probability: 0.5} or {top_k: 2}), and drop the texts
    # cleanlab flags as label issues among that cell's real texts and the source's.
    filter: ClassifierFilterConfig | None = None
    drop_label_issues: bool = False
    # A text-pair task's second text; by default the experiment's `text_pair_column`.
    text_pair_column: str | None = None


class DerivedSource:
    """Synthetic texts made per cell from the real texts the cell trains on (or, for
    synthetic-only cells, from all real texts). A source file made once from the whole
    training set would leak the other 90% of the real data into a "10% real" cell."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = dict(settings)
        if "operations" in self.settings:
            self.settings["operations"] = tuple(self.settings["operations"])
        self.config(per_class=1, seed=0)  # reject bad settings before any training

    def config(self, per_class: int, seed: int) -> AugmentConfig:
        try:
            return AugmentConfig(per_class=per_class, seed=seed, **self.settings)
        except TypeError as exc:
            raise ConfigError(f"source {self.name!r}: augment: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"source {self.name!r}: augment: {exc}") from None

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData:
        """`per_class` texts of each class, or `per_class[label]` of each: a cell that
        needs few texts of a small class does not augment it to the largest class's size."""
        if isinstance(per_class, Mapping):
            top = max(per_class.values(), default=0)
            return augment(visible, self.config(top, seed), counts=per_class)
        return augment(visible, self.config(per_class, seed))


class ReusedAugmentations:
    """A derived source that augments each real sample once per seed: every cell with the
    same real sample and seed (e.g. "10% real + 25/50/75/100% EDA") takes its first texts of
    each class from one augmentation, made at the largest count any of them asked for.
    Augmentation makes a class's texts one after the other from one random stream, so the
    first n of a larger run are the texts a run for n would make."""

    def __init__(self, source: DerivedSource) -> None:
        self.source = source
        self._made: dict[tuple[str, int], tuple[dict[str, int], LabeledData]] = {}
        self.augmented = 0  # texts made, for the run's timings

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData:
        wanted = (
            dict(per_class)
            if isinstance(per_class, Mapping)
            else dict.fromkeys(visible.classes, per_class)
        )
        key = (_digest(visible), seed)
        made = self._made.get(key)
        if made is None or any(n > made[0].get(label, 0) for label, n in wanted.items()):
            counts = {
                label: max(n, made[0].get(label, 0) if made else 0) for label, n in wanted.items()
            }
            data = self.source(visible, counts, seed)
            self.augmented += len(data)
            made = (counts, data)
            self._made[key] = made
        frame = made[1].frame
        rank = frame.groupby(LABEL, sort=False).cumcount()
        keep = rank < frame[LABEL].map(wanted).fillna(0)
        return made[1].subset(np.flatnonzero(keep.to_numpy()))


def _digest(data: LabeledData) -> str:
    digest = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def derived_sources(configs: list[SourceConfig]) -> dict[str, DerivedSource]:
    sources: dict[str, DerivedSource] = {}
    for config in configs:
        if config.augment is None and config.tune is None:
            continue
        kinds = [key for key in ("path", "augment", "tune") if getattr(config, key) is not None]
        if len(kinds) > 1:
            raise ConfigError(f"a source has one of 'path', 'augment' or 'tune', not {kinds}")
        name = config.name or ("eda" if config.augment is not None else "tuned")
        if name in sources:
            raise ConfigError(f"two synthetic sources are named {name!r}; set 'name'")
        if config.tune is not None:
            from synthmix.experiment.tuned_source import TunedSource

            sources[name] = TunedSource(name, config.tune)
        else:
            assert config.augment is not None
            sources[name] = DerivedSource(name, config.augment)
    return sources


def load_sources(
    configs: list[SourceConfig],
    base_dir: Path,
    train: LabeledData,
    text_pair_column: str | None = None,
) -> dict[str, LabeledData]:
    """Load every source, split it by provenance and check its labels against training data.
    Source names must be unique across the experiment. For a text-pair task
    (`text_pair_column`), each source's texts are joined pairs (see data.pairs)."""
    sources: dict[str, LabeledData] = {}
    for config in configs:
        if config.augment is not None or config.tune is not None:
            continue
        if config.path is None:
            raise ConfigError(
                "a source needs 'path' (a file), 'augment' (rule-based) "
                "or 'tune' (a tuned generator)"
            )
        path = Path(config.path)
        if not path.is_absolute():
            path = base_dir / path
        data, rows = _load_file(path, config, config.text_pair_column or text_pair_column)
        _check_labels(data, train, rows)
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


def _load_file(
    path: Path, config: SourceConfig, text_pair_column: str | None = None
) -> tuple[LabeledData, np.ndarray]:
    """A source file's labeled texts and, per kept row, its row number in the file.

    Output of `synthmix label` (a `decided` column) is reduced to the rows the cascade
    decided: the rest carry a fallback guess below the calibrated precision, or no
    label at all. Errors name rows as the file counts them."""
    frame, encoding = read_frame(path)
    rows = np.arange(1, len(frame) + 1)
    if DECIDED in frame.columns:
        decided = frame[DECIDED].astype(str).str.strip().str.lower().isin({"true", "1"})
        rows = rows[decided.to_numpy()]
        log.info("%s: %d of %d rows decided by the labeling cascade", path, len(rows), len(frame))
        if not len(rows):
            raise DataError(str(path), f"no row the labeling cascade decided (column '{DECIDED}')")
        frame = frame[decided.to_numpy()]
    try:
        data = from_frame(
            frame,
            config.text_column,
            config.label_column,
            source=str(path),
            encoding=encoding,
            text_pair_column=text_pair_column,
        )
    except DataError as exc:
        if exc.row is None:
            raise
        raise DataError(exc.source, exc.problem, row=int(rows[exc.row - 1])) from None
    if data.pairs is not None:
        data = _joined(data)
    return data, rows


def _joined(data: LabeledData) -> LabeledData:
    from synthmix.experiment.task_sources import joined

    return joined(data)


def _check_labels(synthetic: LabeledData, train: LabeledData, rows: np.ndarray) -> None:
    unknown = ~synthetic.frame[LABEL].isin(set(train.classes))
    positions = np.flatnonzero(unknown.to_numpy())
    if len(positions):
        label = synthetic.frame[LABEL].iloc[positions[0]]
        raise DataError(
            synthetic.source,
            f"label '{label}' does not occur in the training data ({train.source})",
            row=int(rows[positions[0]]),
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
