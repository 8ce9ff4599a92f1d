"""Generate synthetic texts per class until N unique ones, within a call and cost budget.

The call sequence is deterministic: call i of class c builds its prompt with an rng
seeded from (seed, c, i) and asks the backend for sample index i. Behind a
`CachedBackend`, a rerun after a crash or kill therefore asks for exactly the same
requests in the same order, gets every answer it already has from the cache, and only
pays for the rest; the output rows are the same as those of an uninterrupted run.

Live calls form a sliding window of `concurrency` calls (`engine.run_batches`), shared by the
run's classes: a class starts its first calls while the one before it waits for its last,
and reads answers only after that class is done, so the rows are those of one call at a time.

With `rounds` (batch mode), classes run side by side and their rounds go out together as
one batch per round (see `generation.batching`). Each class makes the calls it makes live
(rounds may be larger: they are sized ahead); a text two classes both write is dropped from
whichever class's round is read second, which live mode decides by class order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from tqdm import tqdm

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError, SynthmixError
from synthmix.core.text import clip
from synthmix.data.labeled import LABEL, TEXT, LabeledData
from synthmix.dedup import DedupConfig, IncrementalDedup, build_stages
from synthmix.generation.batching import BatchRounds
from synthmix.generation.classifier_filter import (
    ClassifierFilter,
    ClassifierFilterConfig,
    ClassifierJudge,
    filter_config,
)
from synthmix.generation.engine import (
    Answer,
    Budget,
    Call,
    Meter,
    Slots,
    ask_once,
    cache_summary,
    fault_delta,
    fault_summary,
    redact_inputs,
    redaction_config,
    run_batches,
)
from synthmix.generation.filters import (
    Candidate,
    DedupFilter,
    DegenerateFilter,
    ExactFilter,
    Filter,
    FilterChain,
    RealCopyFilter,
    TruncatedFilter,
)
from synthmix.generation.strategies import Prompt, PromptStrategy, make_strategy
from synthmix.llm.backend import Backend, CompletionResult, gather_settled
from synthmix.llm.redaction import RedactionConfig

log = logging.getLogger("synthmix")

PROVENANCE = ["generator", "strategy", "temperature", "prompt_hash", "seed", "call_id"]

# The report field each drop reason is counted in; a reason of a filter passed in by the
# caller counts as rejected.
DROP_FIELDS = {
    "truncated": "truncated",
    "degenerate": "rejected",
    "real-copy": "leaks",
    "real-leak": "leaks",
    "exact": "duplicates",
    "near-duplicate": "near_duplicates",
    "classifier": "classifier_dropped",
}


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
    # Real examples are quoted in prompts up to this many characters (a whole document pasted
    # into one cell would otherwise go out in every request).
    max_example_chars: int = 2000
    # Near-duplicate stages on top of the exact check that defines "unique": MinHash
    # against earlier outputs and near-copies of real texts by default; embeddings opt-in.
    dedup: DedupConfig = field(default_factory=DedupConfig)
    # Keep a text only when a classifier trained on the real data (`real` and the card's
    # examples) confirms its label; the last stage of the filter chain.
    classifier_filter: ClassifierFilterConfig | None = None
    # Spare calls (see `engine._pipelined`): a server slot that would sit idle while an
    # earlier answer is still out starts the class's next call anyway. Paid for what it
    # saves in time: about `concurrency` - 1 calls a class past its target at most,
    # answered and cached but not used (`unused_calls`). None: on for server backends, off
    # for in-process models (their calls queue for the same cores). Never with `max_cost`.
    spare_calls: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.dedup, dict):
            self.dedup = DedupConfig(**self.dedup)
        if self.classifier_filter is not None:
            self.classifier_filter = filter_config(self.classifier_filter)
        self.redaction = redaction_config(self.redaction)
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
    all returned up to the call that reached the target (also past the target within it);
    `kept` is what went into the output."""

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
    # How answers were read: "schema" (JSON of the asked schema), "json", "list", "lines",
    # "completion", "none" (nothing readable).
    parse_methods: dict[str, int] = field(default_factory=dict)
    short_answers: int = 0
    rejected: int = 0
    truncated: int = 0
    classifier_dropped: int = 0  # unique texts whose label the classifier filter did not confirm
    # Answers read after the target was reached (spare calls, calls in flight then): paid
    # and cached, their texts not used, so the output does not depend on how many there were.
    unused_calls: int = 0
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
    faults: dict[str, Any] | None = None  # the HTTP backend's retries, by cause
    # Batch mode: the batches (shared by the runs of a plan that went out together), their
    # waiting time and cost at batch prices; None for live calls.
    batch: dict[str, Any] | None = None
    structured: bool = False  # answers asked for as JSON of a schema
    # Drops by reason, as the filter chain counted them (not in the generation report,
    # whose fields these map to).
    filters: dict[str, int] = field(default_factory=dict)
    # The classifier filter's rule and what it dropped per class (None without one).
    classifier_filter: dict[str, Any] | None = None

    def totals(self) -> dict[str, Any]:
        reports = list(self.classes.values())
        keys: tuple[str, ...] = ("calls", "cached_calls", "unused_calls", "texts_returned")
        keys += ("unique", "kept")
        keys += ("duplicates", "near_duplicates", "leaks", "rejected", "truncated")
        if self.config.classifier_filter is not None:
            # Only then: totals of runs without one read as they always did (replay digests).
            keys += ("classifier_dropped",)
        keys += ("parse_failures",)
        keys += ("prompt_tokens", "completion_tokens")
        sums: dict[str, Any] = {k: sum(getattr(r, k) for r in reports) for k in keys}
        sums["cost"] = sum(r.cost for r in reports)
        sums["yield"] = sums["unique"] / sums["texts_returned"] if sums["texts_returned"] else 0
        return sums


