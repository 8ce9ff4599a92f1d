"""Generation for multi-label and text-pair tasks, on the same until-N-unique loop
(`engine.run_batches`), answer cache and filters as `generate`.

- **Label sets**: each call asks for texts that carry *all* labels of one label set, drawn
  from the real data's label sets in proportion to how often they occur (the real
  co-occurrence: "anger + annoyance" is asked for as often as it is seen, "grief + joy"
  never), with real texts of that exact set as examples. Outputs go through the full chain
  (truncated, degenerate, copies of real texts, exact and MinHash near-duplicates).
- **Pairs**: each call shows one real first text (a review, a passage) and a class and asks
  for second texts (aspect terms, questions) of that class for it. A pair is new when the
  pair (first, second) is: duplicates and leaks are checked on the joined pair, exactly
  (a second text repeating one of the real pairs of that first text is a leak). MinHash
  is not used on pairs: the shared first text would make every pair of one review a near
  duplicate of the others.

Every answer is read from / written to the AnswerCache of a `CachedBackend` before use, as
in `generate`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from synthmix.cards.card import TaskCard
from synthmix.core.errors import ConfigError
from synthmix.core.text import one_line
from synthmix.data.labeled import LABEL, TEXT, TEXT_PAIR, LabeledData
from synthmix.data.multilabel import LABELS, MultiLabelData
from synthmix.data.pairs import join_pair
from synthmix.generation.engine import (
    Answer,
    Budget,
    Call,
    Meter,
    redact_inputs,
    run_batches,
)
from synthmix.generation.filters import (
    Candidate,
    ExactFilter,
    FilterChain,
    RealCopyFilter,
    TruncatedFilter,
)
from synthmix.generation.generate import DROP_FIELDS, GenerationConfig, build_filters
from synthmix.generation.strategies.base import Prompt
from synthmix.generation.strategies.parsing import parse_list
from synthmix.llm.backend import Backend, CompletionResult

LABEL_SET_STRATEGY = "label-set"
PAIR_STRATEGY = "pair"

SYSTEM_RU = "Ты помогаешь собирать обучающие данные для классификатора текстов."
LABEL_SET_RU = (
    "Задача: {task}. {task_description}\n"
    "Каждый текст может относиться к нескольким классам сразу.\n"
    "Напиши {n} разных новых текстов, каждый из которых относится одновременно ко всем этим "
    "классам: {labels}.\n{definitions}{examples}"
    "Ответь нумерованным списком: по одному тексту в строке, без пояснений."
)
PAIR_RU = (
    "Задача: {task}. {task_description}\n"
    "Вот текст:\n«{first}»\n\n"
    "Напиши {n} разных вариантов второго текста пары ({pair_description}) для этого текста, "
    "у которых класс «{label}» ({definition}).{examples}\n"
    "Ответь нумерованным списком: по одному варианту в строке, без пояснений."
)


@dataclass
class TaskReport:
    """What one generation run cost and kept (the Usage counters of `engine`)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    texts_returned: int = 0
    kept: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    leaks: int = 0
    rejected: int = 0
    truncated: int = 0
    parse_failures: int = 0
    stop: str = ""
    asked: Counter[str] = field(default_factory=Counter)
    # What redacting the real texts quoted in prompts did (counts only), as in `generate`.
    redaction: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "asked"}
        out["asked"] = dict(self.asked.most_common())
        return out


def label_set_distribution(data: MultiLabelData) -> list[tuple[tuple[str, ...], float]]:
    """The label sets of `data` (texts with no label left out) with their shares."""
    counts = Counter(labels for labels in data.label_sets if labels)
    total = sum(counts.values())
    return [(labels, n / total) for labels, n in sorted(counts.items())]


def label_set_prompt(
    card: TaskCard,
    labels: tuple[str, ...],
    examples: list[str],
    n: int,
) -> Prompt:
    classes = {c.name: c for c in card.classes}
    unknown = [label for label in labels if label not in classes]
    if unknown:
        raise ConfigError(f"task card has no class {unknown[0]!r}")
    shown = ", ".join(f"«{classes[label].shown_name}»" for label in labels)
    definitions = "".join(
        f"- «{classes[label].shown_name}»: {one_line(classes[label].description)}\n"
        for label in labels
    )
    quoted = (
        "Примеры настоящих текстов с этими классами:\n"
        + "".join(f"- {one_line(t)}\n" for t in examples)
        if examples
        else ""
    )
    user = LABEL_SET_RU.format(
        task=card.task,
        task_description=card.description,
        n=n,
        labels=shown,
        definitions=definitions,
        examples=quoted,
    )
    return _prompt(user, n)


