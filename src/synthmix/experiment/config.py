"""Experiment configs: YAML parsed once, at the edge, into plain dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmix.classifiers.registry import ClassifierConfig, check_classifier
from synthmix.core.config import build_dataclass, read_yaml
from synthmix.core.errors import ConfigError
from synthmix.experiment.mixing import PlanConfig
from synthmix.experiment.sources import SourceConfig

# Source keys added after runs existed, with their defaults (see ExperimentConfig.to_dict).
_LATER_SOURCE_KEYS: dict[str, object] = {"filter": None, "drop_label_issues": False}


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


@dataclass
class ExperimentConfig:
    name: str
    data: DataConfig
    card: str | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    plans: PlanConfig = field(default_factory=PlanConfig)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Several classifiers trained on the same cells and seeds and compared in one report; when
    # given, it replaces `classifier`.
    classifiers: list[ClassifierConfig] = field(default_factory=list)
    jobs: int = 0  # 0 = one worker per core
    # Relative paths in the YAML are resolved against the YAML's folder.
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def compared_classifiers(self) -> list[ClassifierConfig]:
        """The classifiers this experiment trains, the primary one (the report's headline) first:
        `classifiers` if given, else the single `classifier`."""
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
        for source in raw["sources"]:
            # Keys added after runs existed stay out at their defaults: such a run's
            # fingerprint, and so its resumption, does not change.
            for key, default in _LATER_SOURCE_KEYS.items():
                if source.get(key) == default:
                    source.pop(key, None)
        return raw


def load_experiment(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    raw = read_yaml(path)
    config = parse_experiment(raw, str(path))
    config.base_dir = path.resolve().parent
    return config


def parse_experiment(raw: Any, source: str) -> ExperimentConfig:
    if isinstance(raw, dict) and isinstance(raw.get("seeds"), int):
        # `seeds: 5` is shorthand for seeds 0..4.
        raw = {**raw, "seeds": list(range(raw["seeds"]))}
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
    try:
        for classifier in config.compared_classifiers():
            check_classifier(classifier)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config
