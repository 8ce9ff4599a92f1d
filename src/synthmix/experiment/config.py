"""Experiment configs: YAML parsed once, at the edge, into plain dataclasses."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

from synthmix.classifiers.registry import ClassifierConfig, check_classifier
from synthmix.classifiers.tuning import DEFAULT_GRIDS
from synthmix.core.config import build_dataclass, read_yaml
from synthmix.core.errors import ConfigError
from synthmix.experiment.executors import ExecutorConfig, ExecutorKind
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLANS, Cell, PlanConfig
from synthmix.experiment.sources import SourceConfig

# Source keys added after runs existed, with their defaults (see ExperimentConfig.to_dict).
_LATER_SOURCE_KEYS: dict[str, object] = {
    "filter": None,
    "drop_label_issues": False,
    "text_pair_column": None,
    "tune": None,
}


@dataclass
class DataConfig:
    """Real data. Without `test`, a stratified `test_size` split of `train` is held out."""

    train: str
    test: str | None = None
    test_size: float = 0.2
    split_seed: int = 0
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "auto"
    # "multi_label": each row holds a list of labels in `labels_column` (a JSON list, or
    # labels joined by `label_delimiter`).
    task: str = "single_label"
    labels_column: str = "labels"
    label_delimiter: str | None = None
    # The second text of a text-pair task (an aspect term, a passage), for either task.
    text_pair_column: str | None = None

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(_TASKS)}")


_TASKS = ("single_label", "multi_label")
# Left out of a run's identity at these values, so run directories made before tasks and
# pairs existed still resume.
_NEW_DATA_DEFAULTS = {
    "task": "single_label",
    "labels_column": "labels",
    "label_delimiter": None,
    "text_pair_column": None,
}


@dataclass
class ExperimentConfig:
    name: str
    data: DataConfig
    card: str | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    plans: PlanConfig = field(default_factory=PlanConfig)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # Seeds of the small-real cells (the small-real plans and the small real fraction alone),
    # when they need more than the rest: their gains are small and their spread between seeds
    # large, while their fits are cheap. Empty: `seeds`.
    small_real_seeds: list[int] = field(default_factory=list)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Several classifiers trained on the same cells and seeds and compared in one report; when
    # given, it replaces `classifier`.
    classifiers: list[ClassifierConfig] = field(default_factory=list)
    # Tuned baselines: every classifier with a default grid (or all, given a grid) picks its
    # regularisation per cell by cross-validation on the cell's training rows; a classifier's
    # own `tune` wins (see classifiers.tuning).
    tune: bool | dict[str, Any] | None = None
    jobs: int = 0  # 0 = one worker per core
    # Where the fits run: worker processes here (local) or tasks on a Ray cluster (ray).
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    # Relative paths in the YAML are resolved against the YAML's folder.
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def seeds_for(self, cell: Cell) -> list[int]:
        """The seeds `cell` is fitted with."""
        small = cell.plan in SMALL_REAL_PLANS or (
            cell.plan == REAL_ONLY
            and math.isclose(cell.real_fraction, self.plans.small_real_fraction)
        )
        return self.small_real_seeds if small and self.small_real_seeds else self.seeds

    def compared_classifiers(self) -> list[ClassifierConfig]:
        """The classifiers this experiment trains, the primary one (the report's headline) first:
        `classifiers` if given, else the single `classifier`; each with the experiment's `tune`
        unless it sets its own."""
        return [self._tuned(spec) for spec in self._classifiers()]

    def _tuned(self, spec: ClassifierConfig) -> ClassifierConfig:
        if spec.tune is not None or self.tune is None:
            return spec
        # `tune: true` for the whole experiment covers the classifiers that have a default
        # grid; a grid given there applies to every classifier.
        if self.tune is True and spec.name not in DEFAULT_GRIDS:
            return spec
        return dataclasses.replace(spec, tune=self.tune)

    def _classifiers(self) -> list[ClassifierConfig]:
        if not self.classifiers:
            return [self.classifier]
        if self.classifier != ClassifierConfig():
            raise ConfigError(
                "set either 'classifier' (one) or 'classifiers' (a list to compare), not both"
            )
        seen: set[str] = set()
        for spec in self.classifiers:
            if spec.display in seen:
                raise ConfigError(
                    f"two classifiers are labelled {spec.display!r}; give each a distinct 'label'"
                )
            seen.add(spec.display)
        return list(self.classifiers)

    def to_dict(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw.pop("base_dir")
        raw.pop("jobs")  # how many cores ran it does not change the results
        for key, default in _NEW_DATA_DEFAULTS.items():
            if raw["data"].get(key) == default:
                raw["data"].pop(key)
        for source in raw["sources"]:
            # Keys added after runs existed stay out at their defaults: such a run's
            # fingerprint, and so its resumption, does not change.
            for key, unset in _LATER_SOURCE_KEYS.items():
                if source.get(key) == unset:
                    source.pop(key, None)
        raw.pop("executor")  # nor where they ran
        return raw


def load_experiment(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    raw = read_yaml(path)
    config = parse_experiment(raw, str(path))
    config.base_dir = path.resolve().parent
    return config


def with_executor(
    config: ExperimentConfig, kind: str | None, address: str | None
) -> ExperimentConfig:
    """`config` with the executor the command line chose (`--executor`, `--address`)."""
    executor = config.executor
    if kind is not None:
        if kind not in get_args(ExecutorKind):
            raise ConfigError(f"--executor: {kind!r} is not allowed (use 'local' or 'ray')")
        executor = dataclasses.replace(executor, kind=cast(ExecutorKind, kind))
    if address is not None:
        if executor.kind != "ray":
            raise ConfigError("--address: joins a Ray cluster; add --executor ray")
        executor = dataclasses.replace(executor, address=address)
    return dataclasses.replace(config, executor=executor)


def parse_experiment(raw: Any, source: str) -> ExperimentConfig:
    for key in ("seeds", "small_real_seeds"):
        if isinstance(raw, dict) and isinstance(raw.get(key), int):
            # `seeds: 5` is shorthand for seeds 0..4.
            raw = {**raw, key: list(range(raw[key]))}
    if isinstance(raw, dict) and isinstance(raw.get("executor"), str):
        # `executor: ray` is shorthand for `executor: {kind: ray}`.
        raw = {**raw, "executor": {"kind": raw["executor"]}}
    if isinstance(raw, dict) and "classifier" in raw and "classifiers" in raw:
        raise ConfigError(
            f"{source}: set either 'classifier' (one) or 'classifiers' (a list to compare), "
            "not both"
        )
    if isinstance(raw, dict) and raw.get("classifiers") == []:
        raise ConfigError(f"{source}: 'classifiers' must name at least one classifier")
    config = build_dataclass(ExperimentConfig, raw, source)
    if not config.seeds:
        raise ConfigError(f"{source}: 'seeds' must name at least one seed")
    missing = sorted(set(config.seeds) - set(config.small_real_seeds))
    if config.small_real_seeds and missing:
        # More seeds, not other ones: the small real fraction alone is also a learning-curve
        # point, compared with the other fractions seed by seed.
        raise ConfigError(
            f"{source}: 'small_real_seeds' must include every seed of 'seeds' "
            f"(missing {missing[0]})"
        )
    for spec in config.sources:
        if spec.tune is None:
            continue
        where = f"{source}: sources: {spec.name or 'tuned'}: tune"
        if config.data.task != "single_label" or config.data.text_pair_column is not None:
            raise ConfigError(f"{where}: a tuned generator source needs a single-label task")
        try:
            spec.tune.check()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    try:
        for classifier in config.compared_classifiers():
            check_classifier(classifier)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config
