"""Few-shot classification with an LLM as a labeling stage.

The prompt lists the allowed labels with their card descriptions, then k real examples
per class as "Текст: ... / Метка: ..." pairs and the open text; it works as a plain
completion prompt for base models (the bundled Gemma) and as one user message for chat
models. Confidence comes from the first answer token's log-probabilities where the
backend returns them (one call per text), otherwise from the agreement of `n_samples`
draws at temperature > 0 (each draw has its own `sample_index`, so a CachedBackend keeps
them apart and a rerun pays for none of them).

Multi-label (`multi_label=True`): the prompt asks for a JSON list of labels from the card
(`["joy", "surprise"]`, `[]` for none), the shots show their texts' real label sets, and a
label's confidence is the share of draws that list it (a first token's probabilities say
nothing about a whole list). Names an answer gives that the card does not know are
ignored and counted (`problems()` says how many, and which).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthmix.cards.card import TaskCard
from synthmix.core.text import is_russian, one_line
from synthmix.data.labeled import LabeledData
from synthmix.data.multilabel import MultiLabelData
from synthmix.labeling.stages import verbalize
from synthmix.llm.backend import (
    Backend,
    CompletionRequest,
    CompletionResult,
    gather_settled,
    gather_with_progress,
)

LLM_TEMPLATES_RU: dict[str, str] = {
    "system": (
        "Ты аккуратный разметчик текстов. Отвечай только одной меткой из списка, без пояснений."
    ),
    "header": (
        "Задача: {task}. {task_description}\nМетки:\n{classes}\n"
        "Ответ — одна метка из списка: {labels}."
    ),
    "class": "- {name}: {description}",
    "item": "Текст: {text}\n{field}: {label}",
    "field": "Метка",
}
LLM_TEMPLATES_EN: dict[str, str] = {
    "system": "You are a careful text annotator. Answer with one label from the list only.",
    "header": (
        "Task: {task}. {task_description}\nLabels:\n{classes}\n"
        "Answer with one label from: {labels}."
    ),
    "class": "- {name}: {description}",
    "item": "Text: {text}\n{field}: {label}",
    "field": "Label",
}


LLM_SET_TEMPLATES_RU: dict[str, str] = {
    **LLM_TEMPLATES_RU,
    "system": (
        "Ты аккуратный разметчик текстов. Отвечай только JSON-списком меток из списка, "
        "без пояснений."
    ),
    "header": (
        "Задача: {task}. {task_description}\nМетки:\n{classes}\n"
        "У текста может быть несколько меток. Ответ — JSON-список всех подходящих меток "
        "из списка ([] — если ни одна не подходит): {labels}."
    ),
    "field": "Метки",
}
LLM_SET_TEMPLATES_EN: dict[str, str] = {
    **LLM_TEMPLATES_EN,
    "system": "You are a careful text annotator. Answer with a JSON list of labels only.",
    "header": (
        "Task: {task}. {task_description}\nLabels:\n{classes}\n"
        "A text may carry several labels. Answer with a JSON list of every label that fits, "
        "from: {labels} ([] if none does)."
    ),
    "field": "Labels",
}


def llm_templates(
    language: str, overrides: Mapping[str, str] | None = None, multi_label: bool = False
) -> dict[str, str]:
    if multi_label:
        base = LLM_SET_TEMPLATES_RU if is_russian(language) else LLM_SET_TEMPLATES_EN
    else:
        base = LLM_TEMPLATES_RU if is_russian(language) else LLM_TEMPLATES_EN
    return {**base, **(overrides or {})}


Examples = LabeledData | MultiLabelData | Mapping[str, Sequence[str]] | None


def examples_by_class(source: Examples, card: TaskCard) -> dict[str, list[str]]:
    """Real examples per class: the given data where it has the class, else the card's
    (a multi-label text counts for every label it carries)."""
    given: dict[str, list[str]] = {}
    if isinstance(source, LabeledData):
        for text, label in zip(source.texts, source.labels, strict=True):
            given.setdefault(label, []).append(text)
    elif isinstance(source, MultiLabelData):
        for text, labels in zip(source.texts, source.label_sets, strict=True):
            for label in labels:
                given.setdefault(label, []).append(text)
    elif source is not None:
        given = {k: list(v) for k, v in source.items()}
    return {c.name: given.get(c.name) or list(c.examples) for c in card.classes}


def label_aliases(card: TaskCard) -> dict[str, str]:
    """Lower-cased words an answer may use for a class: its name (with spaces for "_")
    and the head of its description ("гнев" for anger), as small models often answer
    in the prompt's language."""
    aliases: dict[str, str] = {}
    for c in card.classes:
        for alias in (c.name, c.name.replace("_", " "), verbalize(c.description, c.name)):
            aliases.setdefault(alias.lower(), c.name)
    return aliases