def pair_prompt(
    card: TaskCard,
    first: str,
    label: str,
    examples: list[str],
    n: int,
    max_chars: int = 2000,
    pair_description: str = "второй текст",
) -> Prompt:
    class_card = card.get(label)
    quoted = f"\nПримеры вторых текстов этого класса: {'; '.join(examples)}." if examples else ""
    user = PAIR_RU.format(
        task=card.task,
        task_description=card.description,
        first=one_line(first)[:max_chars],
        n=n,
        pair_description=pair_description,
        label=class_card.shown_name,
        definition=one_line(class_card.description),
        examples=quoted,
    )
    return _prompt(user, n)


def _prompt(user: str, n: int) -> Prompt:
    messages = [{"role": "system", "content": SYSTEM_RU}, {"role": "user", "content": user}]
    return Prompt(messages, f"{SYSTEM_RU}\n\n{user}\n\n1.", n, answer_prefix="1.")


async def generate_label_sets(
    backend: Backend,
    card: TaskCard,
    real: MultiLabelData,
    total: int,
    config: GenerationConfig | None = None,
) -> tuple[MultiLabelData, TaskReport]:
    """`total` unique texts, each with a label set drawn from the real co-occurrence."""
    config = config or GenerationConfig()
    distribution = label_set_distribution(real)
    if not distribution:
        raise ConfigError(f"{real.source}: no labeled text to draw label sets from")
    sets = [labels for labels, _ in distribution]
    weights = [share for _, share in distribution]
    by_set: dict[tuple[str, ...], list[str]] = {}
    for text, labels in zip(real.texts, real.label_sets, strict=True):
        by_set.setdefault(labels, []).append(text[: config.max_example_chars])
    # Real texts bound for a server off this machine are redacted, as in `generate`.
    redaction = redact_inputs(
        backend, config.redaction, card.language, {"+".join(k): v for k, v in by_set.items()}
    )
    shown = {labels: redaction.groups["+".join(labels)] for labels in by_set}
    chain, _ = build_filters(config, real.texts)
    report = TaskReport(redaction=redaction.report)
    rows: list[dict[str, Any]] = []
    n = config.texts_per_call

    def plan(indices: range) -> list[Call[tuple[int, Prompt, tuple[str, ...]]]]:
        calls = []
        for index in indices:
            rng = random.Random(f"{config.seed}:label-set:{index}")
            labels = rng.choices(sets, weights)[0]
            pool = shown[labels]
            examples = rng.sample(pool, min(config.k, len(pool)))
            prompt = label_set_prompt(card, labels, examples, n)
            report.asked["+".join(labels)] += 1
            request = prompt.request(
                backend.chat, config.temperature, config.max_tokens, config.top_p, index
            )
            calls.append(Call(request, (index, prompt, labels)))
        return calls

    def take(answers: list[Answer[tuple[int, Prompt, tuple[str, ...]]]]) -> None:
        for (index, prompt, labels), result in answers:
            for position, text, cut in _read(prompt, result, backend, report):
                candidate = Candidate(text, "+".join(labels), truncated=cut)
                if _passes(chain, candidate, report) and len(rows) < total:
                    rows.append(
                        _provenance(
                            {TEXT: text, LABELS: labels},
                            backend,
                            LABEL_SET_STRATEGY,
                            config,
                            f"{index}.{position}",
                        )
                    )

    budget = _budget(total, n, config)
    report.stop = await run_batches(backend, budget, lambda: len(rows), plan, take, Meter(), report)
    report.kept = len(rows)
    frame = pd.DataFrame.from_records(rows, columns=[TEXT, LABELS, *_PROVENANCE])
    return MultiLabelData(frame, f"{LABEL_SET_STRATEGY} generation"), report


