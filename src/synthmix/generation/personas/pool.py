"""Building a persona pool: text-to-persona over the seed texts, then persona-to-persona.

The call sequence is deterministic: text-to-persona call j uses the j-th seed text of a
shuffle seeded by `seed`, and expansion step i picks its parent and relation with an rng
seeded from (seed, i). Behind a `CachedBackend` a rerun makes the same requests in the same
order, gets them all from the cache and rebuilds the same pool. Both steps run in the
generation engine's loop (`engine.run_batches`), and each answer goes through a filter
chain: degenerate answers, then the dedup stages.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

from synthmix.core.errors import ConfigError
from synthmix.core.text import one_line
from synthmix.dedup import IncrementalDedup, build_stages
from synthmix.generation.engine import (
    MAX_CALLS,
    Answer,
    Budget,
    Call,
    Meter,
    cache_summary,
    redact_inputs,
    run_batches,
)
from synthmix.generation.filters import Candidate, DedupFilter, DegenerateFilter, FilterChain
from synthmix.generation.personas.config import PersonaConfig
from synthmix.generation.personas.prompts import (
    parse_persona,
    persona_to_persona_prompt,
    text_to_persona_prompt,
    worked_examples,
)
from synthmix.generation.personas.templates import persona_templates
from synthmix.generation.strategies import Prompt
from synthmix.llm.backend import Backend, CompletionRequest

NO_PERSONAS = "no_personas"


@dataclass(frozen=True)
class Persona:
    """One persona and where it came from: `source` "text" (text-to-persona; the seed text
    itself is not stored, it may be sensitive) or "persona" (expanded from `parent` as its
    `relation`)."""

    persona: str
    source: str
    parent: str | None = None
    relation: str | None = None
    call_id: str = ""
    generator: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PoolReport:
    """What building a pool took and gave. `returned` counts answers read as a persona;
    `rejected` degenerate ones (fragments, loops); `removed` what each dedup stage
    dropped ("real-leak": near-copies of a seed text)."""

    target: int
    calls: int = 0
    cached_calls: int = 0
    text_calls: int = 0
    persona_calls: int = 0
    returned: int = 0
    parse_failures: int = 0
    rejected: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    stopped_by: str = "size"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PersonaPool:
    personas: list[Persona]
    report: PoolReport
    config: PersonaConfig
    generator: str
    backend: dict[str, str]
    cache: dict[str, int] | None = None
    redaction: dict[str, Any] | None = None
    # Drops by reason, as the filter chain counted them ("near-duplicate" sums the dedup
    # stages that `report.removed` lists one by one).
    filters: dict[str, int] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [p.persona for p in self.personas]

    def summary(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "backend": self.backend,
            "config": {**asdict(self.config), "dedup": self.config.dedup.to_dict()},
            "cache": self.cache,
            "redaction": self.redaction,
            **self.report.to_dict(),
        }


# A job: the prompt of one call and the persona it would give (without its text yet).
_Job = tuple[Prompt, Persona]


@dataclass
class _State:
    backend: Backend
    config: PersonaConfig
    report: PoolReport
    dedup: DedupFilter
    chain: FilterChain
    chat: bool
    bar: tqdm[Any]
    meter: Meter = field(default_factory=Meter)
    personas: list[Persona] = field(default_factory=list)


async def build_persona_pool(
    backend: Backend,
    seed_texts: Sequence[str],
    size: int,
    config: PersonaConfig | None = None,
    progress: bool = False,
) -> PersonaPool:
    """A pool of up to `size` distinct personas: text-to-persona on the seed texts, then
    persona-to-persona over the pool until it is full, the call budget is spent
    (`stopped_by` "max_calls") or there is nothing to expand ("no_personas"). `progress`
    shows a bar of personas kept, with calls made."""
    config = config or PersonaConfig()
    if size < 1:
        raise ConfigError(f"persona pool size must be >= 1, got {size}")
    texts = list(dict.fromkeys(t for t in (one_line(s) for s in seed_texts) if t))
    if not texts:
        raise ConfigError("building personas needs at least one non-empty seed text")
    rng = random.Random(f"{config.seed}:texts")
    rng.shuffle(texts)
    limit = config.call_limit(size)
    texts = texts[:limit]  # no more could be sent: each seed text gets one call at most
    redaction = redact_inputs(backend, config.redaction, config.language, {"texts": texts})
    sent = redaction.groups["texts"]
    # A persona that near-copies a seed text (as sent, or as written) carries it along.
    leak_reference = sorted(set(texts) | set(sent)) if config.dedup.leak_check else None
    dedup = DedupFilter(
        IncrementalDedup(build_stages(config.dedup, leak_reference), across_labels=True)
    )
    report = PoolReport(target=size)
    state = _State(
        backend=backend,
        config=config,
        report=report,
        dedup=dedup,
        chain=FilterChain([DegenerateFilter(min_words=3), dedup]),
        chat=backend.chat if config.chat is None else config.chat,
        bar=tqdm(total=size, desc="personas", disable=not progress),
    )
    # The worked examples of the completion templates count as already in the pool: a base
    # model copying one back has not described anybody.
    examples = worked_examples(persona_templates(config.language, config.templates))
    dedup.warm(examples)
    dedup.seed(examples)  # the report counts the model's answers only
    started = time.monotonic()
    text_target = min(size, max(1, math.ceil(size * config.text_share)))
    with state.bar:
        await _grow(state, text_target, limit, _text_jobs(config, sent), len(sent))
        await _grow(state, size, limit, _expansion_jobs(state), None)
    report.kept = len(state.personas)
    report.removed = dict(dedup.removed)
    report.wall_s = time.monotonic() - started
    return PersonaPool(
        personas=state.personas,
        report=report,
        config=config,
        generator=backend.model,
        backend=backend.cache_identity(),
        cache=cache_summary(backend),
        redaction=redaction.report,
        filters=dict(state.chain.dropped),
    )


def _text_jobs(config: PersonaConfig, texts: list[str]) -> Callable[[range], list[_Job]]:
    """Text-to-persona: call j describes the j-th seed text of the shuffled order."""

    def jobs(indices: range) -> list[_Job]:
        return [
            (
                text_to_persona_prompt(texts[j], config),
                Persona("", "text", call_id=f"persona:text:{config.seed}:{j}"),
            )
            for j in indices
        ]

    return jobs


def _expansion_jobs(state: _State) -> Callable[[range], list[_Job]]:
    """Persona-to-persona: step i draws a parent and a relation with an rng seeded from
    (seed, i). Parents are drawn from the pool as it stands before the batch: answers
    arriving within a batch cannot change which calls the batch makes."""
    config = state.config
    relations = config.relation_list

    def jobs(indices: range) -> list[_Job]:
        pool = list(state.personas)
        batch = []
        for i in indices:
            rng = random.Random(f"{config.seed}:persona:{i}")
            parent = rng.choice(pool).persona
            relation = rng.choice(relations)
            origin = Persona(
                "",
                "persona",
                parent=parent,
                relation=relation,
                call_id=f"persona:expand:{config.seed}:{i}",
            )
            batch.append((persona_to_persona_prompt(parent, relation, config), origin))
        return batch

    return jobs


async def _grow(
    state: _State,
    target: int,
    limit: int,
    jobs: Callable[[range], list[_Job]],
    available: int | None,
) -> None:
    """One step of the pool (text-to-persona when `available` seed texts are given, else
    expansion) in the engine's loop, until the pool holds `target` personas."""
    report = state.report
    config = state.config
    budget = Budget(
        target=target,
        max_calls=limit - report.calls,
        concurrency=config.concurrency,
        available=available,
    )

    def plan(indices: range) -> list[Call[Persona]]:
        batch = jobs(indices)
        if available is not None:
            report.text_calls += len(batch)
        else:
            report.persona_calls += len(batch)
        return [
            Call(_request(prompt, state.chat, config, index), origin)
            for index, (prompt, origin) in zip(indices, batch, strict=True)
        ]

    def blocked() -> str | None:
        # Expansion needs a persona to start from.
        return NO_PERSONAS if available is None and not state.personas else None

    reason = await run_batches(
        state.backend,
        budget,
        kept=lambda: len(state.personas),
        plan=plan,
        take=lambda answers: _take(state, answers),
        meter=state.meter,
        report=report,
        blocked=blocked,
        bar=state.bar,
        postfix=lambda: {"calls": report.calls},
    )
    if reason in (MAX_CALLS, NO_PERSONAS):
        report.stopped_by = reason


def _request(prompt: Prompt, chat: bool, config: PersonaConfig, index: int) -> CompletionRequest:
    return prompt.request(
        chat, config.temperature, config.token_limit(), config.top_p, sample_index=index
    )


def _take(state: _State, answers: list[Answer[Persona]]) -> None:
    """Answers in call order; a batch's personas are embedded in one encoder call first."""
    level = state.config.level
    state.dedup.warm([parse_persona(r.texts[0], level) for _, r in answers if r.texts])
    report = state.report
    for origin, result in answers:
        for answer in result.texts[:1]:
            text = parse_persona(answer, level)
            if not text:
                report.parse_failures += 1
                continue
            report.returned += 1
            if len(state.personas) >= report.target:
                continue
            reason = state.chain.run(Candidate(text))
            if reason == "degenerate":
                report.rejected += 1
            if reason is not None:
                continue
            state.personas.append(
                Persona(
                    persona=text,
                    source=origin.source,
                    parent=origin.parent,
                    relation=origin.relation,
                    call_id=origin.call_id,
                    generator=state.backend.model,
                )
            )