_STRIP = " \t\"'«»“”„.,;:!?*`()[]"


def parse_label(answer: str, aliases: Mapping[str, str]) -> str | None:
    """The class an answer names: its first line if that is a label or alias, else the
    alias that occurs first in the answer; None when it names none."""
    lines = [line.strip(_STRIP).lower() for line in answer.strip().splitlines()]
    first = next((line for line in lines if line), "")
    if first in aliases:
        return aliases[first]
    lowered = answer.lower()
    found = [
        (m.start(), -len(alias), name)
        for alias, name in aliases.items()
        for m in [re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", lowered)]
        if m is not None
    ]
    return min(found)[2] if found else None


_JSON_LIST = re.compile(r"\[[^\[\]]*\]", re.S)


@dataclass
class ParsedSet:
    """A multi-label answer read: the card's labels it names (sorted; None when the answer
    holds no JSON list of strings) and the names it gives that are no label of the card."""

    labels: tuple[str, ...] | None
    rejected: list[str] = field(default_factory=list)


def parse_label_set(answer: str, aliases: Mapping[str, str]) -> ParsedSet:
    """The first JSON list in an answer, each item matched to a class by name or alias
    (case-insensitive); items that match none are rejected, not guessed at."""
    for match in _JSON_LIST.finditer(answer):
        try:
            items = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not all(isinstance(item, str) for item in items):
            continue
        labels, rejected = set(), []
        for item in items:
            name = aliases.get(item.strip(_STRIP).lower())
            if name is None:
                rejected.append(item.strip())
            else:
                labels.add(name)
        return ParsedSet(tuple(sorted(labels)), rejected)
    return ParsedSet(None)


def answer_position(positions: Sequence[Mapping[str, float]], answer: str) -> int | None:
    """Index of the first generated position whose sampled token is not blank (space,
    quote, punctuation), found by matching each position's alternatives against the
    answer text; None when the answer has no such token. Positions whose sampled token
    is not among the alternatives end the walk there (best effort)."""
    offset = 0
    for index, top in enumerate(positions):
        piece = max((t for t in top if t and answer.startswith(t, offset)), key=len, default=None)
        if piece is None:
            return index if answer[offset:].strip(_STRIP) else None
        if piece.strip(_STRIP):
            return index
        offset += len(piece)
    return None


def logprob_distribution(
    positions: Sequence[Mapping[str, float]] | None,
    answer: str,
    classes: Sequence[str],
    aliases: Mapping[str, str],
) -> np.ndarray | None:
    """Class probabilities from the first answer token (see `answer_position`): each
    alternative token's probability goes to the classes whose label or alias starts with
    it (shared equally). Not renormalised: probability spent on tokens that start no label
    lowers every class, which is what a confidence should do. None without logprobs; all
    zeros when the answer has no token to read."""
    if positions is None:
        return None
    result = np.zeros(len(classes))
    position = answer_position(positions, answer)
    if position is None:
        return result
    index = {c: i for i, c in enumerate(classes)}
    for token, logprob in positions[position].items():
        piece = token.strip(_STRIP).lower()
        if not piece:
            continue
        matches = sorted({name for alias, name in aliases.items() if alias.startswith(piece)})
        for name in matches:
            result[index[name]] += math.exp(logprob) / len(matches)
    return np.minimum(result, 1.0)


@dataclass
class SetParsing:
    """Counts over multi-label answers: read, without a JSON list, naming unknown labels."""

    answers: int = 0
    unparsed: int = 0
    rejecting: int = 0  # answers naming one or more labels the card does not have
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, parsed: ParsedSet) -> None:
        self.answers += 1
        self.unparsed += parsed.labels is None
        if parsed.rejected:
            self.rejecting += 1
            self.rejected.update(parsed.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "without_json_list": self.unparsed,
            "naming_unknown_labels": self.rejecting,
            "unknown_labels": dict(self.rejected.most_common()),
        }

    def lines(self, name: str) -> list[str]:
        lines = []
        if self.rejecting:
            named = ", ".join(f"{label!r} x{n}" for label, n in self.rejected.most_common(5))
            more = len(self.rejected) - 5
            lines.append(
                f"{name}: {self.rejecting} of {self.answers} answers named labels that are "
                f"not in the card, ignored: {named}"
                + (f" (and {more} more names)" if more > 0 else "")
            )
        if self.unparsed:
            lines.append(
                f"{name}: {self.unparsed} of {self.answers} answers held no JSON list of "
                "labels (counted as naming none)"
            )
        return lines


