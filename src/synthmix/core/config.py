"""Reading YAML configs and validating them, once, at the edge.

Configs are plain dataclasses; pydantic v2 validates a YAML mapping against them (types,
`Literal` choices, nested dataclasses, unknown keys) and every problem becomes one line that
names the file, the key and what is allowed, with no Python internals in it.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from synthmix.core.errors import ConfigError

# Fields a config class fills itself (the YAML's folder), never read from the YAML.
_INTERNAL_FIELDS = frozenset({"base_dir"})
_STRICTNESS = ConfigDict(extra="forbid", coerce_numbers_to_str=True, arbitrary_types_allowed=True)


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
    """Build dataclass `cls` from a mapping, rejecting unknown keys, wrong types and values
    outside a `Literal`, so that a typo in a config is an error, not an ignored setting."""
    label = where or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {label}: expected a mapping, got {_kind(raw)}")
    internal = sorted(_INTERNAL_FIELDS & set(raw))
    if internal:
        allowed = [f.name for f in dataclasses.fields(cls) if f.name not in _INTERNAL_FIELDS]
        raise ConfigError(
            f"{source}: {label}: unknown key '{internal[0]}' (allowed: {', '.join(allowed)})"
        )
    try:
        return _adapter(cls).validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {explain(exc, cls, where)}") from None


def explain(exc: ValidationError, cls: type, where: str = "") -> str:
    """The first problem pydantic found, as `key.path: problem` in the words of the YAML."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    kind, value = error["type"], error.get("input")
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        key, parent = loc[-1], loc[:-1]
        allowed = _allowed_keys(cls, parent)
        problem = f"unknown key '{key}'" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        return f"{_path(where, parent)}: {problem}"
    if kind in ("missing", "missing_keyword_argument", "missing_argument"):
        return f"{_path(where, loc[:-1])}: missing '{loc[-1]}'"
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", ""))
        return f"{_path(where, loc)}: {value!r} is not allowed (use {expected})"
    if kind == "value_error":
        return f"{_path(where, loc)}: {error.get('ctx', {}).get('error', error['msg'])!s}"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "dataclass_type":
        return f"{_path(where, loc)}: expected {_expected(kind)}, got {_kind(value)}"
    message = error["msg"][0].lower() + error["msg"][1:]
    if " got " not in message:
        message += f", got {_kind(value)}"
    return f"{_path(where, loc)}: {message}"


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    for nested in _dataclasses_in(cls):
        # Set on the class (pydantic reads it there); a stdlib dataclass has no other way to
        # forbid unknown keys, and the dataclasses stay plain for their other users.
        if "__pydantic_config__" not in vars(nested):
            nested.__pydantic_config__ = _STRICTNESS  # type: ignore[attr-defined]
    return TypeAdapter(cls)


def _dataclasses_in(cls: type, seen: set[type] | None = None) -> set[type]:
    seen = set() if seen is None else seen
    if not dataclasses.is_dataclass(cls) or cls in seen:
        return seen
    seen.add(cls)
    for hint in typing.get_type_hints(cls).values():
        for part in _flatten(hint):
            _dataclasses_in(part, seen)
    return seen


def _flatten(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    return [hint] if not args else [part for arg in args for part in _flatten(arg)]


def _allowed_keys(cls: type, loc: list[str]) -> list[str]:
    """The fields of the dataclass at `loc` (list indices skipped) below `cls`."""
    current: Any = cls
    for part in loc:
        if part.isdigit() or not dataclasses.is_dataclass(current):
            continue
        hint = typing.get_type_hints(current).get(part)
        candidates = [h for h in _flatten(hint) if dataclasses.is_dataclass(h)]
        current = candidates[0] if candidates else None
    if not dataclasses.is_dataclass(current):
        return []
    return [f.name for f in dataclasses.fields(current) if f.name not in _INTERNAL_FIELDS]


def _path(where: str, loc: list[str]) -> str:
    parts = [where] if where else []
    for part in loc:
        if part.isdigit():
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(part)
    return ".".join(parts) or "top level"


_EXPECTED = {
    "string": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "list": "a list",
    "dict": "a mapping",
    "dataclass": "a mapping",
}


def _expected(kind: str) -> str:
    stem = kind.removesuffix("_type").removesuffix("_parsing")
    return _EXPECTED.get(stem, stem.replace("_", " "))


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:60]
