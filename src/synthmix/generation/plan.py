"""A generation plan: generators x strategies x temperatures, one synthetic source each, all
written to one file whose provenance columns let an experiment split it back into sources."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.cards.card import TaskCard, load_card
from synthmix.cards.keywords import mine_keywords
from synthmix.core.config import build_dataclass, read_yaml
from synthmix.core.errors import ConfigError
from synthmix.core.files import sidecar
from synthmix.data.labeled import LabeledData, load_labeled
from synthmix.dedup import DedupConfig
from synthmix.generation.batching import FAILED_POLICIES, BatchRounds
from synthmix.generation.classifier_filter import ClassifierFilterConfig
from synthmix.generation.generate import (
    GenerationConfig,
    GenerationResult,
    generate_until_unique,
    run_summary,
)
from synthmix.generation.personas import load_personas
from synthmix.generation.strategies import declares, make_strategy, strategy_factory
from synthmix.llm.backend import Backend, gather_settled
from synthmix.llm.cache import AnswerCache
from synthmix.llm.redaction import RedactionConfig
from synthmix.llm.spec import BackendSpec

KEYWORD_SOURCES = ("card", "mined")
_NO_POOL = (
    "{source}: strategy '{name}' needs a persona pool: set 'personas' (or pass --personas) "
    "to a file written by `synthmix personas`"
)


# A generator is an LLM backend as every config describes one.
GeneratorSpec = BackendSpec


@dataclass
class GenerationPlan:
    card: str
    data: str | None = None
    out: str = "synthetic.jsonl"
    cache: str = ".synthmix/llm-cache.sqlite"
    generators: list[GeneratorSpec] = field(default_factory=lambda: [GeneratorSpec()])
    strategies: list[str] = field(default_factory=lambda: ["few-shot"])
    temperatures: list[float] = field(default_factory=lambda: [0.7])
    per_class: int = 100
    texts_per_call: int = 5
    k: int = 8
    seed: int = 0
    max_calls_per_class: int | None = None
    max_cost: float | None = None
    max_tokens: int | None = 512
    concurrency: int = 8
    # A server slot left idle while an earlier answer is out starts the next call anyway:
    # about concurrency - 1 unused calls per class at most, for a fuller server (see
    # GenerationConfig). Unset: on for HTTP generators, off for in-process models.
    spare_calls: bool | None = None
    keywords: str = "card"
    dedup: DedupConfig = field(default_factory=DedupConfig)
    # `enabled: true` redacts real texts even for a loopback URL (an SSH tunnel, a proxy);
    # `false` sends them verbatim; unset: redacted only for backends off this machine.
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    max_example_chars: int = 2000  # real examples are quoted in prompts up to this length
    # Keep a text only when a classifier trained on `data` (and the card's examples)
    # confirms its label: {classifier: tfidf_logreg, min_probability: 0.5} or {top_k: 2}.
    # Trained on all of `data`: an experiment's per-cell `filter:` is the leak-free choice.
    classifier_filter: ClassifierFilterConfig | None = None
    # Persona pool (JSONL from `synthmix personas`) that the "persona" strategy samples from.
    personas: str | None = None
    # Answers as JSON of a schema (a list of texts), where the strategy has a list to give.
    structured: bool = False
    structured_min_chars: int = 0  # shortest text the schema allows (llama.cpp enforces it)
    # Batch mode: calls go out through the providers' Batch APIs (openai generators), one
    # batch per round for all classes and runs; failed lines retried "live" or "next-round".
    batch: bool = False
    batch_failed: str = "live"
    batch_poll_s: float = 30.0
    batch_price_factor: float = 0.5  # batch price / live price, for the cost figures
    batch_window: str = "24h"
    text_column: str = "text"
    label_column: str = "label"
    base_dir: Path = field(default_factory=Path.cwd)

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def load_plan(path: str | Path) -> GenerationPlan:
    path = Path(path)
    raw = read_yaml(path)
    plan: GenerationPlan = build_dataclass(GenerationPlan, raw, str(path))
    plan.base_dir = path.resolve().parent
    check_plan(plan, str(path))
    return plan


def check_plan(plan: GenerationPlan, source: str) -> None:
    if plan.keywords not in KEYWORD_SOURCES:
        raise ConfigError(f"{source}: keywords must be one of {', '.join(KEYWORD_SOURCES)}")
    for name, values in (
        ("generators", plan.generators),
        ("strategies", plan.strategies),
        ("temperatures", plan.temperatures),
    ):
        if not values:
            raise ConfigError(f"{source}: '{name}' must list at least one entry")
    if plan.data is None and plan.keywords == "mined":
        raise ConfigError(f"{source}: keywords: mined needs real data: set 'data'")
    for name in plan.strategies:
        try:
            strategy_factory(name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    wants_pool = _needing(plan, "needs_personas")
    if wants_pool and plan.personas is None:
        raise ConfigError(_NO_POOL.format(source=source, name=wants_pool[0]))
    if plan.batch:
        _check_batch(plan, source)
    if plan.classifier_filter is not None:
        plan.classifier_filter.check(source, "classifier_filter", streaming=True)


def _check_batch(plan: GenerationPlan, source: str) -> None:
    if plan.batch_failed not in FAILED_POLICIES:
        raise ConfigError(
            f"{source}: batch_failed must be one of {', '.join(FAILED_POLICIES)}, "
            f"got {plan.batch_failed!r}"
        )
    if plan.batch_poll_s <= 0 or not 0 < plan.batch_price_factor <= 1:
        raise ConfigError(f"{source}: batch_poll_s must be > 0 and batch_price_factor in (0, 1]")
    for number, spec in enumerate(plan.generators, 1):
        if spec.kind.lower() not in ("openai", "openai-http"):
            raise ConfigError(
                f"{source}: batch: true needs openai generators (a server with the Batch API); "
                f"generator {number} is {spec.kind}"
            )


def _needing(plan: GenerationPlan, need: str) -> list[str]:
    """The plan's strategies that declare `need` (see `strategies.declares`)."""
    return [name for name in plan.strategies if declares(name, need)]


