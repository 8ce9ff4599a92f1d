"""One writer per output: a second process writing the same file or run directory is refused
with one line naming the first, instead of the last writer silently winning.

An advisory `flock` on `<output>.lock` beside the file or directory: the kernel drops it
when the holder dies, kill -9 included, so a stale lock never blocks a rerun.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from synthmix.core.errors import SynthmixError


class OutputLocked(SynthmixError):
    """Another live process is writing the same output."""


def lock_path(output: Path) -> Path:
    # Beside, not inside: a run directory that does not exist yet has the same lock.
    return output.with_name(output.name + ".lock")


@contextlib.contextmanager
def exclusive(output: str | Path, what: str = "output") -> Iterator[None]:
    """Hold the lock of `output` for the block; refuse at once if another process holds it."""
    output = Path(output)
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise OutputLocked(
                f"{output}: another synthmix process (PID {owner}) is writing this {what}; "
                "wait for it to finish or choose another output"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock; the file stays, harmless, for the next run
