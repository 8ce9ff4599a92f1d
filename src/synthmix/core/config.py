"""Reading YAML configs and building them into dataclasses, once, at the edge."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from synthmix.core.errors import ConfigError


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