def run_summary(run: GenerationResult) -> dict[str, Any]:
    """One run's entry in a generation report."""
    return {
        "generator": run.generator,
        "strategy": run.strategy,
        "temperature": run.config.temperature,
        "prompt_hash": run.prompt_hash,
        "backend": run.backend,
        "cache": run.cache,
        "redaction": run.redaction,
        "faults": run.faults,
        "batch": run.batch,
        "parsing": parsing_summary(run),
        "classifier_filter": run.classifier_filter,
        "totals": run.totals(),
        "classes": {label: report.to_dict() for label, report in run.classes.items()},
    }


def parsing_summary(run: GenerationResult) -> dict[str, Any]:
    """How the run's answers parsed: with or without a schema, failures, methods."""
    methods: dict[str, int] = {}
    for report in run.classes.values():
        for method, n in report.parse_methods.items():
            methods[method] = methods.get(method, 0) + n
    answers = sum(methods.values())
    failures = sum(r.parse_failures for r in run.classes.values())
    return {
        "structured": run.structured,
        "answers": answers,
        "failures": failures,
        "failure_rate": round(failures / answers, 4) if answers else 0.0,
        "methods": dict(sorted(methods.items())),
    }


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
    chain: FilterChain
    meter: Meter = field(default_factory=Meter)
    progress: bool = True
    rounds: BatchRounds | None = None


def _real_by_class(card: TaskCard, real: LabeledData | None) -> dict[str, list[str]]:
    by_class = {c.name: list(c.examples) for c in card.classes}
    if real is not None:
        for text, label in zip(real.texts, real.labels, strict=True):
            if label in by_class:
                by_class[label].append(text)
    return by_class


def build_filters(
    config: GenerationConfig, real_texts: list[str], extra: Sequence[Filter] = ()
) -> tuple[FilterChain, IncrementalDedup]:
    """The chain from the config: truncated, degenerate, exact copies of real texts, exact
    repeats (these two define "unique"), then the near-duplicate stages of `config.dedup`
    (exact off: already done) and `extra` filters. Also the near-duplicate dedup, whose
    statistics go into the report."""
    near_config = DedupConfig(**{**config.dedup.to_dict(), "exact": False})
    near = IncrementalDedup(
        build_stages(near_config, real_texts or None), near_config.across_labels
    )
    filters: list[Filter] = [
        TruncatedFilter(),
        DegenerateFilter(),
        RealCopyFilter(real_texts),
        ExactFilter(),
        DedupFilter(near),
        *extra,
    ]
    return FilterChain(filters), near


