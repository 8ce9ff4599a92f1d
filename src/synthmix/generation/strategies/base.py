"""What a prompt strategy is, and the chat-list strategy the built-ins extend.

A strategy turns a class of the task card (plus sampled real examples or keywords) into a
prompt, in two forms: chat messages, and plain text for the completion endpoint. It also
declares what it needs, so that no caller has to know strategies by type or name:
`needs_examples` (real examples of every class), `needs_personas` (a persona pool),
`completion` (its prompts are written for base models) and, through `preparation_prompt`,
a step run once per class before the generation calls (key points).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError
from synthmix.core.text import one_line
from synthmix.generation.strategies.parsing import (
    ParseResult,
    parse_list,
    parse_structured,
    texts_schema,
)
from synthmix.generation.strategies.templates import TEMPLATES_EN, TEMPLATES_RU, templates_for
from synthmix.llm.backend import CompletionRequest


@dataclass(frozen=True)
class Prompt:
    """One call's prompt in both forms. `answer_prefix` is where the completion-style text
    stops inside the answer format (e.g. "1."): it is put back in front of a completion
    answer before parsing, since the model continues after it."""

    messages: list[dict[str, str]]
    text: str
    expected: int
    answer_prefix: str = ""
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None  # structured output: the answer's JSON schema

    def request(
        self,
        chat: bool,
        temperature: float,
        max_tokens: int | None = None,
        top_p: float | None = None,
        sample_index: int = 0,
    ) -> CompletionRequest:
        return CompletionRequest(
            messages=self.messages if chat else None,
            prompt=None if chat else self.text,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=None if chat else self.stop,
            sample_index=sample_index,
            json_schema=self.json_schema,
        )

    def full_answer(self, answer: str, chat: bool) -> str:
        return answer if chat else self.answer_prefix + answer


@runtime_checkable
class PromptStrategy(Protocol):
    """What the engine asks of a strategy. Extending `ListStrategy` gives all of it."""

    name: str
    texts_per_call: int
    needs_examples: ClassVar[bool]
    needs_personas: ClassVar[bool]
    completion: ClassVar[bool]

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt: ...

    def parse(self, answer: str) -> ParseResult: ...

    def preparation_prompt(
        self, class_card: ClassCard, task_card: TaskCard, real_examples: list[str]
    ) -> Prompt | None:
        """The prompt of a call made once per class before any generation call, or None
        when the strategy has no such step; its answer goes to `accept_preparation`."""
        ...

    def accept_preparation(self, class_name: str, answer: str) -> ParseResult: ...

    def recipe_hash(self) -> str:
        """Names the recipe (strategy, templates, settings), not one call's sampled
        examples: it fills the prompt_hash provenance column that sources split by."""
        ...


# The answer format of a structured prompt, in place of the template's numbered list. Not a
# template: built-in templates are part of every recipe hash, and plain recipes keep theirs.
JSON_FORMAT = {
    "ru": 'Ответ — JSON-объект {{"texts": [...]}}: список из {n} текстов, без пояснений.',
    "en": 'Answer with a JSON object {{"texts": [...]}}: a list of {n} texts, no explanations.',
}
JSON_OPENING = {"ru": "Ответ в формате JSON:\n", "en": "Answer as JSON:\n"}


def sample(items: list[str], k: int, rng: random.Random) -> list[str]:
    return rng.sample(items, min(k, len(items)))


def bullets(texts: list[str]) -> str:
    return "\n".join(f"- {one_line(t)}" for t in texts)


def _by_language(texts: dict[str, str], language: str) -> str:
    return texts.get(language, texts["en"])


def require_examples(real_examples: list[str], strategy: str) -> None:
    if not real_examples:
        raise ConfigError(f"strategy '{strategy}' needs real examples of every class")


@dataclass
class ListStrategy:
    """Zero-shot, and the base of the chat strategies: task and class header, a body, the
    list format.

    `language=None` picks the templates by the task card's language at build time;
    `templates` overrides single templates (checked against the known names).
    `structured=True` asks for the texts as JSON (`texts_schema`), which servers with
    structured output enforce; answers are read as JSON first, as a list otherwise."""

    needs_examples: ClassVar[bool] = False
    needs_personas: ClassVar[bool] = False
    completion: ClassVar[bool] = False

    language: str | None = None
    texts_per_call: int = 5
    templates: dict[str, str] = field(default_factory=dict)
    name: str = "zero-shot"
    structured: bool = False
    # Structured only: the shortest text the schema allows (0: no bound). Under a grammar,
    # Gemma-3-270M wrote one-word items without it (benchmarks/bench_structured.py).
    structured_min_chars: int = 0

    def __post_init__(self) -> None:
        templates_for("ru", self.templates)  # fail early on an unknown template name
        self._t = templates_for(self.language or "ru", self.templates)
        self._lang = self.language or "ru"
        if self.texts_per_call < 1:
            raise ConfigError(f"texts_per_call must be >= 1, got {self.texts_per_call}")

    def settings(self) -> dict[str, Any]:
        return {"texts_per_call": self.texts_per_call}

    def _use(self, task_card: TaskCard) -> dict[str, str]:
        # Remembered so parse() (which sees no card) reads answers in the same language.
        self._t = templates_for(self.language or task_card.language, self.templates)
        self._lang = self.language or task_card.language
        return self._t

    def recipe_hash(self) -> str:
        recipe = {
            "name": self.name,
            "language": self.language,
            "overrides": self.templates,
            "builtin": [TEMPLATES_RU, TEMPLATES_EN],  # editing a template changes the hash
            **self.settings(),
        }
        if self.structured:  # only then: plain recipes keep the hashes they had
            recipe["structured"] = True
            recipe["structured_min_chars"] = self.structured_min_chars
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8"))
        return digest.hexdigest()[:12]

    def _fields(self, class_card: ClassCard, task_card: TaskCard) -> dict[str, Any]:
        return {
            "task": task_card.task,
            "task_description": task_card.description,
            "name": class_card.shown_name,
            "class_id": class_card.name,
            "description": one_line(class_card.description),
            "n": self.texts_per_call,
        }

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        return self._t["zero_shot"].format(**fields)

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt:
        fields = self._fields(class_card, task_card)
        t = self._use(task_card)
        body = self.body(fields, rng, real_examples, keywords)
        return self._list_prompt(t, fields, body, self.structured)

    def _list_prompt(
        self, t: dict[str, str], fields: dict[str, Any], body: str, structured: bool = False
    ) -> Prompt:
        user = self._user(t, fields, body, structured)
        if structured:
            system = self._t["system"]
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return self._structured_prompt(messages, f"{system}\n\n{user}", fields["n"])
        return self._prompt(user, fields["n"])

    def _user(
        self, t: dict[str, str], fields: dict[str, Any], body: str, structured: bool = False
    ) -> str:
        """The user message: task and class header, the body, the list format."""
        answer_format = t["list_format"].format(**fields)
        if structured:
            answer_format = _by_language(JSON_FORMAT, self._lang).format(n=fields["n"])
        parts = [t["task"].format(**fields).strip(), t["class"].format(**fields), body]
        return "\n\n".join(p for p in [*parts, answer_format] if p)

    def _prompt(self, user: str, expected: int) -> Prompt:
        system = self._t["system"]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        # Completion form: the same instructions, then the list already begun.
        return Prompt(messages, f"{system}\n\n{user}\n\n1.", expected, answer_prefix="1.")

    def _structured_prompt(self, messages: list[dict[str, str]], document: str, n: int) -> Prompt:
        """A prompt whose answer is `texts_schema` JSON. The completion form ends before
        the JSON: a server enforcing the schema writes it from its first character."""
        opening = _by_language(JSON_OPENING, self._lang)
        schema = texts_schema(n, self.structured_min_chars)
        return Prompt(messages, f"{document}\n\n{opening}", n, json_schema=schema)

    def parse(self, answer: str) -> ParseResult:
        if self.structured:
            return parse_structured(answer, self.texts_per_call)
        return parse_list(answer, self.texts_per_call)

    def preparation_prompt(
        self, class_card: ClassCard, task_card: TaskCard, real_examples: list[str]
    ) -> Prompt | None:
        return None

    def accept_preparation(self, class_name: str, answer: str) -> ParseResult:
        raise NotImplementedError(f"strategy '{self.name}' has no preparation step")
