"""Ground floor: errors, config reading, provenance and helpers every layer uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.core.config import build_dataclass, read_yaml
    from synthmix.core.errors import ConfigError, DataError, SynthmixError
    from synthmix.core.provenance import package_versions


_EXPORTS = {
    ".errors": (
        "SynthmixError",
        "DataError",
        "ConfigError",
    ),
    ".config": (
        "read_yaml",
        "build_dataclass",
    ),
    ".provenance": ("package_versions",),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "ConfigError",
    "DataError",
    "SynthmixError",
    "build_dataclass",
    "package_versions",
    "read_yaml",
]