def check_examples(plan: GenerationPlan, card: TaskCard) -> None:
    """Without `data`, example-based strategies draw on the card's own examples (the safe
    choice when generated texts must not carry information from held-out real data)."""
    wanted = sorted(set(_needing(plan, "needs_examples")))
    bare = [c.name for c in card.classes if not c.examples]
    if plan.data is None and wanted and bare:
        raise ConfigError(
            f"{plan.card}: strategies {wanted} need examples, and class {bare[0]!r} has none "
            "in the card: add examples or set 'data'"
        )


@dataclass
class PlanResult:
    data: LabeledData
    runs: list[GenerationResult]
    out: Path
    report: Path


def open_backend(spec: BackendSpec, cache: AnswerCache) -> Backend:
    return spec.open(cache)


def class_keywords(
    plan: GenerationPlan, card: TaskCard, real: LabeledData | None
) -> dict[str, list[str]]:
    if plan.keywords == "mined" and real is not None:
        mined = mine_keywords(real, language=card.language, top_k=20)
        return {label: [word for word, _ in pairs] for label, pairs in mined.items()}
    return {c.name: c.keywords for c in card.classes}


def run_plan(plan: GenerationPlan, progress: bool = True) -> PlanResult:
    """Every combination; answers come from the cache where it has them, so a rerun after a
    kill pays only for what was never answered. Generators on different endpoints run
    concurrently, each with its own concurrency limit (see `lane`); the runs of one
    generator run in turn. Each run has its own filters and meter, so its output and report
    are those of the plan run one combination at a time."""
    card = load_card(plan.resolve(plan.card))
    check_examples(plan, card)
    real = None
    if plan.data is not None:
        real = load_labeled(plan.resolve(plan.data), plan.text_column, plan.label_column)
        card.check_covers(real, plan.card)
    keywords = class_keywords(plan, card, real)
    personas = _persona_pool(plan)
    cache = AnswerCache(plan.resolve(plan.cache))
    jobs: list[Callable[[], Coroutine[Any, Any, GenerationResult]]] = []
    lanes: list[str] = []
    shared: list[BatchRounds | None] = []
    for spec in plan.generators:
        backend = open_backend(spec, cache)
        rounds = _rounds(plan, backend, cache, progress) if plan.batch else None
        for strategy in plan.strategies:
            for temperature in plan.temperatures:
                config = GenerationConfig(
                    strategy=strategy,
                    per_class=plan.per_class,
                    temperature=temperature,
                    max_calls_per_class=plan.max_calls_per_class,
                    max_cost=plan.max_cost,
                    texts_per_call=plan.texts_per_call,
                    seed=plan.seed,
                    k=plan.k,
                    max_tokens=plan.max_tokens,
                    concurrency=plan.concurrency,
                    spare_calls=plan.spare_calls,
                    dedup=plan.dedup,
                    redaction=plan.redaction,
                    max_example_chars=plan.max_example_chars,
                    classifier_filter=plan.classifier_filter,
                )
                built = make_strategy(
                    strategy,
                    texts_per_call=plan.texts_per_call,
                    k=plan.k,
                    personas=personas,
                    structured=plan.structured,
                    structured_min_chars=plan.structured_min_chars,
                )
                jobs.append(
                    functools.partial(
                        generate_until_unique,
                        backend,
                        built,
                        card,
                        real,
                        config,
                        keywords=keywords,
                        progress=progress,
                        rounds=rounds,
                    )
                )
                lanes.append(lane(spec))
                shared.append(rounds)
    if plan.batch:
        # All runs at once: their rounds share batches (one wait per round, not per run).
        runs = asyncio.run(_together(jobs))
        for run, rounds in zip(runs, shared, strict=True):
            # The final figures of the batches this run shared with the plan's others.
            run.batch = rounds.summary() if rounds is not None else None
    else:
        runs = asyncio.run(_in_lanes(jobs, lanes))
    return _write(plan, runs)


