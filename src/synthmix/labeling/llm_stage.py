"""Few-shot classification with an LLM as a labeling stage.

The prompt lists the allowed labels with their card descriptions, then k real examples
per class as "Текст: ... / Метка: ..." pairs and the open text; it works as a plain
completion prompt for base models (the bundled Gemma) and as one user message for chat
models. Confidence comes from the first answer token's log-probabilities where the
backend returns them (one call per text), otherwise from the agreement of `n_samples`
draws at temperature > 0 (each draw has its own `sample_index`, so a CachedBackend keeps
them apart and a rerun pays for none of them).
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthmix.cards.card import TaskCard
from synthmix.core.text import is_russian, one_line
from synthmix.data.labeled import LabeledData
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


def llm_templates(language: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    base = LLM_TEMPLATES_RU if is_russian(language) else LLM_TEMPLATES_EN
    return {**base, **(overrides or {})}


def examples_by_class(
    source: LabeledData | Mapping[str, Sequence[str]] | None, card: TaskCard
) -> dict[str, list[str]]:
    """Real examples per class: the given data where it has the class, else the card's."""
    given: dict[str, list[str]] = {}
    if isinstance(source, LabeledData):
        for text, label in zip(source.texts, source.labels, strict=True):
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
class LLMAnswers:
    """What the stage saw for one text: parsed labels per draw and the raw answers."""

    labels: list[str | None] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    from_logprobs: bool = False


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
    labeled texts cross-validation has the stage score (a seeded sample; seconds each)."""

    def __init__(
        self,
        card: TaskCard,
        backend: Backend,
        examples: LabeledData | Mapping[str, Sequence[str]] | None = None,
        k: int = 2,
        n_samples: int = 5,
        temperature: float = 0.7,
        threshold: float = 0.8,
        max_tokens: int = 8,
        max_concurrency: int = 4,
        seed: int = 0,
        templates: Mapping[str, str] | None = None,
        name: str = "llm",
        logprobs: int | None = 5,
        progress: bool = False,
        max_calibration: int = 200,
        score_tokens: int | None = 1,
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
        self.logprobs = logprobs
        self.progress = progress  # a bar of texts scored: a small local model takes seconds each
        self.name = name
        self.threshold = threshold
        self.card = card
        self.classes = card.class_names
        self.backend = backend
        self.n_samples = n_samples
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_concurrency = max_concurrency
        self.seed = seed
        self.templates = llm_templates(card.language, templates)
        self.aliases = label_aliases(card)
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
        return shots

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
            t["item"].format(text=one_line(s), field=t["field"], label=label)
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