async def generate_until_unique(
    backend: Backend,
    strategy: PromptStrategy | str,
    card: TaskCard,
    real: LabeledData | None,
    config: GenerationConfig,
    keywords: dict[str, list[str]] | None = None,
    progress: bool = True,
    filters: Sequence[Filter] = (),
    rounds: BatchRounds | None = None,
) -> GenerationResult:
    """Generate `config.per_class` unique texts for every class of the card.

    Texts are compared after `core.text.normalize` (case, spacing, punctuation): a repeat of
    an earlier output is a duplicate, a copy of a real text (from `real` or the card's
    examples) a leak; neither is kept. `filters` run after the built-in ones. A class
    stops at its target, at `max_calls_per_class` or when the run's `max_cost` is spent.
    `rounds`: calls go out through a Batch API, the classes' rounds together.
    """
    if isinstance(strategy, str):
        strategy = make_strategy(
            strategy, texts_per_call=config.texts_per_call, k=config.k, templates=config.templates
        )
    if backend.chat and strategy.completion:
        # A base model behind a chat endpoint gets the prompt wrapped in its chat template
        # and rambles to max_tokens (no stop sequences in chat mode): seen with llama.cpp.
        log.warning(
            "%s: %s writes prompts for base models but this backend sends "
            "chat messages; for a base model use the completions endpoint (--completions, "
            "or chat: false in a plan)",
            backend.model,
            strategy.name,
        )
    labels = config.classes or card.class_names
    class_cards = [_class_card(card, label) for label in labels]
    original = _real_by_class(card, real)
    if strategy.needs_examples and config.per_class > 0:
        bare = next((c.name for c in class_cards if not original[c.name]), None)
        if bare is not None:
            raise ConfigError(
                f"strategy '{strategy.name}' needs real examples of every class, and class "
                f"{bare!r} has none: add examples to the card or give real data"
            )
    keywords = {c.name: (keywords or {}).get(c.name, c.keywords) for c in card.classes}
    redaction = redact_inputs(backend, config.redaction, card.language, original)
    by_class = {
        label: [clip(text, config.max_example_chars) for text in texts]
        for label, texts in redaction.groups.items()
    }
    if redaction.redactor is not None:
        # A keyword that would need redacting (a name, an e-mail) is dropped rather than
        # sent as "[PERSON]".
        redactor = redaction.redactor
        kept = {c: [k for k in kws if redactor.redact(k) == k] for c, kws in keywords.items()}
        redaction.report["keywords_dropped"] = sum(
            len(keywords[c]) - len(kept[c]) for c in keywords
        )
        keywords = kept
    # A model copying a redacted example back is a leak too.
    real_texts = sorted({t for group in (original, by_class) for ts in group.values() for t in ts})
    judged = _classifier_filter(config, original)
    chain, near = build_filters(config, real_texts, [*filters, *judged])
    faults_before = fault_summary(backend)  # a backend shared by several runs counts them all
    run = _Run(
        backend, strategy, card, config, by_class, keywords, chain, progress=progress, rounds=rounds
    )
    rows: list[dict[str, Any]] = []
    reports: dict[str, ClassReport] = {}
    if rounds is None and config.max_cost is None:
        done = await _overlapping(run, class_cards)
    elif rounds is None:
        # The run's spend is shared by its classes: each class's stop at max_cost must see
        # only the classes before it, so they run one at a time.
        done = [await _generate_class(run, class_card) for class_card in class_cards]
    else:
        # Joined before the first await: every class of every run started together is a
        # participant before any round is sent.
        rounds.join(len(class_cards))
        done = await asyncio.gather(*(_in_rounds(run, rounds, c) for c in class_cards))
    for class_card, (report, class_rows) in zip(class_cards, done, strict=True):
        reports[class_card.name] = report
        rows.extend(class_rows)
    frame = pd.DataFrame.from_records(rows, columns=[TEXT, LABEL, *PROVENANCE])
    frame = frame.astype({"temperature": float, "seed": int})
    return GenerationResult(
        data=LabeledData(frame=frame, source=f"{backend.model} {strategy.name} generation"),
        classes=reports,
        config=config,
        generator=backend.model,
        strategy=strategy.name,
        prompt_hash=strategy.recipe_hash(),
        backend=backend.cache_identity(),
        cache=cache_summary(backend),
        faults=fault_delta(faults_before, fault_summary(backend)),
        redaction=redaction.report,
        dedup=_dedup_summary(config.dedup, near),
        filters=dict(chain.dropped),
        batch=rounds.summary() if rounds is not None else None,
        structured=bool(getattr(strategy, "structured", False)),
        classifier_filter=_filter_summary(config, judged),
    )


