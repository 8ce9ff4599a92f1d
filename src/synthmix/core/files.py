"""Checks on output paths, made before any work is paid for (a non-writable --out used to fail
only after every LLM call of a generation run)."""

from __future__ import annotations

import os
from pathlib import Path

from synthmix.core.errors import ConfigError


def check_writable(path: str | Path, what: str = "output", folder: bool = False) -> Path:
    """`path` if it can be created or overwritten (as a file, or as a `folder`); otherwise one
    ConfigError naming it."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: is a file; the {what} must be a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{path}: is a directory; the {what} needs a file name")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{path}: {existing} is a file, so the {what} cannot be written there")
    if not os.access(existing, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    ):
        raise ConfigError(f"{path}: not writable (check the folder's permissions)")
    return path


def sidecar(output: str | Path, kind: str = "report") -> Path:
    """The JSON written beside an output file, one rule for every command: `<stem>.<kind>.json`
    (`texts.jsonl` → `texts.report.json`, `texts.dedup.json`, `texts.agreement.json`)."""
    output = Path(output)
    return output.with_name(f"{output.stem}.{kind}.json")
