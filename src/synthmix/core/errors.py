"""One exception family: user mistakes surface as one clear line at the CLI edge."""

from __future__ import annotations


class SynthmixError(Exception):
    """Base class for every error synthmix raises on purpose (bad input, bad config)."""


class DataError(SynthmixError):
    """A data file is unreadable or invalid; the message names the file, row and problem."""

    def __init__(self, source: str, problem: str, row: int | None = None) -> None:
        self.source = source
        self.row = row
        self.problem = problem
        where = f"{source}: row {row}" if row is not None else source
        # a value quoted from the file may carry newlines; the message stays one line
        super().__init__(" ".join(f"{where}: {problem}".split()))


class ConfigError(SynthmixError):
    """A YAML config (task card, experiment) is missing a field or has a wrong value."""