async def _overlapping(
    run: _Run, class_cards: list[ClassCard]
) -> list[tuple[ClassReport, list[dict[str, Any]]]]:
    """The classes with `concurrency` calls in flight between them: a class sends its first
    calls while the class before it still waits for its last ones (the server stays busy),
    but reads its answers only once that class is done, so the filters (shared by the
    classes: a text of two classes counts for the first) see the answers in the order of a
    run of one class after the other, and the output is the same."""
    slots = Slots(run.config.concurrency)
    finished = [asyncio.Event() for _ in class_cards]

    async def one(position: int, class_card: ClassCard) -> tuple[ClassReport, list[Any]]:
        async def ready() -> None:
            if position:
                await finished[position - 1].wait()

        try:
            return await _generate_class(run, class_card, slots, ready, position)
        finally:
            finished[position].set()

    return await gather_settled(one(i, c) for i, c in enumerate(class_cards))


async def _in_rounds(
    run: _Run, rounds: BatchRounds, class_card: ClassCard
) -> tuple[ClassReport, list[dict[str, Any]]]:
    try:
        return await _generate_class(run, class_card)
    finally:
        rounds.leave()


def _classifier_filter(
    config: GenerationConfig, real_by_class: dict[str, list[str]]
) -> list[ClassifierFilter]:
    """The classifier filter of `config`, fitted on the real texts the run was given (the
    original ones, not their redacted forms: the judge never leaves this machine)."""
    spec = config.classifier_filter
    if spec is None:
        return []
    assert isinstance(spec, ClassifierFilterConfig)
    spec.check("generation", "classifier_filter", streaming=True)
    rows = [(text, label) for label, texts in real_by_class.items() for text in texts]
    frame = pd.DataFrame(rows, columns=[TEXT, LABEL])
    real = LabeledData(frame, "real texts of the classifier filter")
    if len(real.classes) < 2:
        raise ConfigError(
            "classifier_filter needs real texts of at least two classes (give real data or "
            "card examples)"
        )
    return [ClassifierFilter(ClassifierJudge.fit(spec, real, config.seed))]


def _filter_summary(
    config: GenerationConfig, judged: list[ClassifierFilter]
) -> dict[str, Any] | None:
    if not judged or config.classifier_filter is None:
        return None
    spec = config.classifier_filter
    assert isinstance(spec, ClassifierFilterConfig)
    return {**spec.to_dict(), "rule": spec.rule, **judged[0].counts.to_dict()}


def _class_card(card: TaskCard, label: str) -> ClassCard:
    try:
        return card.get(label)
    except KeyError:
        raise ConfigError(f"class {label!r} is not in the task card") from None


def _dedup_summary(config: DedupConfig, near: IncrementalDedup) -> dict[str, Any]:
    # Counts only: the examples would put real (possibly sensitive) texts into the report.
    return {
        "config": config.to_dict(),
        "removed": dict(near.stats.removed),
        "flagged": dict(near.stats.flagged),
        "contradictions": near.stats.contradictions,
    }


