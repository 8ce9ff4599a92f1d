"""The dedup stages a config can name: built-ins, runtime registrations and plugins.

A third-party package adds a stage through the entry point group `synthmix.dedup_stages`:

    [project.entry-points."synthmix.dedup_stages"]
    my-stage = "my_package.dedup:make_stage"

The entry point's name is the stage's name in `DedupConfig.stages`; it loads a factory that
takes a `StageContext` (the config, the real texts, the shared encoder, the stage's options)
and returns a `DedupStage`, or None when the stage has nothing to do in this run. The built-ins
are factories named the same way ("module:attribute", `synthmix.core.plugins.Registry`); a
plugin never replaces a built-in, and `register_stage` adds or replaces one at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthmix.core.plugins import Registry
from synthmix.dedup.base import DedupStage
from synthmix.dedup.embedding import EmbeddingDedup
from synthmix.dedup.exact import ExactDedup
from synthmix.dedup.leak import RealLeakCheck
from synthmix.dedup.minhash import MinHashDedup
from synthmix.embeddings.encoder import Encoder, build_encoder

if TYPE_CHECKING:
    from synthmix.dedup.config import DedupConfig

ENTRY_POINT_GROUP = "synthmix.dedup_stages"


@dataclass
class StageContext:
    """What a stage factory may use. `encoder()` is built on first call and shared, so the
    leak check and the embedding stage load the model once."""

    config: DedupConfig
    real: list[str] | None = None
    _encoder: Encoder | None = field(default=None, repr=False)

    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = build_encoder(self.config.encoder, self.config.encoder_cache)
        return self._encoder

    def options(self, name: str) -> dict[str, Any]:
        """The stage's own keyword options (`DedupConfig.options[name]`)."""
        return dict(self.config.options.get(name, {}))


StageFactory = Callable[[StageContext], DedupStage | None]

STAGES: Registry[StageFactory] = Registry(
    ENTRY_POINT_GROUP,
    "dedup stage",
    {
        "real-leak": "synthmix.dedup.registry:real_leak_stage",
        "exact": "synthmix.dedup.registry:exact_stage",
        "minhash": "synthmix.dedup.registry:minhash_stage",
        "embedding": "synthmix.dedup.registry:embedding_stage",
    },
)


def register_stage(name: str, factory: StageFactory) -> None:
    """Make a stage selectable by name in `DedupConfig.stages` (replaces a stage of that name)."""
    STAGES.register(name, factory)


def available_stages() -> list[str]:
    return STAGES.names()


def stage_factory(name: str) -> StageFactory:
    """The factory registered as `name`; an unknown name is one ConfigError naming the known."""
    return STAGES.get(name)


# ---------------------------------------------------------------------------- built-ins


def real_leak_stage(context: StageContext) -> DedupStage | None:
    config = context.config
    if context.real is None:
        return None
    return RealLeakCheck(
        context.real,
        minhash_threshold=config.leak_minhash_threshold,
        embedding_threshold=config.leak_embedding_threshold,
        drop=config.drop_leaks,
        shingles=config.shingles,
        ngram=config.ngram,
        num_perm=config.num_perm,
        encoder=context.encoder() if config.leak_embedding_threshold is not None else None,
        backend=config.backend,
    )


def exact_stage(context: StageContext) -> DedupStage:
    return ExactDedup()


def minhash_stage(context: StageContext) -> DedupStage:
    config = context.config
    return MinHashDedup(
        config.minhash_threshold,
        config.num_perm,
        config.shingles,
        config.ngram,
        backend=config.backend,
    )


def embedding_stage(context: StageContext) -> DedupStage:
    return EmbeddingDedup(context.config.embedding_threshold, context.encoder())
