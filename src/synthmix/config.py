"""Experiment configs: YAML parsed once, at the edge, into plain dataclasses."""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from synthmix.classify import ClassifierConfig
from synthmix.errors import ConfigError
from synthmix.mixing import PlanConfig
from synthmix.sources import SourceConfig


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
        return raw


def read_yaml(path: Path) -> Any:
    """A YAML file's content; a missing file, bad YAML or bad encoding is one ConfigError."""
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8; re-save it as UTF-8") from None


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
        config.compared_classifiers()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def build_dataclass(cls: type, raw: Any, source: str, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types so that a
    typo in a config is an error, not a silently ignored setting."""
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {label}: expected a mapping, got {_kind(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "base_dir"}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: {label}: unknown key '{unknown[0]}' (allowed: {', '.join(fields)})"
        )
    hints = get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        if name not in raw:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: {label}: missing '{name}'")
            continue
        values[name] = _coerce(hints[name], raw[name], source, f"{where}.{name}".lstrip("."))
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return None
        return _coerce(options[0], value, source, where)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, source, where)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {where}: expected a list, got {_kind(value)}")
        (item,) = get_args(hint)
        return [_coerce(item, v, source, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where}: expected a mapping, got {_kind(value)}")
        return dict(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is str and isinstance(value, int | float):
        return str(value)
    if hint is Any:
        return value
    raise ConfigError(
        f"{source}: {where}: expected {getattr(hint, '__name__', hint)}, got {_kind(value)}"
    )


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:60]
