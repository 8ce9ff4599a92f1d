"""Generate synthetic texts per class until N unique ones, within a call and cost budget.

The call sequence is deterministic: call i of class c builds its prompt with an rng
seeded from (seed, c, i) and asks the backend for sample index i. Behind a
`CachedBackend`, a rerun after a crash or kill therefore asks for exactly the same
requests in the same order, gets every answer it already has from the cache, and only
pays for the rest; the output rows are the same as those of an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError, SynthmixError
from synthmix.core.text import normalize
from synthmix.data.labeled import LABEL, TEXT, LabeledData
from synthmix.dedup.stages import DedupConfig, IncrementalDedup, build_stages
from synthmix.generation.strategies import (
    CompletionFewShotStrategy,
    KeyPointsStrategy,
    Prompt,
    PromptStrategy,
    make_strategy,
)
from synthmix.llm.backend import Backend, CompletionResult, gather_settled
from synthmix.llm.redaction import RedactionConfig, Redactor, backend_is_remote, should_redact

log = logging.getLogger("synthmix")

PROVENANCE = ["generator", "strategy", "temperature", "prompt_hash", "seed", "call_id"]


@dataclass
class GenerationConfig:
    """`max_calls_per_class=None` allows four times the calls a perfect yield would need;
    `max_cost` is for the whole run, checked between batches of `concurrency` calls (a
    batch in flight may overshoot it by at most its own cost)."""

    strategy: str = "few-shot"
    per_class: int = 100
    temperature: float = 1.0
    max_calls_per_class: int | None = None
    max_cost: float | None = None
    texts_per_call: int = 5
    seed: int = 0
    k: int = 8
    max_tokens: int | None = 1024
    top_p: float | None = None
    concurrency: int = 8
    classes: list[str] | None = None
    templates: dict[str, str] = field(default_factory=dict)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    # Near-duplicate stages on top of the exact check that defines "unique": MinHash
    # against earlier outputs and near-copies of real texts by default; embeddings opt-in.
    dedup: DedupConfig = field(default_factory=DedupConfig)

    def __post_init__(self) -> None:
        if isinstance(self.dedup, dict):
            self.dedup = DedupConfig(**self.dedup)
        if isinstance(self.redaction, dict):  # from YAML, or a report's config read back
            raw = dict(self.redaction)
            if "entity_types" in raw:
                raw["entity_types"] = tuple(raw["entity_types"])
            self.redaction = RedactionConfig(**raw)
        if self.per_class < 0:
            raise ConfigError(f"per_class must be >= 0, got {self.per_class}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")

    def call_limit(self, texts_per_call: int) -> int:
        if self.max_calls_per_class is not None:
            return self.max_calls_per_class
        return 4 * math.ceil(self.per_class / texts_per_call)


@dataclass
class ClassReport:
    """What generating one class took and gave. `unique` counts new distinct texts among
    all returned (also past the target); `kept` is what went into the output."""

    label: str
    target: int
    calls: int = 0
    cached_calls: int = 0
    texts_returned: int = 0
    unique: int = 0
    kept: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    leaks: int = 0
    parse_failures: int = 0
    short_answers: int = 0
    rejected: int = 0
    truncated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    stopped_by: str = "target"

    @property
    def yield_(self) -> float:
        return self.unique / self.texts_returned if self.texts_returned else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "yield": self.yield_}


@dataclass
class GenerationResult:
    data: LabeledData
    classes: dict[str, ClassReport]
    config: GenerationConfig
    generator: str
    strategy: str
    prompt_hash: str
    backend: dict[str, str]
    cache: dict[str, int] | None = None
    redaction: dict[str, Any] | None = None
    dedup: dict[str, Any] | None = None

    def totals(self) -> dict[str, Any]:
        reports = list(self.classes.values())
        keys: tuple[str, ...] = ("calls", "cached_calls", "texts_returned", "unique", "kept")
        keys += ("duplicates", "near_duplicates", "leaks", "rejected", "truncated")
        keys += ("parse_failures",)
        keys += ("prompt_tokens", "completion_tokens")
        sums: dict[str, Any] = {k: sum(getattr(r, k) for r in reports) for k in keys}
        sums["cost"] = sum(r.cost for r in reports)
        sums["yield"] = sums["unique"] / sums["texts_returned"] if sums["texts_returned"] else 0
        return sums


# ------------------------------------------------------------------------------- run


@dataclass
class _Run:
    """State shared by the classes of one run."""

    backend: Backend
    strategy: PromptStrategy
    card: TaskCard
    config: GenerationConfig
    real_by_class: dict[str, list[str]]
    keywords: dict[str, list[str]]
    leak_keys: set[str]
    near: IncrementalDedup
    seen: set[str] = field(default_factory=set)  # across classes: one text, one label
    spent: float = 0.0
    progress: bool = True

    def over_budget(self) -> bool:
        return self.config.max_cost is not None and self.spent >= self.config.max_cost


def _real_by_class(card: TaskCard, real: LabeledData | None) -> dict[str, list[str]]:
    by_class = {c.name: list(c.examples) for c in card.classes}
    if real is not None:
        for text, label in zip(real.texts, real.labels, strict=True):
            if label in by_class:
                by_class[label].append(text)
    return by_class


async def generate_until_unique(
    backend: Backend,
    strategy: PromptStrategy | str,
    card: TaskCard,
    real: LabeledData | None,
    config: GenerationConfig,
    keywords: dict[str, list[str]] | None = None,
    progress: bool = True,
) -> GenerationResult:
    """Generate `config.per_class` unique texts for every class of the card.

    Texts are compared after `core.text.normalize` (case, spacing, punctuation): a repeat of
    an earlier output is a duplicate, a copy of a real text (from `real` or the card's
    examples) a leak; neither is kept. A class stops at its target, at
    `max_calls_per_class` or when the run's `max_cost` is spent.
    """
    if isinstance(strategy, str):
        strategy = make_strategy(
            strategy, texts_per_call=config.texts_per_call, k=config.k, templates=config.templates
        )
    if backend.chat and isinstance(strategy, CompletionFewShotStrategy):
        # A base model behind a chat endpoint gets the prompt wrapped in its chat template
        # and rambles to max_tokens (no stop sequences in chat mode): seen with llama.cpp.
        log.warning(
            "%s: completion-few-shot writes prompts for base models but this backend sends "
            "chat messages; for a base model use the completions endpoint (--completions, "
            "or chat: false in a plan)",
            backend.model,
        )
    original = _real_by_class(card, real)
    keywords = {c.name: (keywords or {}).get(c.name, c.keywords) for c in card.classes}
    by_class, keywords, redaction = _redact_inputs(backend, card, config, original, keywords)
    # A model copying a redacted example back is a leak too.
    real_texts = sorted({t for group in (original, by_class) for ts in group.values() for t in ts})
    run = _Run(
        backend=backend,
        strategy=strategy,
        card=card,
        config=config,
        real_by_class=by_class,
        keywords=keywords,
        leak_keys={normalize(t) for t in real_texts},
        near=_near_dedup(config.dedup, real_texts),
        progress=progress,
    )
    labels = config.classes or card.class_names
    rows: list[dict[str, Any]] = []
    reports: dict[str, ClassReport] = {}
    for label in labels:
        try:
            class_card = card.get(label)
        except KeyError:
            raise ConfigError(f"class {label!r} is not in the task card") from None
        report, class_rows = await _generate_class(run, class_card)
        reports[label] = report
        rows.extend(class_rows)
    frame = pd.DataFrame.from_records(rows, columns=[TEXT, LABEL, *PROVENANCE])
    frame = frame.astype({"temperature": float, "seed": int})
    stats = getattr(backend, "stats", None)
    cache = None
    if stats is not None and hasattr(stats, "hits"):
        cache = {"hits": stats.hits, "misses": stats.misses, "requests": stats.requests}
    return GenerationResult(
        data=LabeledData(frame=frame, source=f"{backend.model} {strategy.name} generation"),
        classes=reports,
        config=config,
        generator=backend.model,
        strategy=strategy.name,
        prompt_hash=strategy.recipe_hash(),
        backend=backend.cache_identity(),
        cache=cache,
        redaction=redaction,
        dedup=_dedup_summary(config.dedup, run.near),
    )


def _near_dedup(config: DedupConfig, real_texts: list[str]) -> IncrementalDedup:
    """The near-duplicate stages only: exact repeats and exact copies of real texts are
    already caught by the normalised-key check that runs first for every text."""
    near = DedupConfig(**{**config.to_dict(), "exact": False})
    return IncrementalDedup(build_stages(near, real_texts or None), near.across_labels)


def _dedup_summary(config: DedupConfig, near: IncrementalDedup) -> dict[str, Any]:
    # Counts only: the examples would put real (possibly sensitive) texts into the report.
    return {
        "config": config.to_dict(),
        "removed": dict(near.stats.removed),
        "flagged": dict(near.stats.flagged),
        "contradictions": near.stats.contradictions,
    }


def _redact_inputs(
    backend: Backend,
    card: TaskCard,
    config: GenerationConfig,
    by_class: dict[str, list[str]],
    keywords: dict[str, list[str]],
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, Any]]:
    """Real examples (data and card) with personal data replaced by placeholders, when they
    go to a backend off this machine (or redaction is forced on). Each example is redacted
    once, so the counts are values found, not times sent. A keyword that would need
    redacting (a name, an e-mail) is dropped rather than sent as "[PERSON]"."""
    if not should_redact(config.redaction, backend_is_remote(backend)):
        return by_class, keywords, {"applied": False}
    redactor = Redactor(config.redaction, language=card.language)
    redacted = {label: redactor.redact_many(texts) for label, texts in by_class.items()}
    report: dict[str, Any] = {
        "applied": True,
        "texts": redactor.texts,
        "texts_changed": redactor.changed,
        "counts": redactor.summary(),
    }
    kept = {label: [k for k in kws if redactor.redact(k) == k] for label, kws in keywords.items()}
    report["keywords_dropped"] = sum(len(keywords[c]) - len(kept[c]) for c in keywords)
    return redacted, kept, report


async def _generate_class(
    run: _Run, class_card: ClassCard
) -> tuple[ClassReport, list[dict[str, Any]]]:
    config = run.config
    label = class_card.name
    report = ClassReport(label=label, target=config.per_class)
    started = time.monotonic()
    if isinstance(run.strategy, KeyPointsStrategy) and config.per_class > 0:
        await _prepare_key_points(run, class_card, report)
    limit = config.call_limit(run.strategy.texts_per_call)
    rows: list[dict[str, Any]] = []
    bar = tqdm(
        total=config.per_class, desc=f"{run.strategy.name} {label}", disable=not run.progress
    )
    next_index = 0  # generation calls only; the key-points preparation is not one
    while report.kept < config.per_class:
        if next_index >= limit:
            report.stopped_by = "max_calls"
            break
        if run.over_budget():
            report.stopped_by = "max_cost"
            break
        # Ask for what the target still needs at full yield, no more than one batch;
        # the count depends only on earlier answers, so reruns make the same calls.
        needed = math.ceil((config.per_class - report.kept) / run.strategy.texts_per_call)
        batch = min(needed, config.concurrency, limit - next_index)
        indices = list(range(next_index, next_index + batch))
        next_index += batch
        # Every call runs to its end before an error is raised: paid answers reach the cache.
        answers = await gather_settled(_call(run, class_card, i) for i in indices)
        for index, prompt, result in answers:
            before = report.kept
            _account(run, report, result)
            _collect(run, report, rows, class_card, index, prompt, result)
            # Postfix first: update() redraws, and a stale postfix would show there.
            postfix = {"calls": report.calls, "yield": f"{report.yield_:.2f}", "spent": run.spent}
            bar.set_postfix(postfix, refresh=False)
            bar.update(report.kept - before)
    bar.close()
    report.wall_s = time.monotonic() - started
    return report, rows


async def _call(
    run: _Run, class_card: ClassCard, index: int
) -> tuple[int, Prompt, CompletionResult]:
    config = run.config
    rng = random.Random(f"{config.seed}:{class_card.name}:{index}")
    prompt = run.strategy.build(
        class_card, run.card, rng, run.real_by_class[class_card.name], run.keywords[class_card.name]
    )
    request = prompt.request(
        chat=run.backend.chat,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        top_p=config.top_p,
        sample_index=index,
    )
    return index, prompt, await run.backend.complete(request)


def _account(run: _Run, report: ClassReport, result: CompletionResult) -> None:
    report.calls += 1
    report.cached_calls += int(result.cached)
    report.prompt_tokens += result.prompt_tokens
    report.completion_tokens += result.completion_tokens
    # Cached answers count too: the budget caps what the output cost, so a rerun stops
    # where the first run would have stopped.
    report.cost += result.cost
    run.spent += result.cost


def _collect(
    run: _Run,
    report: ClassReport,
    rows: list[dict[str, Any]],
    class_card: ClassCard,
    index: int,
    prompt: Prompt,
    result: CompletionResult,
) -> None:
    for choice, answer in enumerate(result.texts):
        parsed = run.strategy.parse(prompt.full_answer(answer, run.backend.chat))
        report.parse_failures += int(parsed.failed)
        report.short_answers += int(parsed.note is not None)
        # An answer stopped by max_tokens ends mid-text: its last item is a fragment.
        cut = choice < len(result.finish_reasons) and result.finish_reasons[choice] == "length"
        for position, text in enumerate(parsed.texts):
            report.texts_returned += 1
            if cut and position == len(parsed.texts) - 1:
                report.truncated += 1
                continue
            if is_degenerate(text):
                report.rejected += 1
                continue
            key = normalize(text)
            if key in run.leak_keys:
                report.leaks += 1
                continue
            if not key or key in run.seen:
                report.duplicates += 1
                continue
            run.seen.add(key)
            leaks_before = run.near.stats.removed.get("real-leak", 0)
            if not run.near.add(text, class_card.name):
                if run.near.stats.removed.get("real-leak", 0) > leaks_before:
                    report.leaks += 1
                else:
                    report.near_duplicates += 1
                continue
            report.unique += 1
            if report.kept < run.config.per_class:
                report.kept += 1
                rows.append(_row(run, class_card.name, text, f"{index}.{position}"))


_WORDS = re.compile(r"[^\W\d_]{2,}")


def is_degenerate(text: str, min_words: int = 2, max_repeat_share: float = 0.4) -> bool:
    """Cheap guards against what small models emit: bare numbering ("1."), one-word
    fragments, and loops ("не побоищем, не побоищем, ..."). Such texts are counted as
    rejected, never kept, so they cannot pass as unique examples."""
    words = [w.casefold() for w in _WORDS.findall(text)]
    if len(words) < min_words:
        return True
    if len(words) >= 6:
        most = max(words.count(w) for w in set(words))
        if most / len(words) > max_repeat_share:
            return True
    return bool(re.search(r"(.{1,4})\1{5,}", text))


def _row(run: _Run, label: str, text: str, call: str) -> dict[str, Any]:
    return {
        TEXT: text,
        LABEL: label,
        "generator": run.backend.model,
        "strategy": run.strategy.name,
        "temperature": run.config.temperature,
        "prompt_hash": run.strategy.recipe_hash(),
        "seed": run.config.seed,
        "call_id": f"{run.strategy.name}:{label}:{run.config.seed}:{call}",
    }


async def _prepare_key_points(run: _Run, class_card: ClassCard, report: ClassReport) -> None:
    assert isinstance(run.strategy, KeyPointsStrategy)
    prompt = run.strategy.preparation_prompt(
        class_card, run.card, run.real_by_class[class_card.name]
    )
    # sample_index -1: never collides with generation call 0 of a same-looking prompt.
    request = prompt.request(
        chat=run.backend.chat,
        temperature=run.config.temperature,
        max_tokens=run.config.max_tokens,
        sample_index=-1,
    )
    result = await run.backend.complete(request)
    _account(run, report, result)
    parsed = run.strategy.accept_preparation(
        class_card.name, prompt.full_answer(result.texts[0], run.backend.chat)
    )
    if parsed.failed:
        raise SynthmixError(
            f"key-points: could not read key points for class '{class_card.name}': {parsed.problem}"
        )