def lane(spec: GeneratorSpec) -> str:
    """Which runs may overlap: generators behind HTTP endpoints get a lane per endpoint set
    (the servers do the work, each generator keeps its own concurrency limit); in-process
    models (llama-cpp, transformers) share one lane, since they compete for this machine's
    cores and running them side by side would only slow each down."""
    if spec.kind.lower() in ("openai", "openai-http"):
        return json.dumps(sorted(spec.base_urls()))
    return "in-process"


async def _in_lanes(
    jobs: list[Callable[[], Coroutine[Any, Any, GenerationResult]]], lanes: list[str]
) -> list[GenerationResult]:
    """The jobs of each lane in turn, the lanes concurrently; results in job order. A lane
    that fails lets the others finish (their answers are cached) before the error is
    raised."""
    order: dict[str, list[int]] = {}
    for index, name in enumerate(lanes):
        order.setdefault(name, []).append(index)
    results: dict[int, GenerationResult] = {}

    async def run_lane(indices: list[int]) -> None:
        for index in indices:
            results[index] = await jobs[index]()

    await gather_settled(run_lane(indices) for indices in order.values())
    return [results[index] for index in range(len(jobs))]


async def _together(
    jobs: list[Callable[[], Coroutine[Any, Any, GenerationResult]]],
) -> list[GenerationResult]:
    return list(await asyncio.gather(*(job() for job in jobs)))


def _rounds(
    plan: GenerationPlan, backend: Backend, cache: AnswerCache, progress: bool
) -> BatchRounds:
    return BatchRounds.for_backend(
        backend,
        cache,
        failed=plan.batch_failed,
        poll_s=plan.batch_poll_s,
        price_factor=plan.batch_price_factor,
        completion_window=plan.batch_window,
        progress=progress,
    )


def _persona_pool(plan: GenerationPlan) -> list[str] | None:
    """The pool's persona texts, read once per plan; None when no strategy samples them."""
    wants_pool = _needing(plan, "needs_personas")
    if not wants_pool:
        return None
    if plan.personas is None:
        raise ConfigError(_NO_POOL.format(source="generation plan", name=wants_pool[0]))
    return load_personas(plan.resolve(plan.personas))


def _write(plan: GenerationPlan, runs: list[GenerationResult]) -> PlanResult:
    from synthmix.augment.eda import write_source

    frame = pd.concat([run.data.frame for run in runs], ignore_index=True)
    data = LabeledData(frame, "generation plan")
    out = plan.resolve(plan.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial" + out.suffix)
    write_source(data, partial)
    partial.replace(out)
    report = sidecar(out)
    summary = {
        "plan": {
            **{k: v for k, v in asdict(plan).items() if k != "base_dir"},
            "dedup": plan.dedup.to_dict(),
        },
        "runs": [run_summary(run) for run in runs],
    }
    report.write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return PlanResult(data=data, runs=runs, out=out, report=report)