async def _generate_class(
    run: _Run,
    class_card: ClassCard,
    slots: Slots | None = None,
    ready: Callable[[], Awaitable[None]] | None = None,
    position: int = 0,
) -> tuple[ClassReport, list[dict[str, Any]]]:
    """One class's calls until its target. With `slots` (shared by the run's classes, see
    `_overlapping`), its calls wait for a slot and it reads answers only after `ready`."""
    config = run.config
    label = class_card.name
    report = ClassReport(label=label, target=config.per_class)
    started = time.monotonic()
    if config.per_class > 0:
        await _prepare(run, class_card, report, slots, position)
    rows: list[dict[str, Any]] = []
    budget = Budget(
        target=config.per_class,
        max_calls=config.call_limit(run.strategy.texts_per_call),
        per_call=run.strategy.texts_per_call,
        concurrency=config.concurrency,
        max_cost=config.max_cost,
    )

    def plan(indices: range) -> list[Call[tuple[int, Prompt]]]:
        return [_call(run, class_card, i) for i in indices]

    def take(answers: list[Answer[tuple[int, Prompt]]]) -> None:
        for (index, prompt), result in answers:
            if report.kept >= config.per_class:
                report.unused_calls += 1
                continue
            _collect(run, report, rows, class_card, index, prompt, result)

    def postfix() -> dict[str, Any]:
        return {"calls": report.calls, "yield": f"{report.yield_:.2f}", "spent": run.meter.spent}

    desc = f"{run.strategy.name} {label}"
    # Batch mode: classes run side by side, and the batch's own bar shows progress.
    shown = run.progress and run.rounds is None
    # Overlapping classes: a bar per line, as their calls start together.
    place = {"position": position} if slots is not None else {}
    with tqdm(total=config.per_class, desc=desc, disable=not shown, **place) as bar:
        report.stopped_by = await run_batches(
            run.backend,
            budget,
            kept=lambda: report.kept,
            plan=plan,
            take=take,
            meter=run.meter,
            report=report,
            bar=bar,
            postfix=postfix,
            runner=run.rounds,
            slots=slots,
            ready=ready,
            slot_key=position,
            spare=run.rounds is None and _spare_calls(config, run.backend),
        )
    report.wall_s = time.monotonic() - started
    return report, rows


def _spare_calls(config: GenerationConfig, backend: Backend) -> bool:
    if config.spare_calls is not None:
        return config.spare_calls
    return bool(backend.is_remote)


def _call(run: _Run, class_card: ClassCard, index: int) -> Call[tuple[int, Prompt]]:
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
    return Call(request, (index, prompt))


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
        report.parse_methods[parsed.method] = report.parse_methods.get(parsed.method, 0) + 1
        report.short_answers += int(parsed.note is not None)
        # An answer stopped by max_tokens ends mid-text: its last item is a fragment.
        cut = choice < len(result.finish_reasons) and result.finish_reasons[choice] == "length"
        for position, text in enumerate(parsed.texts):
            report.texts_returned += 1
            last = position == len(parsed.texts) - 1
            candidate = Candidate(text, class_card.name, truncated=cut and last)
            reason = run.chain.run(candidate)
            if reason is not None:
                drop = DROP_FIELDS.get(reason, "rejected")
                setattr(report, drop, getattr(report, drop) + 1)
                continue
            report.unique += 1
            if report.kept < run.config.per_class:
                report.kept += 1
                rows.append(_row(run, class_card.name, text, f"{index}.{position}"))


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


async def _prepare(
    run: _Run,
    class_card: ClassCard,
    report: ClassReport,
    slots: Slots | None = None,
    position: int = 0,
) -> None:
    """The strategy's once-per-class step (key points), when it has one; with `slots`, it
    takes one like the class's calls (ahead of them)."""
    prompt = run.strategy.preparation_prompt(
        class_card, run.card, run.real_by_class[class_card.name]
    )
    if prompt is None:
        return
    # sample_index -1: never collides with generation call 0 of a same-looking prompt.
    request = prompt.request(
        chat=run.backend.chat,
        temperature=run.config.temperature,
        max_tokens=run.config.max_tokens,
        sample_index=-1,
    )
    if slots is not None:
        await slots.acquire((position, -1))
    try:
        result = await ask_once(run.backend, request, run.meter, report, run.rounds)
    finally:
        if slots is not None:
            slots.release()
    parsed = run.strategy.accept_preparation(
        class_card.name, prompt.full_answer(result.texts[0], run.backend.chat)
    )
    if parsed.failed:
        raise SynthmixError(
            f"{run.strategy.name}: could not read key points for class "
            f"'{class_card.name}': {parsed.problem}"
        )
