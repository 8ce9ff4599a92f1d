"""Prompt strategies for LLM generation, and parsers for what models answer.

A strategy turns a class of the task card (plus sampled real examples or keywords) into a
prompt, in two forms: chat messages, and plain text for the completion endpoint. Chat
strategies ask for several texts per call as a numbered list; models wrap such lists in
preambles, JSON, quotes and markdown, so the parser is lenient and reports what it could
not read instead of failing.

Templates are Russian or English by the task card's language; any template can be
replaced through the `templates` dict (keys as in `TEMPLATES_RU`, fields in braces).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError
from synthmix.core.text import is_russian, one_line
from synthmix.llm.backend import CompletionRequest

TEMPLATES_RU: dict[str, str] = {
    "system": (
        "Ты помогаешь собрать обучающие данные для классификатора текстов. "
        "Пиши естественные тексты, как настоящие люди, без пояснений и комментариев."
    ),
    "task": "Задача классификации: {task}. {task_description}",
    "class": "Класс: «{name}» — {description}",
    "list_format": (
        "Ответ — нумерованный список из {n} пунктов, по одному тексту в пункте, "
        "без вступления и пояснений."
    ),
    "zero_shot": (
        "Напиши {n} разных текстов на русском языке, которые относятся к классу «{name}». "
        "Тексты должны различаться темой, длиной и стилем."
    ),
    "few_shot": (
        "Примеры текстов этого класса:\n{examples}\n\n"
        "Напиши {n} новых текстов класса «{name}» в том же стиле. Не повторяй примеры "
        "и не пересказывай их близко к тексту."
    ),
    "keywords": "Используй в текстах некоторые из этих слов: {keywords}.",
    "paraphrase": (
        "Текст класса «{name}»:\n«{example}»\n\n"
        "Перескажи его {n} разными способами: другими словами и построением фраз, "
        "сохранив смысл и принадлежность к классу «{name}»."
    ),
    "key_points_extract": (
        "Примеры текстов этого класса:\n{examples}\n\n"
        "Перечисли {n} характерных для класса «{name}» тем, ситуаций или поводов, "
        "по одному короткому пункту."
    ),
    "key_points_write": (
        "Напиши {n} разных текстов класса «{name}». Каждый текст должен касаться "
        "одного из пунктов:\n{points}"
    ),
    "completion_item": "Класс: {name}\nТекст: {text}",
    "completion_stop": "Класс:",
    "persona": (
        "Автор текстов — {persona}\n"
        "Напиши {n} разных текстов класса «{name}» от лица этого человека: так, как он "
        "сам написал бы их, о своей жизни, своими словами и в своём стиле."
    ),
    "persona_examples": "Примеры текстов класса «{name}» (их писали другие люди):\n{examples}",
    "persona_completion": "Автор: {persona}\n{keywords}Тексты этого автора, класс «{name}»:",
    # Empty: see PersonaStrategy on keywords in the completion form.
    "persona_completion_keywords": "",
}

TEMPLATES_EN: dict[str, str] = {
    "system": (
        "You help build training data for a text classifier. Write natural texts like "
        "real people do, with no explanations or comments."
    ),
    "task": "Classification task: {task}. {task_description}",
    "class": 'Class "{name}": {description}',
    "list_format": (
        "Answer with a numbered list of {n} items, one text per item, with no preamble "
        "or explanations."
    ),
    "zero_shot": (
        'Write {n} different texts that belong to the class "{name}". Vary topic, length and style.'
    ),
    "few_shot": (
        "Examples of this class:\n{examples}\n\n"
        'Write {n} new texts of the class "{name}" in the same style. Do not repeat or '
        "closely retell the examples."
    ),
    "keywords": "Use some of these words in the texts: {keywords}.",
    "paraphrase": (
        'A text of the class "{name}":\n"{example}"\n\n'
        "Rewrite it in {n} different ways, with other words and sentence structure, "
        'keeping its meaning and its class "{name}".'
    ),
    "key_points_extract": (
        "Examples of this class:\n{examples}\n\n"
        'List {n} topics, situations or occasions typical of the class "{name}", one '
        "short item each."
    ),
    "key_points_write": (
        'Write {n} different texts of the class "{name}". Each text should be about one '
        "of these points:\n{points}"
    ),
    "completion_item": "Class: {name}\nText: {text}",
    "completion_stop": "Class:",
    "persona": (
        "The author of the texts: {persona}\n"
        'Write {n} different texts of the class "{name}" as this person: the way they '
        "would write them themselves, about their own life, in their own words and style."
    ),
    "persona_examples": 'Examples of the class "{name}" (written by other people):\n{examples}',
    "persona_completion": 'Author: {persona}\n{keywords}Texts by this author, class "{name}":',
    "persona_completion_keywords": "",
}


def templates_for(language: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    base = TEMPLATES_RU if is_russian(language) else TEMPLATES_EN
    merged = dict(base)
    unknown = sorted(set(overrides or {}) - set(base))
    if unknown:
        raise ConfigError(f"unknown prompt template {unknown[0]!r} (known: {', '.join(base)})")
    merged.update(overrides or {})
    return merged


# ---------------------------------------------------------------------------- prompts


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
        )

    def full_answer(self, answer: str, chat: bool) -> str:
        return answer if chat else self.answer_prefix + answer


@dataclass(frozen=True)
class ParseResult:
    """Texts read from one answer. `problem` says why none could be read; `note` flags a
    readable but odd answer (fewer texts than asked for)."""

    texts: list[str]
    method: str
    problem: str | None = None
    note: str | None = None

    @property
    def failed(self) -> bool:
        return not self.texts


@runtime_checkable
class PromptStrategy(Protocol):
    name: str
    texts_per_call: int

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt: ...

    def parse(self, answer: str) -> ParseResult: ...

    def recipe_hash(self) -> str:
        """Names the recipe (strategy, templates, settings), not one call's sampled
        examples: it fills the prompt_hash provenance column that sources split by."""
        ...


# ----------------------------------------------------------------------- strategies


def _sample(items: list[str], k: int, rng: random.Random) -> list[str]:
    return rng.sample(items, min(k, len(items)))


@dataclass
class ListStrategy:
    """Base of the chat strategies: task and class header, a body, the list format.

    `language=None` picks the templates by the task card's language at build time;
    `templates` overrides single templates (checked against the known names)."""

    language: str | None = None
    texts_per_call: int = 5
    templates: dict[str, str] = field(default_factory=dict)
    name: str = "zero-shot"

    def __post_init__(self) -> None:
        templates_for("ru", self.templates)  # fail early on an unknown template name
        self._t = templates_for(self.language or "ru", self.templates)
        if self.texts_per_call < 1:
            raise ConfigError(f"texts_per_call must be >= 1, got {self.texts_per_call}")

    def settings(self) -> dict[str, Any]:
        return {"texts_per_call": self.texts_per_call}

    def _use(self, task_card: TaskCard) -> dict[str, str]:
        # Remembered so parse() (which sees no card) reads answers in the same language.
        self._t = templates_for(self.language or task_card.language, self.templates)
        return self._t

    def recipe_hash(self) -> str:
        recipe = {
            "name": self.name,
            "language": self.language,
            "overrides": self.templates,
            "builtin": [TEMPLATES_RU, TEMPLATES_EN],  # editing a template changes the hash
            **self.settings(),
        }
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
        parts = [
            t["task"].format(**fields).strip(),
            t["class"].format(**fields),
            self.body(fields, rng, real_examples, keywords),
            t["list_format"].format(**fields),
        ]
        return self._prompt("\n\n".join(p for p in parts if p), self.texts_per_call)

    def _prompt(self, user: str, expected: int) -> Prompt:
        system = self._t["system"]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        # Completion form: the same instructions, then the list already begun.
        return Prompt(messages, f"{system}\n\n{user}\n\n1.", expected, answer_prefix="1.")

    def parse(self, answer: str) -> ParseResult:
        return parse_list(answer, self.texts_per_call)


def _bullets(texts: list[str]) -> str:
    return "\n".join(f"- {one_line(t)}" for t in texts)


def _need_examples(real_examples: list[str], strategy: str) -> None:
    if not real_examples:
        raise ConfigError(f"strategy '{strategy}' needs real examples of every class")


@dataclass
class FewShotStrategy(ListStrategy):
    """k real examples, re-sampled on every call so the model sees varied contexts."""

    k: int = 8
    name: str = "few-shot"

    def settings(self) -> dict[str, Any]:
        return {"texts_per_call": self.texts_per_call, "k": self.k}

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        _need_examples(real_examples, self.name)
        examples = _bullets(_sample(real_examples, self.k, rng))
        return self._t["few_shot"].format(**fields, examples=examples)


@dataclass
class FewShotKeywordsStrategy(FewShotStrategy):
    """Few-shot plus a sampled subset of the class keywords ("fskw"): keywords steer
    topics apart between calls, which raises the share of unique texts."""

    n_keywords: int = 5
    name: str = "fskw"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n_keywords": self.n_keywords}

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        text = super().body(fields, rng, real_examples, keywords)
        if not keywords:
            return text
        chosen = ", ".join(_sample(keywords, self.n_keywords, rng))
        return text + "\n" + self._t["keywords"].format(keywords=chosen)


@dataclass
class ParaphraseStrategy(ListStrategy):
    """Rewrite one sampled real text several ways."""

    name: str = "paraphrase"

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        _need_examples(real_examples, self.name)
        example = one_line(rng.choice(real_examples))
        return self._t["paraphrase"].format(**fields, example=example)


@dataclass
class KeyPointsStrategy(ListStrategy):
    """Two steps: once per class, ask for typical topics ("key points") from real
    examples; then every call writes texts about a sample of those points.

    The caller runs `preparation_prompt` for each class and hands the answer to
    `accept_preparation` before `build`."""

    k: int = 8
    n_points: int = 10
    points_per_call: int = 3
    name: str = "key-points"
    key_points: dict[str, list[str]] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {
            "texts_per_call": self.texts_per_call,
            "k": self.k,
            "n_points": self.n_points,
            "points_per_call": self.points_per_call,
        }

    def preparation_prompt(
        self, class_card: ClassCard, task_card: TaskCard, real_examples: list[str]
    ) -> Prompt:
        _need_examples(real_examples, self.name)
        fields = {**self._fields(class_card, task_card), "n": self.n_points}
        t = self._use(task_card)
        # A fixed sample per class: the key points are computed once and reused.
        rng = random.Random(f"key-points:{class_card.name}")
        examples = _bullets(_sample(real_examples, self.k, rng))
        parts = [
            t["task"].format(**fields).strip(),
            t["class"].format(**fields),
            t["key_points_extract"].format(**fields, examples=examples),
            t["list_format"].format(**fields),
        ]
        return self._prompt("\n\n".join(p for p in parts if p), self.n_points)

    def accept_preparation(self, class_name: str, answer: str) -> ParseResult:
        parsed = parse_list(answer, self.n_points)
        self.key_points[class_name] = parsed.texts
        return parsed

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        points = self.key_points.get(fields["class_id"])
        if not points:
            raise ConfigError(f"key-points: no key points for class '{fields['class_id']}'")
        chosen = _bullets(_sample(points, self.points_per_call, rng))
        return self._t["key_points_write"].format(**fields, points=chosen)


@dataclass
class CompletionFewShotStrategy(ListStrategy):
    """For base (non-chat) models: k "class/text" pairs, then an open one; the model's
    continuation up to the next blank line or class line is one new text."""

    k: int = 8
    name: str = "completion-few-shot"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.texts_per_call = 1  # one text per continuation

    def settings(self) -> dict[str, Any]:
        return {"k": self.k}

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt:
        _need_examples(real_examples, self.name)
        t = self._use(task_card)
        item = t["completion_item"]
        shots = [
            item.format(name=class_card.shown_name, text=one_line(t))
            for t in _sample(real_examples, self.k, rng)
        ]
        opening = item.format(name=class_card.shown_name, text="").rstrip()
        text = "\n\n".join([*shots, opening])
        stop = ["\n\n", t["completion_stop"]]
        return Prompt([{"role": "user", "content": text}], text, 1, stop=stop)

    def parse(self, answer: str) -> ParseResult:
        return parse_completion(answer, self._t["completion_stop"])


@dataclass
class PersonaStrategy(ListStrategy):
    """Persona Hub style: every call samples one persona from the pool (see
    `synthmix.generation.personas`) and asks for texts of the class written as that person, which
    spreads topics and voices across calls. `k` real examples of the class are shown when
    there are any (0: none) and `n_keywords` sampled keywords when the card has some.

    The completion form (base models) is a document to continue: the class line, the
    examples, an "Author:" line and a numbered list begun with "1."; small base models
    ignore instructions but follow such a layout. It leaves the keywords out unless the
    `persona_completion_keywords` template is set (e.g. "Ключевые слова: {keywords}\n"):
    with such a line Gemma-3-270M listed bare words, 198 of 320 items rejected as
    fragments against 40 of 185 without it, in the demo's setting."""

    personas: list[str] = field(default_factory=list)
    k: int = 3
    n_keywords: int = 3
    name: str = "persona"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.personas = [p for p in (one_line(p) for p in self.personas) if p]
        self._need_personas()

    def _need_personas(self) -> None:
        if not self.personas:
            raise ConfigError(
                "strategy 'persona' needs a persona pool: build one with `synthmix personas` "
                "and pass it (--personas, or 'personas' in the generation plan)"
            )

    def settings(self) -> dict[str, Any]:
        pool = hashlib.sha256("\n".join(self.personas).encode("utf-8")).hexdigest()[:12]
        return {
            "texts_per_call": self.texts_per_call,
            "k": self.k,
            "n_keywords": self.n_keywords,
            "personas": pool,
            "n_personas": len(self.personas),
        }

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt:
        self._need_personas()
        fields = self._fields(class_card, task_card)
        t = self._use(task_card)
        # Draw order (persona, examples, keywords) is part of the recipe: a rerun with the
        # same rng seed builds the same prompt, so its answer comes from the cache.
        persona = rng.choice(self.personas)
        examples = ""
        if self.k > 0 and real_examples:
            shots = _bullets(_sample(real_examples, self.k, rng))
            examples = t["persona_examples"].format(**fields, examples=shots)
        chosen = ""
        if self.n_keywords > 0 and keywords:
            chosen = ", ".join(_sample(keywords, self.n_keywords, rng))
        body = t["persona"].format(**fields, persona=persona)
        if chosen:
            body += "\n" + t["keywords"].format(keywords=chosen)
        user_parts = [
            t["task"].format(**fields).strip(),
            t["class"].format(**fields),
            examples,
            body,
            t["list_format"].format(**fields),
        ]
        user = "\n\n".join(p for p in user_parts if p)
        system = t["system"]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        keyword_line = ""
        if chosen and t["persona_completion_keywords"]:
            keyword_line = t["persona_completion_keywords"].format(keywords=chosen)
        author = t["persona_completion"].format(**fields, persona=persona, keywords=keyword_line)
        document = "\n\n".join(p for p in (t["class"].format(**fields), examples, author) if p)
        # No stop after item n: measured with Gemma-3-270M, the items it adds past the
        # asked-for count are unique often enough that stopping there needs more calls.
        return Prompt(messages, document + "\n1.", self.texts_per_call, answer_prefix="1.")


