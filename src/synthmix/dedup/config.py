"""Which stages run, how strict they are, and the stages a config builds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.dedup.base import DedupStage
from synthmix.dedup.forms import Shingles
from synthmix.dedup.lsh import Backend
from synthmix.dedup.registry import StageContext, stage_factory
from synthmix.embeddings.encoder import OFFLINE_DEFAULT

DEFAULT_ORDER = ("real-leak", "exact", "minhash", "embedding")


class StageError(ConfigError, ValueError):
    """A stage name or its options are wrong. Also a ValueError, so that pydantic, validating
    a plan, reports it under the file and key (`plan.yaml: dedup: unknown dedup stage ...`)."""


@dataclass
class DedupConfig:
    """Which stages run and how strict they are.

    `stages` names registered stages in the order they run (default: real-leak, exact,
    minhash, embedding); a built-in runs only while its switch (`leak_check`, `exact`,
    `minhash`, `embedding`) is on, wherever it is listed, and the real-leak check runs first
    unless listed elsewhere, and only when real texts are given. `options` holds each
    registered third-party stage's keyword options, by stage name."""

    exact: bool = True
    minhash: bool = True
    minhash_threshold: float = 0.8
    num_perm: int = 128
    shingles: Shingles = "word"
    ngram: int | None = None
    embedding: bool = False
    embedding_threshold: float = 0.92
    encoder: str = OFFLINE_DEFAULT
    encoder_cache: str | None = None
    leak_check: bool = True
    leak_minhash_threshold: float = 0.7
    leak_embedding_threshold: float | None = None
    drop_leaks: bool = True
    across_labels: bool = True
    backend: Backend = "auto"
    stages: list[str] | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in [*(self.stages or ()), *self.options]:
            try:
                stage_factory(name)
            except ConfigError as exc:  # one line naming the known ones
                raise StageError(str(exc)) from None
        built_in = [name for name in self.options if name in DEFAULT_ORDER]
        if built_in:
            raise StageError(
                f"options.{built_in[0]}: built-in stages take their settings from the dedup "
                "keys (minhash_threshold, embedding_threshold, ...), not from options"
            )

    def stage_names(self) -> list[str]:
        """The stages this config runs, in order, real-leak included where it would run."""
        switches = {
            "real-leak": self.leak_check,
            "exact": self.exact,
            "minhash": self.minhash,
            "embedding": self.embedding,
        }
        listed = DEFAULT_ORDER if self.stages is None else self.stages
        names = [name for name in dict.fromkeys(listed) if switches.get(name, True)]
        if self.leak_check and "real-leak" not in names:
            names.insert(0, "real-leak")
        return names

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        # Left out at their defaults, so reports and fingerprints of configs that name no
        # stages stay what they were.
        if self.stages is None:
            del payload["stages"]
        if not self.options:
            del payload["options"]
        return payload


def texts_of(real: LabeledData | Sequence[str]) -> list[str]:
    return real.texts if isinstance(real, LabeledData) else list(real)


def build_stages(
    config: DedupConfig, real: LabeledData | Sequence[str] | None = None
) -> list[DedupStage]:
    """Stages for a config, resolved through the stage registry; the leak check runs first
    so a copy of a real text is never the "first occurrence" that its own near-duplicates
    are measured against."""
    context = StageContext(config, None if real is None else texts_of(real))
    stages = []
    for name in config.stage_names():
        stage = stage_factory(name)(context)
        if stage is not None:
            stages.append(stage)
    return stages
