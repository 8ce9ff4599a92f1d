"""The `synthmix` command: thin glue over the Python API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.cli.app import app, main


_EXPORTS = {
    ".app": (
        "app",
        "main",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["app", "main"]
