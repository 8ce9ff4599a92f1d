"""The `synthmix` command line: thin glue over the Python API."""

from __future__ import annotations

import logging
import sys

import typer

# The command modules register their commands on the app when imported.
from synthmix.cli import cards, generate, label, runs, tasks, texts  # noqa: F401
from synthmix.cli.base import app
from synthmix.core.errors import SynthmixError

__all__ = ["app", "main"]


def main() -> None:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        # Warnings go through tqdm.write, so they land above a progress bar, not on its line.
        with logging_redirect_tqdm():
            app()
    except SynthmixError as exc:
        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()  # an error glued to the end of a half-drawn bar is easy to miss
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