STRATEGIES: dict[str, type[ListStrategy]] = {
    "zero-shot": ListStrategy,
    "few-shot": FewShotStrategy,
    "fskw": FewShotKeywordsStrategy,
    "paraphrase": ParaphraseStrategy,
    "key-points": KeyPointsStrategy,
    "completion-few-shot": CompletionFewShotStrategy,
    "persona": PersonaStrategy,
}


def make_strategy(
    name: str,
    language: str | None = None,
    texts_per_call: int = 5,
    k: int = 8,
    templates: Mapping[str, str] | None = None,
    personas: list[str] | None = None,
) -> ListStrategy:
    """A strategy by its name (see `STRATEGIES`); `personas` feeds the "persona" strategy
    and is ignored by the others, as `k` is by strategies without examples."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown strategy {name!r} (use {', '.join(STRATEGIES)})")
    options: dict[str, Any] = {
        "language": language,
        "texts_per_call": texts_per_call,
        "templates": dict(templates or {}),
    }
    if "k" in {f for f in cls.__dataclass_fields__}:
        options["k"] = k
    if "personas" in cls.__dataclass_fields__:
        options["personas"] = list(personas or [])
    return cls(**options)


# ---------------------------------------------------------------------------- parsing

_FENCE = re.compile(r"^\s*```[\w-]*\s*$", re.MULTILINE)
# "1." "1)" "(1)" "1:" "**1.**", bullets "- " "• " "* " "– ". A number must not run into
# another digit ("3.14 ...") and a bullet needs a space after it.
_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}\s*[.):\]](?!\d)\s*|[-•*–—·▪►]\s+)")
_BOLD = re.compile(r"\*\*|__")
_LABEL = re.compile(r"^(?:текст|пример|вариант|text|example|sample)\s*№?\s*\d*\s*[:.—–-]\s+", re.I)
_TRAILING_NUMBER = re.compile(r"\s*[(\[]\d{1,3}[)\]]$")
_QUOTES = {"«": "»", '"': '"', "“": "”", "„": "“", "'": "'", "‘": "’"}
_PREAMBLE = re.compile(
    r"^(?:вот|конечно|разумеется|хорошо|here are|here is|sure|certainly|ok)\b", re.I
)
_LIST_KEYS = ("texts", "examples", "items", "data", "samples", "тексты", "примеры")


def clean_item(text: str) -> str:
    """One text from a list item: no markdown bold, no "Текст 2:" label, no wrapping
    quotes, no trailing "(3)", whitespace collapsed."""
    text = one_line(_BOLD.sub("", text))
    text = _LABEL.sub("", text)
    text = _TRAILING_NUMBER.sub("", text)
    while len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def parse_list(answer: str, expected: int | None = None) -> ParseResult:
    """Texts from a model's answer: a JSON array or object with a list field, a numbered
    or bulleted list (preamble and closing remarks dropped), or plain lines."""
    text = _FENCE.sub("", answer).strip()
    if not text:
        return ParseResult([], "none", problem="empty answer")
    for method, reader in (("json", _json_items), ("list", _list_items), ("lines", _line_items)):
        items = [t for t in (clean_item(i) for i in reader(text)) if _is_text(t)]
        if items:
            note = None
            if expected is not None and len(items) != expected:
                note = f"expected {expected} texts, got {len(items)}"
            return ParseResult(items, method, note=note)
    return ParseResult([], "none", problem=f"no texts found in: {one_line(answer)[:80]!r}")


def _is_text(item: str) -> bool:
    # An item ending in a colon is a heading ("Примеры:"), not a text.
    return bool(item) and not item.endswith(":") and any(ch.isalnum() for ch in item)


def _json_items(text: str) -> list[str]:
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return []
    start = min(starts)
    end = text.rfind("]" if text[start] == "[" else "}")
    try:
        value = json.loads(text[start : end + 1])
    except ValueError:
        return []
    if isinstance(value, dict):
        value = _list_field(value)
    if not isinstance(value, list):
        return []
    return [s for s in (_json_text(v) for v in value) if s]


def _list_field(value: dict[str, Any]) -> list[Any] | None:
    for key in _LIST_KEYS:
        if isinstance(value.get(key), list):
            return list(value[key])
    return next((list(v) for v in value.values() if isinstance(v, list)), None)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "текст", "content", "example"):
            if isinstance(value.get(key), str):
                return str(value[key])
        return next((v for v in value.values() if isinstance(v, str)), "")
    return ""


def _list_items(text: str) -> list[str]:
    """Marked items; an unmarked line right after an item continues it, anything after a
    blank line that is not a new item (a closing remark) is dropped."""
    items: list[str] = []
    current: list[str] | None = None
    for raw_line in text.splitlines():
        line = _BOLD.sub("", raw_line)  # "**1.** текст" is a marked item too
        marker = _MARKER.match(line)
        if marker and line[marker.end() :].strip():
            current = [line[marker.end() :]]
            items.append("")
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
        if current is not None and items:
            items[-1] = " ".join(current)
    return items


def _line_items(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and (_PREAMBLE.match(lines[0].strip()) or lines[0].rstrip().endswith(":")):
        lines = lines[1:]
    return lines


def parse_completion(answer: str, stop: str = "Класс:") -> ParseResult:
    """A base model's continuation: the text up to the first blank line or class line."""
    text = answer.split(stop, 1)[0]
    text = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0] if text.strip() else ""
    text = clean_item(text)
    if not _is_text(text):
        return ParseResult([], "none", problem="empty continuation")
    return ParseResult([text], "completion")
