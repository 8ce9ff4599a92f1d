"""cascade.yaml: the stages of a labeling cascade, in order.

    fallback: none            # or last: texts no stage decided get its best guess
    stages:
      - type: keywords        # keywords | embedding | nli | llm
        params: {prior: 1.0}
      - type: embedding
        params: {encoder: use-multilingual, temperature: 0.05, max_examples: 200}
      - type: llm
        threshold: 0.8        # fixed by you: kept as is, reported uncalibrated
        params: {backend: {kind: llama-cpp, options: {n_ctx: 2048}}, k: 1, n_samples: 5,
                 logprobs: 5, cache: .synthmix/llm-cache.sqlite}

A stage without `threshold` is calibrated on labeled examples to the target precision
(until then it decides nothing); one with a `threshold` keeps it. Every stage takes an
optional `name` (default: its type). LLM answers always go through an answer cache
(`cache`, default .synthmix/llm-cache.sqlite). With `fallback: none` (the default) texts
no stage decided go to the review file instead of getting a guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthmix.cards.card import TaskCard
from synthmix.core.config import build_dataclass, check_params, read_yaml
from synthmix.core.errors import ConfigError
from synthmix.core.plugins import Registry
from synthmix.data.labeled import LabeledData
from synthmix.data.multilabel import MultiLabelData
from synthmix.labeling.cascade import Cascade
from synthmix.labeling.llm_stage import LLMStage
from synthmix.labeling.stages import EmbeddingStage, KeywordStage, LabelingStage, NLIStage
from synthmix.llm.spec import BackendSpec

DEFAULT_CACHE = ".synthmix/llm-cache.sqlite"


@dataclass
class StageConfig:
    type: str
    threshold: float | None = None  # None: calibrated on labeled examples
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass
class CascadeConfig:
    stages: list[StageConfig]
    fallback: Literal["last", "none"] = "none"


def default_config() -> CascadeConfig:
    """Offline: keywords, then embedding similarity, then the bundled Gemma few-shot;
    every threshold calibrated on the labeled examples there are."""
    return CascadeConfig(
        stages=[
            StageConfig("keywords"),
            StageConfig("embedding", params={"temperature": 0.05}),
            StageConfig("llm", params={"backend": "llama-cpp", "k": 1, "n_samples": 5}),
        ]
    )


def parse_config(raw: Any, source: str) -> CascadeConfig:
    """A cascade config validated whole: keys, stage types (built-in or registered) and each
    stage's params against what that stage takes, so a typo fails before any model loads."""
    if isinstance(raw, dict) and raw.get("stages") == []:
        raise ConfigError(f"{source}: 'stages' must list at least one stage")
    if isinstance(raw, dict) and isinstance(raw.get("stages"), list):
        # `params: ` left empty in YAML reads as None: the same as no params.
        raw = {**raw, "stages": [_no_empty_params(item) for item in raw["stages"]]}
    config: CascadeConfig = build_dataclass(CascadeConfig, raw, source)
    for index, stage in enumerate(config.stages, 1):
        where = f"{source}: stage {index} ({stage.name or stage.type})"
        try:
            kind = STAGE_KINDS.get(stage.type)
        except ConfigError as exc:
            raise ConfigError(f"{source}: stage {index}: 'type': {exc}") from None
        # A stage's own params (the llm's `backend`, the embedding's `encoder`) share names
        # with constructor arguments the cascade fills from them: not reserved there.
        reserved = {k: v for k, v in _SET_BY_CASCADE.items() if k not in kind.own_params}
        check_params(kind.stage, stage.params, where, reserved, kind.own_params)
    return config


def _no_empty_params(item: Any) -> Any:
    return {**item, "params": {}} if isinstance(item, dict) and item.get("params") is None else item


def load_config(path: str | Path) -> CascadeConfig:
    path = Path(path)
    raw = read_yaml(path)
    return parse_config(raw, str(path))


# ---------------------------------------------------------------------------- building

Examples = LabeledData | MultiLabelData | Mapping[str, Sequence[str]] | None


def _keywords(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    params = dict(cfg.params)
    mined = params.pop("mined", None)
    if mined is not None and not isinstance(mined, Mapping):
        raise ValueError(
            "'mined' must map each class to its keywords (or set mine_from_examples: true)"
        )
    mine = params.pop("mine_from_examples", False)
    top_k = int(params.pop("top_k", 20))
    stage = KeywordStage(card, mined=mined, threshold=_threshold(cfg), name=name, **params)
    if mine and isinstance(examples, MultiLabelData):
        # Mined per label: a text counts for each label it carries, as in the counts.
        stage.mine_from(_one_row_per_label(examples), top_k)
    elif mine and isinstance(examples, LabeledData):
        stage.mine_from(examples, top_k)
    return stage


def _one_row_per_label(data: MultiLabelData) -> LabeledData:
    import pandas as pd

    rows = [
        (t, label)
        for t, labels in zip(data.texts, data.label_sets, strict=True)
        for label in labels
    ]
    return LabeledData(pd.DataFrame(rows, columns=["text", "label"]), data.source)


def _threshold(cfg: StageConfig) -> float:
    # inf until calibrated: a stage never decides on a threshold nobody chose.
    return math.inf if cfg.threshold is None else cfg.threshold


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
        card, encoder, threshold=_threshold(cfg), name=name, examples=given, **params
    )


