"""A generation plan: generators x strategies x temperatures, one synthetic source each, all
written to one file whose provenance columns let an experiment split it back into sources."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from synthmix.cards.card import TaskCard, load_card
from synthmix.cards.keywords import mine_keywords
from synthmix.core.config import build_dataclass, read_yaml
from synthmix.core.errors import ConfigError
from synthmix.core.files import sidecar
from synthmix.data.labeled import LabeledData, load_labeled
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import (
    GenerationConfig,
    GenerationResult,
    generate_until_unique,
    run_summary,
)
from synthmix.generation.personas import load_personas
from synthmix.generation.strategies import declares, make_strategy, strategy_factory
from synthmix.llm.backend import Backend
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
    keywords: str = "card"
    dedup: DedupConfig = field(default_factory=DedupConfig)
    # `enabled: true` redacts real texts even for a loopback URL (an SSH tunnel, a proxy);
    # `false` sends them verbatim; unset: redacted only for backends off this machine.
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    max_example_chars: int = 2000  # real examples are quoted in prompts up to this length
    # Persona pool (JSONL from `synthmix personas`) that the "persona" strategy samples from.
    personas: str | None = None
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
    """Every combination in turn; answers come from the cache where it has them, so a rerun
    after a kill pays only for what was never answered."""
    card = load_card(plan.resolve(plan.card))
    check_examples(plan, card)
    real = None
    if plan.data is not None:
        real = load_labeled(plan.resolve(plan.data), plan.text_column, plan.label_column)
        card.check_covers(real, plan.card)
    keywords = class_keywords(plan, card, real)
    personas = _persona_pool(plan)
    cache = AnswerCache(plan.resolve(plan.cache))
    runs = []
    for spec in plan.generators:
        backend = open_backend(spec, cache)
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
                    dedup=plan.dedup,
                    redaction=plan.redaction,
                    max_example_chars=plan.max_example_chars,
                )
                built = make_strategy(
                    strategy, texts_per_call=plan.texts_per_call, k=plan.k, personas=personas
                )
                runs.append(
                    asyncio.run(
                        generate_until_unique(
                            backend,
                            built,
                            card,
                            real,
                            config,
                            keywords=keywords,
                            progress=progress,
                        )
                    )
                )
    return _write(plan, runs)


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