async def generate_pairs(
    backend: Backend,
    card: TaskCard,
    real: LabeledData,
    per_class: int,
    config: GenerationConfig | None = None,
    pair_description: str = "второй текст",
) -> tuple[LabeledData, TaskReport]:
    """`per_class` unique pairs of each class: a real first text and a generated second
    (`pair_description` says what it is in the prompt: "аспект отзыва", "вопрос")."""
    config = config or GenerationConfig()
    pairs = real.pairs
    if pairs is None:
        raise ConfigError(f"{real.source}: no second texts (set the text pair column)")
    firsts = sorted(set(real.texts))
    seconds_of: dict[str, list[str]] = {}
    for second, label in zip(pairs, real.labels, strict=True):
        seconds_of.setdefault(label, []).append(second)
    real_pairs = [join_pair(t, p) for t, p in zip(real.texts, pairs, strict=True)]
    chain = FilterChain([TruncatedFilter(), RealCopyFilter(real_pairs), ExactFilter()])
    pools = {label: sorted(set(seconds)) for label, seconds in seconds_of.items()}
    redaction = redact_inputs(backend, config.redaction, card.language, {"firsts": firsts, **pools})
    report = TaskReport(redaction=redaction.report)
    rows: list[dict[str, Any]] = []
    n = config.texts_per_call
    classes = [c for c in card.class_names if c in set(real.labels)]

    for label in classes:
        kept = [0]

        def plan(indices: range, label: str = label) -> list[Call[tuple[int, Prompt, str]]]:
            calls = []
            for index in indices:
                rng = random.Random(f"{config.seed}:pair:{label}:{index}")
                at = rng.randrange(len(firsts))
                # The prompt quotes the redacted text; the pair keeps the real one.
                first, quoted = firsts[at], redaction.groups["firsts"][at]
                pool = redaction.groups.get(label, [])
                examples = rng.sample(pool, min(config.k, len(pool)))
                prompt = pair_prompt(
                    card, quoted, label, examples, n, config.max_example_chars, pair_description
                )
                report.asked[label] += 1
                request = prompt.request(
                    backend.chat, config.temperature, config.max_tokens, config.top_p, index
                )
                calls.append(Call(request, (index, prompt, first)))
            return calls

        def take(
            answers: list[Answer[tuple[int, Prompt, str]]],
            label: str = label,
            kept: list[int] = kept,
        ) -> None:
            for (index, prompt, first), result in answers:
                for position, second, cut in _read(prompt, result, backend, report):
                    candidate = Candidate(join_pair(first, second), label, truncated=cut)
                    if _passes(chain, candidate, report) and kept[0] < per_class:
                        kept[0] += 1
                        rows.append(
                            _provenance(
                                {TEXT: first, LABEL: label, TEXT_PAIR: second},
                                backend,
                                PAIR_STRATEGY,
                                config,
                                f"{label}:{index}.{position}",
                            )
                        )

        budget = _budget(per_class, n, config)

        def count(kept: list[int] = kept) -> int:
            return kept[0]

        report.stop = await run_batches(backend, budget, count, plan, take, Meter(), report)
    report.kept = len(rows)
    frame = pd.DataFrame.from_records(rows, columns=[TEXT, LABEL, TEXT_PAIR, *_PROVENANCE])
    return LabeledData(frame, f"{PAIR_STRATEGY} generation"), report


_PROVENANCE = ("generator", "strategy", "temperature", "prompt_hash", "seed", "call_id")


def _read(
    prompt: Prompt, result: CompletionResult, backend: Backend, report: TaskReport
) -> list[tuple[int, str, bool]]:
    """(position, text, cut) of every text of the answers; `cut`: the last text of an
    answer stopped by max_tokens, which ends mid-text."""
    items: list[tuple[int, str, bool]] = []
    for choice, answer in enumerate(result.texts):
        parsed = parse_list(prompt.full_answer(answer, backend.chat), prompt.expected)
        report.parse_failures += int(parsed.failed)
        cut = choice < len(result.finish_reasons) and result.finish_reasons[choice] == "length"
        for position, text in enumerate(parsed.texts):
            report.texts_returned += 1
            last = position == len(parsed.texts) - 1
            items.append((position, text, cut and last))
    return items


def _passes(chain: FilterChain, candidate: Candidate, report: TaskReport) -> bool:
    reason = chain.run(candidate)
    if reason is None:
        return True
    drop = DROP_FIELDS.get(reason, "rejected")
    setattr(report, drop, getattr(report, drop) + 1)
    return False


def _provenance(
    row: dict[str, Any], backend: Backend, strategy: str, config: GenerationConfig, call: str
) -> dict[str, Any]:
    return {
        **row,
        "generator": backend.model,
        "strategy": strategy,
        "temperature": config.temperature,
        "prompt_hash": strategy,
        "seed": config.seed,
        "call_id": f"{strategy}:{config.seed}:{call}",
    }


def _budget(target: int, per_call: int, config: GenerationConfig) -> Budget:
    """The engine's budget for `target` texts: the config's call cap, or 4x the calls `target`
    needs at `per_call` texts a call."""
    return Budget(
        target=target,
        max_calls=config.max_calls_per_class or 4 * -(-target // per_call),
        per_call=per_call,
        concurrency=config.concurrency,
        max_cost=config.max_cost,
    )
