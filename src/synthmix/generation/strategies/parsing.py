"""Parsers for what models answer: numbered lists, JSON, plain lines, base-model continuations.

Models wrap lists in preambles, JSON, quotes and markdown, so the parser is lenient and
reports what it could not read instead of failing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from synthmix.core.text import one_line


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


def texts_schema(n: int, min_chars: int = 0) -> dict[str, Any]:
    """The JSON schema of a structured answer: {"texts": [up to n strings]}, each of at least
    `min_chars` characters when set (llama.cpp's grammars enforce it; OpenAI's strict mode
    may refuse the keyword, so it is off by default)."""
    item: dict[str, Any] = {"type": "string"}
    if min_chars > 0:
        item["minLength"] = min_chars
    return {
        "type": "object",
        "properties": {"texts": {"type": "array", "items": item, "minItems": 1, "maxItems": n}},
        "required": ["texts"],
        "additionalProperties": False,
    }


_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"')


def parse_structured(answer: str, expected: int | None = None) -> ParseResult:
    """An answer asked for as `texts_schema` JSON: read as such ("schema"), the complete
    strings of one cut short at max_tokens ("schema-partial"), else by `parse_list` (a
    server that ignored the schema)."""
    text = _FENCE.sub("", answer).strip()
    try:
        value = json.loads(text, strict=False)  # strict=False: raw newlines inside strings
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("texts"), list):
        items = [clean_item(v) for v in value["texts"] if isinstance(v, str)]
        method = "schema"
    elif value is not None:  # JSON of another shape: a list field, if it has one
        found = parse_list(answer, expected)
        return found if found.method == "json" else _unread(answer, "json")
    elif text.startswith("{"):
        # Cut inside the array (max_tokens): keep the strings that were closed.
        opening = re.match(r'\{\s*"texts"\s*:\s*\[', text)
        rest = text[opening.end() :] if opening else ""
        items = [clean_item(json.loads(m.group(0), strict=False)) for m in _ITEM.finditer(rest)]
        method = "schema-partial"
    else:
        return parse_list(answer, expected)
    items = [t for t in items if _is_text(t)]
    if not items:
        return _unread(answer, method)
    note = None
    if expected is not None and len(items) != expected:
        note = f"expected {expected} texts, got {len(items)}"
    return ParseResult(items, method, note=note)


def _unread(answer: str, method: str) -> ParseResult:
    return ParseResult([], method, problem=f"no texts in: {one_line(answer)[:80]!r}")


def parse_completion(answer: str, stop: str = "Класс:") -> ParseResult:
    """A base model's continuation: the text up to the first blank line or class line."""
    text = answer.split(stop, 1)[0]
    text = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0] if text.strip() else ""
    text = clean_item(text)
    if not _is_text(text):
        return ParseResult([], "none", problem="empty continuation")
    return ParseResult([text], "completion")
