"""Persona prompts (text-to-persona, persona-to-persona) and reading a persona from an answer."""

from __future__ import annotations

import re

from synthmix.core.text import clip
from synthmix.generation.personas.config import PersonaConfig
from synthmix.generation.personas.templates import persona_templates
from synthmix.generation.strategies import Prompt, clean_item


def text_to_persona_prompt(text: str, config: PersonaConfig) -> Prompt:
    """Who might write or read `text`, at `config.level` of detail."""
    t = persona_templates(config.language, config.templates)
    seed = clip(text, config.max_text_chars)
    user = t["text_to_persona"].format(text=seed, detail=t[f"detail_{config.level}"])
    completion = t[f"completion_text_to_persona_{config.level}"].format(text=seed)
    return _prompt(t, user, completion)


def persona_to_persona_prompt(persona: str, relation: str, config: PersonaConfig) -> Prompt:
    """Someone close to `persona`: their `relation` (a colleague, a neighbour, ...)."""
    t = persona_templates(config.language, config.templates)
    detail = t[f"detail_{config.level}"]
    user = t["persona_to_persona"].format(persona=persona, relation=relation, detail=detail)
    completion = t[f"completion_persona_to_persona_{config.level}"].format(
        persona=persona, relation=relation
    )
    return _prompt(t, user, completion)


def _prompt(t: dict[str, str], user: str, completion: str) -> Prompt:
    messages = [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]
    # The worked examples put one persona per line, so a base model's answer ends there.
    return Prompt(messages, completion, 1, stop=["\n"])


_EXAMPLE_LINE = re.compile(r"^[^:{}\n]{1,60}:\s*(?P<value>[^{}\n]+)$", re.MULTILINE)


def worked_examples(templates: dict[str, str]) -> list[str]:
    """The filled-in "Label: value" lines of the completion templates (their personas and
    texts), in order and without repeats."""
    found = (
        m.group("value").strip()
        for key, template in templates.items()
        if key.startswith("completion_")
        for m in _EXAMPLE_LINE.finditer(template)
    )
    return list(dict.fromkeys(v for v in found if v))


# A label the model repeats in front of its answer ("Автор:", "Описание человека:").
_ANSWER_LABEL = re.compile(
    r"^(?:автор|персона|человек|описание|ответ|author|persona|person|description|answer)"
    r"[^:\n]{0,40}:\s*",
    re.IGNORECASE,
)
_LIST_MARK = re.compile(r"^\s*(?:\d{1,2}\s*[.)]\s*|[-•*–—]\s+)")
_MAX_CHARS = {"short": 240, "detailed": 600}


def parse_persona(answer: str, level: str = "short") -> str:
    """The persona in an answer: its first paragraph (first line for "short"), without a
    repeated label, list marker or quotes, clipped at a word. Empty when nothing is left."""
    lines = [line.strip() for line in answer.strip().splitlines()]
    # A chat model's preamble ("Вот описание:") is a line ending in a colon.
    while lines and (not lines[0] or (lines[0].endswith(":") and len(lines) > 1)):
        lines = lines[1:]
    paragraph: list[str] = []
    for line in lines:
        if not line:
            break
        paragraph.append(line)
        if level == "short":
            break
    # Twice: markdown bold hides the marker and label, and the label hides the quotes.
    text = clean_item(" ".join(paragraph))
    text = clean_item(_ANSWER_LABEL.sub("", _LIST_MARK.sub("", text)))
    if text.endswith(":"):  # a heading with nothing under it, not a person
        return ""
    return clip(text, _MAX_CHARS.get(level, 240)) if text else ""
