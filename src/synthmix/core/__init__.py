"""Ground floor: errors, config reading, provenance and helpers every layer uses."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

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
