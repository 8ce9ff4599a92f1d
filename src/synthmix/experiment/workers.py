"""Worker processes that die with the run: after kill -9 of `synthmix experiment --jobs N`, its
joblib (loky) workers went on fitting for nobody, each holding a core."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from joblib import Parallel, delayed

T = TypeVar("T")

_WATCHED_FOR: int | None = None


def guarded(main_pid: int, task: Callable[..., T], *args: Any) -> T:
    """Run `task(*args)` in a worker that exits once the process `main_pid` is gone.
    Use as `delayed(guarded)(os.getpid(), task, *args)`; in the main process itself it
    only runs the task."""
    die_with_parent(main_pid)
    return task(*args)


def fit_cells(
    fit: Callable[..., T], todo: Iterable[tuple[Any, ...]], data: Any, workers: int
) -> Iterator[T]:
    """`fit(cell, seed, data, classifier)` for every task of `todo`, in `workers` processes
    that die with the run; results come back as each fit finishes, so each is stored before
    the next one ends."""
    if workers <= 1:
        for cell, seed, classifier in todo:
            yield fit(cell, seed, data, classifier)
        return
    yield from Parallel(n_jobs=workers, return_as="generator_unordered")(
        delayed(guarded)(os.getpid(), fit, cell, seed, data, classifier)
        for cell, seed, classifier in todo
    )


def die_with_parent(main_pid: int, interval_s: float = 0.5) -> None:
    """Once per worker process, a daemon thread that ends the process when it is no longer
    the child of `main_pid` (the kernel re-parents the orphans of a killed process)."""
    global _WATCHED_FOR
    if os.getpid() == main_pid or main_pid == _WATCHED_FOR:
        return
    _WATCHED_FOR = main_pid

    def watch() -> None:
        while os.getppid() == main_pid:
            time.sleep(interval_s)
        os._exit(1)  # no cleanup to wait for: the run that wanted the result is gone

    threading.Thread(target=watch, name="synthmix-parent-watch", daemon=True).start()
