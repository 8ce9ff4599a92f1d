"""Open registries: the built-ins and third-party packages register the same way.

A built-in is named by "module:attribute" and imported on first use (heavy back ends cost
nothing until a config names them); a third-party package adds an entry point to the group,
e.g. in its pyproject.toml::

    [project.entry-points."synthmix.classifiers"]
    my_model = "my_package.models:MyClassifier"

and `register()` adds one at run time (notebooks, tests).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from synthmix.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to objects (factories, classes) for one entry-point group."""

    def __init__(self, group: str, kind: str, builtins: Mapping[str, str | T]) -> None:
        self.group = group
        self.kind = kind  # how messages name an entry: "classifier", "strategy"
        self._entries: dict[str, str | T] = dict(builtins)
        self._plugins_loaded = False

    def register(self, name: str, value: T) -> None:
        self._entries[name] = value

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def get(self, name: str) -> T:
        """The entry called `name`; an unknown name is one ConfigError listing the known ones."""
        self._load_plugins()
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} {name!r} (available: {', '.join(self.names())})"
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _resolve(entry)
            self._entries[name] = entry
        return entry

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in metadata.entry_points(group=self.group):
            # A built-in of the same name stays: a plugin cannot silently replace one.
            self._entries.setdefault(point.name, point.value)


def _resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value
