"""The prompt templates of the chat and completion strategies, Russian and English.

Templates are picked by the task card's language; any one of them can be replaced through a
strategy's `templates` dict (keys as in `TEMPLATES_RU`, fields in braces).
"""

from __future__ import annotations

from collections.abc import Mapping

from synthmix.core.errors import ConfigError
from synthmix.core.text import is_russian

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