@dataclass
class LLMAnswers:
    """What the stage saw for one text: parsed labels per draw and the raw answers."""

    labels: list[str | None] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    from_logprobs: bool = False
    sets: list[tuple[str, ...] | None] = field(default_factory=list)  # multi-label draws


class LLMStage:
    """Few-shot LLM classification (see module docstring). Wrap the backend in a
    `CachedBackend` so nothing is paid twice; `temperature` applies to the agreement
    draws (with `n_samples=1` the single answer is taken at temperature 0 and its
    confidence is 1, which says nothing: keep n_samples >= 3 without logprobs).

    `logprobs` is how many alternatives per token to ask for (5: the most OpenAI's
    completions endpoint gives); None never asks, for servers that reject the parameter.
    Where a server ignores it, the stage falls back to the agreement draws.

    `score_tokens`: with logprobs, the call generates only this many tokens (1: the label
    is read from one forward pass over the prompt, the first answer token's distribution
    over the candidate labels; None: up to `max_tokens`). `max_calibration`: how many
    labeled texts cross-validation has the stage score (a seeded sample; seconds each).

    `multi_label`: answers are JSON lists of labels (see the module docstring); logprobs
    are not asked for, and `max_tokens` defaults to 64 (a list of a few labels) instead
    of 8."""

    def __init__(
        self,
        card: TaskCard,
        backend: Backend,
        examples: Examples = None,
        k: int = 2,
        n_samples: int = 5,
        temperature: float = 0.7,
        threshold: float = 0.8,
        max_tokens: int | None = None,
        max_concurrency: int = 4,
        seed: int = 0,
        templates: Mapping[str, str] | None = None,
        name: str = "llm",
        logprobs: int | None = 5,
        progress: bool = False,
        max_calibration: int = 200,
        score_tokens: int | None = 1,
        multi_label: bool = False,
    ) -> None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if logprobs is not None and logprobs < 1:
            raise ValueError(f"logprobs must be >= 1 or None, got {logprobs}")
        if score_tokens is not None and score_tokens < 1:
            raise ValueError(f"score_tokens must be >= 1 or None, got {score_tokens}")
        # With logprobs the label is read from the first answer token's distribution over
        # the candidates: one forward pass, no need to generate the rest of the answer.
        self.score_tokens = score_tokens
        self._no_logprobs = False  # the backend ignored `logprobs`: full answers from now on
        self.multi_label = multi_label
        # A list's labels cannot be read off its first token: agreement draws only.
        self.logprobs = None if multi_label else logprobs
        self.progress = progress  # a bar of texts scored: a small local model takes seconds each
        self.name = name
        self.threshold = threshold
        self.card = card
        self.classes = card.class_names
        self.backend = backend
        self.n_samples = n_samples
        self.temperature = temperature
        self.max_tokens = max_tokens if max_tokens is not None else (64 if multi_label else 8)
        self.max_concurrency = max_concurrency
        self.seed = seed
        self.templates = llm_templates(card.language, templates, multi_label)
        self.aliases = label_aliases(card)
        # Multi-label shots show their text's real label set.
        self._sets: dict[str, tuple[str, ...]] = (
            dict(zip(examples.texts, examples.label_sets, strict=True))
            if isinstance(examples, MultiLabelData)
            else {}
        )
        # Shared with the copies `without` makes, so cross-validation's answers count too.
        self.parsing = SetParsing()
        # Cross-validation scores a sample of this many labeled texts: seconds a text.
        self.max_calibration = max_calibration
        self._pool = examples_by_class(examples, card)
        self._k = k
        self.shots = self._pick_shots(self._pool, k, seed)
        self.last_answers: dict[str, LLMAnswers] = {}

    def without(self, texts: AbstractSet[str]) -> LLMStage:
        """Itself where no shot is among `texts`, else a copy with shots picked from the
        other examples (a class left with none gets no shot)."""
        if not any(shot in texts for shot, _ in self.shots):
            return self
        other = copy.copy(self)
        other._pool = {c: [t for t in pool if t not in texts] for c, pool in self._pool.items()}
        other.shots = other._pick_shots(other._pool, self._k, self.seed)
        other.last_answers = {}
        return other

    def _pick_shots(self, pool: dict[str, list[str]], k: int, seed: int) -> list[tuple[str, str]]:
        """k examples per class, interleaved by class so the last shot (which small
        models copy most) is not always the same class; fixed for the stage's life, so
        every text sees the same prefix."""
        rng = random.Random(seed)
        picked = {name: rng.sample(texts, min(k, len(texts))) for name, texts in pool.items()}
        shots = []
        for round_ in range(k):
            order = list(self.classes)
            rng.shuffle(order)
            shots += [(picked[c][round_], c) for c in order if round_ < len(picked[c])]
        if self.multi_label:  # a text carrying two labels may be picked for both
            first = {text: i for i, (text, _) in reversed(list(enumerate(shots)))}
            shots = [shot for i, shot in enumerate(shots) if first[shot[0]] == i]
        return shots

    def shot_answer(self, text: str, label: str) -> str:
        """What a shot's answer line shows: its label, or (multi-label) its label set."""
        if not self.multi_label:
            return label
        return json.dumps(list(self._sets.get(text, (label,))), ensure_ascii=False)

    def prompt(self, text: str) -> str:
        t = self.templates
        classes = "\n".join(
            t["class"].format(name=c.name, description=c.description) for c in self.card.classes
        )
        header = t["header"].format(
            task=self.card.task,
            task_description=self.card.description,
            classes=classes,
            labels=", ".join(self.classes),
        )
        items = [
            t["item"].format(text=one_line(s), field=t["field"], label=self.shot_answer(s, label))
            for s, label in self.shots
        ]
        opening = t["item"].format(text=one_line(text), field=t["field"], label="").rstrip()
        return "\n\n".join([header, *items, opening])

    def request(self, text: str, sample_index: int, scoring: bool = False) -> CompletionRequest:
        """The call for draw `sample_index`; `scoring`: the logprob call, cut to
        `score_tokens`."""
        prompt = self.prompt(text)
        temperature = 0.0 if self.n_samples == 1 else self.temperature
        max_tokens = self.max_tokens
        if scoring and self.score_tokens is not None:
            max_tokens = min(max_tokens, self.score_tokens)
        common: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            # A seed per draw: a server that honours `seed` would otherwise answer every
            # draw alike and the agreement would always be 1.
            "seed": self.seed + sample_index,
            "sample_index": sample_index,
            "logprobs": self.logprobs,
        }
        if self.backend.chat:
            messages = [
                {"role": "system", "content": self.templates["system"]},
                {"role": "user", "content": prompt},
            ]
            return CompletionRequest(messages=messages, **common)
        return CompletionRequest(prompt=prompt, stop=["\n"], **common)

    async def _ask(
        self, text: str, index: int, gate: asyncio.Semaphore, scoring: bool = False
    ) -> CompletionResult:
        async with gate:
            return await self.backend.complete(self.request(text, index, scoring))

    async def _score_one(self, text: str, gate: asyncio.Semaphore) -> np.ndarray:
        scoring = self.logprobs is not None and not self._no_logprobs
        first = await self._ask(text, 0, gate, scoring)
        if scoring and not first.logprobs:
            # No logprobs came back: the agreement draws need whole answers.
            self._no_logprobs = True
            if self.request(text, 0, True).max_tokens != self.max_tokens:
                first = await self._ask(text, 0, gate)
        if self.multi_label:
            return await self._score_set(text, first, gate)
        seen = LLMAnswers(
            labels=[parse_label(first.texts[0], self.aliases)], answers=first.texts[:1]
        )
        self.last_answers[text] = seen
        positions = first.logprobs[0] if first.logprobs else None
        from_logprobs = logprob_distribution(positions, first.texts[0], self.classes, self.aliases)
        if from_logprobs is not None:
            seen.from_logprobs = True
            return from_logprobs
        rest = await gather_settled(self._ask(text, i, gate) for i in range(1, self.n_samples))
        for result in rest:
            seen.answers.append(result.texts[0])
            seen.labels.append(parse_label(result.texts[0], self.aliases))
        return self._votes(seen.labels)

    async def _score_set(
        self, text: str, first: CompletionResult, gate: asyncio.Semaphore
    ) -> np.ndarray:
        """Multi-label: every draw's list; a label's confidence is the share of draws
        listing it (an unparseable draw lists none)."""
        rest = await gather_settled(self._ask(text, i, gate) for i in range(1, self.n_samples))
        seen = LLMAnswers()
        counts = np.zeros(len(self.classes))
        for result in [first, *rest]:
            answer = result.texts[0]
            parsed = self._read_set(answer)
            seen.answers.append(answer)
            seen.sets.append(parsed)
            for label in parsed or ():
                counts[self.classes.index(label)] += 1
        self.last_answers[text] = seen
        return counts / max(1, len(seen.sets))

    def _read_set(self, answer: str) -> tuple[str, ...] | None:
        parsed = parse_label_set(answer, self.aliases)
        self.parsing.add(parsed)
        return parsed.labels

    def problems(self) -> list[str]:
        """Multi-label: one line each for answers that named labels not in the card and
        answers with no JSON list, with counts (empty when there were none)."""
        return self.parsing.lines(self.name)

    def _votes(self, labels: list[str | None]) -> np.ndarray:
        """Share of draws per class; unparseable draws count for no class."""
        counts = np.zeros(len(self.classes))
        for label in labels:
            if label is not None:
                counts[self.classes.index(label)] += 1
        return counts / max(1, len(labels))

    async def ascore(self, texts: Sequence[str]) -> np.ndarray:
        gate = asyncio.Semaphore(self.max_concurrency)
        calls = [self._score_one(t, gate) for t in texts]
        rows = await gather_with_progress(calls, self.name, self.progress)
        return np.vstack(rows) if rows else np.zeros((0, len(self.classes)))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return asyncio.run(self.ascore(texts))