def _nli(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    return NLIStage(card, threshold=_threshold(cfg), name=name, **cfg.params)


def _llm(
    card: TaskCard, cfg: StageConfig, name: str, examples: Examples, progress: bool
) -> LabelingStage:
    from synthmix.llm.cache import AnswerCache

    params = dict(cfg.params)
    spec = _backend_spec(params.pop("backend", "llama-cpp"), params.pop("backend_params", {}))
    cached = spec.open(AnswerCache(params.pop("cache", DEFAULT_CACHE)))
    return LLMStage(
        card,
        cached,
        examples=examples,
        threshold=_threshold(cfg),
        name=name,
        progress=progress,
        **params,
    )


def _backend_spec(backend: Any, legacy_params: dict[str, Any]) -> BackendSpec:
    """`backend:` as a spec mapping (kind, model, base_url, ...) or a kind name with
    `backend_params` (the older shape)."""
    if isinstance(backend, dict):
        spec: BackendSpec = build_dataclass(BackendSpec, backend, "cascade", "backend")
        return spec
    return BackendSpec.from_legacy(str(backend), dict(legacy_params))


@dataclass(frozen=True)
class StageKind:
    """How a cascade stage type is built: `build` makes the stage from its config; `stage` is
    the class whose constructor its params are checked against; `own_params` are the params
    `build` consumes itself (a backend, a cache path) before calling that constructor."""

    build: Callable[[TaskCard, StageConfig, str, Examples, bool], LabelingStage]
    stage: Callable[..., LabelingStage]
    own_params: tuple[str, ...] = ()


# A third-party package adds a stage type through the entry point group
# `synthmix.labeling_stages` (a `StageKind`), or `STAGE_KINDS.register` at run time.
STAGE_KINDS: Registry[StageKind] = Registry(
    "synthmix.labeling_stages",
    "stage type",
    {
        "keywords": StageKind(_keywords, KeywordStage, ("mined", "mine_from_examples", "top_k")),
        "embedding": StageKind(_embedding, EmbeddingStage, ("encoder", "cache")),
        "nli": StageKind(_nli, NLIStage),
        "llm": StageKind(_llm, LLMStage, ("backend", "backend_params", "cache")),
    },
)
# Constructor arguments the cascade fills itself.
_SET_BY_CASCADE = {
    "card": "the task card",
    "threshold": "the stage's 'threshold' key, not a param",
    "name": "the stage's 'name' key, not a param",
    "encoder": "built from 'encoder' and 'cache'",
    "backend": "built from 'backend' (a backend spec)",
    "examples": "the command's --examples",
    "progress": "set by the command",
    "multi_label": "set by the command (--multi-label)",
}


def build_cascade(
    config: CascadeConfig,
    card: TaskCard,
    examples: Examples = None,
    progress: bool = False,
    multi_label: bool = False,
) -> Cascade:
    """Stages from a config; `examples` (real labeled texts) feed the LLM's few-shot
    prompt and the embedding prototypes (card examples where absent). A misspelt
    parameter or a bad value is a ConfigError naming the stage. `progress`: bars while the
    slow stages (embedding, LLM) work. `multi_label`: every stage is built to score labels
    independently (its `multi_label` parameter) and the cascade is a `MultiLabelCascade`."""
    stages = []
    for cfg in config.stages:
        name = cfg.name or cfg.type
        if multi_label:
            cfg = StageConfig(cfg.type, cfg.threshold, {**cfg.params, "multi_label": True}, name)
        try:
            stages.append(STAGE_KINDS.get(cfg.type).build(card, cfg, name, examples, progress))
        except (TypeError, ValueError) as exc:  # a misspelt parameter or a bad value
            if multi_label and "multi_label" in str(exc):
                raise ConfigError(
                    f"cascade stage {name!r}: type {cfg.type!r} has no multi-label mode"
                ) from None
            raise ConfigError(f"cascade stage {name!r}: {exc}") from None
    fixed = [s.name for s, c in zip(stages, config.stages, strict=True) if c.threshold is not None]
    fallback: Literal["last", "none"] = "none" if config.fallback == "none" else "last"
    if multi_label:
        from synthmix.labeling.multilabel import MultiLabelCascade

        return MultiLabelCascade(stages, fallback=fallback, fixed=fixed)
    return Cascade(stages, fallback=fallback, fixed=fixed)
