"""The `synthmix` command: thin glue over the Python API."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".app": (
        "app",
        "main",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["app", "main"]
