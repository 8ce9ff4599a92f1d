"""cascade.yaml: the stages of a labeling cascade, in order.

    fallback: last            # or none: texts no stage decided stay unlabelled
    stages:
      - type: keywords        # keywords | embedding | nli | llm
        threshold: 0.6
        params: {prior: 1.0}
      - type: embedding
        threshold: 0.6
        params: {encoder: use-multilingual, temperature: 0.05, max_examples: 200}
      - type: llm
        threshold: 0.8
        params: {backend: llama-cpp, backend_params: {n_ctx: 2048}, k: 1, n_samples: 5,
                 logprobs: 5, cache: .synthmix/llm-cache.sqlite}

Every stage takes an optional `name` (default: its type). LLM answers always go
through an answer cache (`cache`, default .synthmix/llm-cache.sqlite).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmix.cards.card import TaskCard
from synthmix.core.config import read_yaml
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.labeling.cascade import Cascade
from synthmix.labeling.stages import EmbeddingStage, KeywordStage, LabelingStage, NLIStage

STAGE_TYPES = ("keywords", "embedding", "nli", "llm")
DEFAULT_CACHE = ".synthmix/llm-cache.sqlite"


@dataclass
class StageConfig:
    type: str
    threshold: float
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass
class CascadeConfig:
    stages: list[StageConfig]
    fallback: str = "last"


def default_config() -> CascadeConfig:
    """Offline: keywords, then embedding similarity, then the bundled Gemma few-shot.
    Thresholds are starting points; calibrate them on gold labels."""
    return CascadeConfig(
        stages=[
            StageConfig("keywords", 0.6),
            StageConfig("embedding", 0.6, {"temperature": 0.05}),
            StageConfig("llm", 0.8, {"backend": "llama-cpp", "k": 1, "n_samples": 5}),
        ]
    )


def parse_config(raw: Any, source: str) -> CascadeConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("stages"), list) or not raw["stages"]:
        raise ConfigError(f"{source}: expected a mapping with a non-empty 'stages' list")
    fallback = str(raw.get("fallback", "last"))
    if fallback not in ("last", "none"):
        raise ConfigError(f"{source}: fallback must be 'last' or 'none', got {fallback!r}")
    return CascadeConfig(
        [_stage(item, i, source) for i, item in enumerate(raw["stages"], 1)], fallback
    )


def _stage(item: Any, index: int, source: str) -> StageConfig:
    where = f"{source}: stage {index}"
    if not isinstance(item, dict) or item.get("type") not in STAGE_TYPES:
        raise ConfigError(f"{where}: 'type' must be one of {', '.join(STAGE_TYPES)}")
    try:
        threshold = float(item.get("threshold", 0.5))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: threshold must be a number") from None
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a mapping")
    unknown = sorted(set(item) - {"type", "threshold", "params", "name"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    name = item.get("name")
    return StageConfig(
        str(item["type"]), threshold, dict(params), None if name is None else str(name)
    )


def load_config(path: str | Path) -> CascadeConfig:
    path = Path(path)
    raw = read_yaml(path)
    return parse_config(raw, str(path))


# ---------------------------------------------------------------------------- building

Examples = LabeledData | Mapping[str, Sequence[str]] | None


def _keywords(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    params = dict(cfg.params)
    mined = params.pop("mined", None)
    if params.pop("mine_from_examples", False) and isinstance(examples, LabeledData):
        from synthmix.cards.keywords import mine_keywords

        mined = mine_keywords(examples, card.language, top_k=int(params.pop("top_k", 20)))
    return KeywordStage(card, mined=mined, threshold=cfg.threshold, name=name, **params)


def _embedding(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    from synthmix.embeddings.encoder import build_encoder
    from synthmix.labeling.llm_stage import examples_by_class

    params = dict(cfg.params)
    encoder = build_encoder(
        str(params.pop("encoder", "use-multilingual")), params.pop("cache", None), progress
    )
    given = examples_by_class(examples, card) if examples is not None else None
    return EmbeddingStage(
        card, encoder, threshold=cfg.threshold, name=name, examples=given, **params
    )


def _nli(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    return NLIStage(card, threshold=cfg.threshold, name=name, **cfg.params)


def _llm(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    from synthmix.labeling.llm_stage import LLMStage
    from synthmix.llm.cache import AnswerCache, CachedBackend
    from synthmix.llm.factory import build_backend

    params = dict(cfg.params)
    backend = build_backend(
        str(params.pop("backend", "llama-cpp")), **params.pop("backend_params", {})
    )
    cached = CachedBackend(backend, AnswerCache(params.pop("cache", DEFAULT_CACHE)))
    return LLMStage(
        card,
        cached,
        examples=examples,
        threshold=cfg.threshold,
        name=name,
        progress=progress,
        **params,
    )


BUILDERS: dict[str, Callable[[TaskCard, StageConfig, str, Examples, bool], LabelingStage]] = {
    "keywords": _keywords,
    "embedding": _embedding,
    "nli": _nli,
    "llm": _llm,
}


def build_cascade(
    config: CascadeConfig, card: TaskCard, examples: Examples = None, progress: bool = False
) -> Cascade:
    """Stages from a config; `examples` (real labeled texts) feed the LLM's few-shot
    prompt and the embedding prototypes (card examples where absent). A misspelt
    parameter or a bad value is a ConfigError naming the stage. `progress`: bars while the
    slow stages (embedding, LLM) work."""
    stages = []
    for cfg in config.stages:
        name = cfg.name or cfg.type
        try:
            stages.append(BUILDERS[cfg.type](card, cfg, name, examples, progress))
        except (TypeError, ValueError) as exc:  # a misspelt parameter or a bad value
            raise ConfigError(f"cascade stage {name!r}: {exc}") from None
    return Cascade(stages, fallback="none" if config.fallback == "none" else "last")
