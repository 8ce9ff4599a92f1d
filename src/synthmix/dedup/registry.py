"""The dedup stages a config can name: built-ins, runtime registrations and plugins.

A third-party package adds a stage through the entry point group `synthmix.dedup_stages`:

    [project.entry-points."synthmix.dedup_stages"]
    my-stage = "my_package.dedup:make_stage"

The entry point's name is the stage's name in `DedupConfig.stages`; it loads a factory that
takes a `StageContext` (the config, the real texts, the shared encoder, the stage's options)
and returns a `DedupStage`, or None when the stage has nothing to do in this run. The built-ins
are factories registered the same way (`register_stage`); plugins are loaded on the first
lookup, and never replace a name already registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from synthmix.core.errors import ConfigError
from synthmix.dedup.base import DedupStage
from synthmix.dedup.embedding import EmbeddingDedup
from synthmix.dedup.exact import ExactDedup
from synthmix.dedup.leak import RealLeakCheck
from synthmix.dedup.minhash import MinHashDedup
from synthmix.embeddings.encoder import Encoder, build_encoder

if TYPE_CHECKING:
    from synthmix.dedup.config import DedupConfig

log = logging.getLogger("synthmix")

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

_REGISTRY: dict[str, StageFactory] = {}
_plugins_loaded = False


def register_stage(name: str, factory: StageFactory) -> None:
    """Make a stage selectable by name in `DedupConfig.stages` (replaces a stage of that name)."""
    _REGISTRY[name] = factory


def available_stages() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def stage_factory(name: str) -> StageFactory:
    _load_plugins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(
            f"dedup: unknown stage {name!r} (available: {', '.join(available_stages())})"
        )
    return factory


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in _REGISTRY:
            log.warning(
                "dedup stage plugin %s (%s) ignored: the name is taken", point.name, point.value
            )
            continue
        try:
            _REGISTRY[point.name] = point.load()
        except Exception as exc:  # a broken plugin must not break every other stage
            log.warning(
                "dedup stage plugin %s (%s) failed to load: %s", point.name, point.value, exc
            )


# ---------------------------------------------------------------------------- built-ins


def _real_leak(context: StageContext) -> DedupStage | None:
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


def _exact(context: StageContext) -> DedupStage:
    return ExactDedup()


def _minhash(context: StageContext) -> DedupStage:
    config = context.config
    return MinHashDedup(
        config.minhash_threshold,
        config.num_perm,
        config.shingles,
        config.ngram,
        backend=config.backend,
    )


def _embedding(context: StageContext) -> DedupStage:
    return EmbeddingDedup(context.config.embedding_threshold, context.encoder())


register_stage("real-leak", _real_leak)
register_stage("exact", _exact)
register_stage("minhash", _minhash)
register_stage("embedding", _embedding)
