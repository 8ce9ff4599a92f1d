"""Task cards: what the classes are, in the words of the annotation guide."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from synthmix.core.config import read_yaml
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LABEL, TEXT, LabeledData

DESCRIPTION_TODO = "TODO: describe this class as the annotation guide does"


@dataclass
class ClassCard:
    name: str
    description: str
    keywords: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    # What prompts call the class: label ids are often English or codes ("no_emotion"),
    # and a base model continuing "Класс: no_emotion" writes worse Russian than
    # "Класс: без эмоций".
    display_name: str | None = None

    @property
    def shown_name(self) -> str:
        return self.display_name or self.name


@dataclass
class TaskCard:
    task: str
    language: str
    classes: list[ClassCard]
    description: str = ""

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, name: str) -> ClassCard:
        for card in self.classes:
            if card.name == name:
                return card
        raise KeyError(name)

    def check_covers(self, data: LabeledData, card_source: str) -> None:
        """Every label in the data needs a class in the card (generation prompts and
        labeling stages are built from it)."""
        missing = sorted(set(data.classes) - set(self.class_names))
        if missing:
            raise ConfigError(
                f"{card_source}: no class for label(s) {', '.join(map(repr, missing))} "
                f"found in {data.source}"
            )

    def to_yaml(self) -> str:
        raw = asdict(self)
        for item in raw["classes"]:
            if item["display_name"] is None:
                del item["display_name"]
        return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=100)


def load_card(path: str | Path) -> TaskCard:
    path = Path(path)
    raw = read_yaml(path)
    return parse_card(raw, str(path))


def parse_card(raw: Any, source: str) -> TaskCard:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'task', 'language' and 'classes'")
    for key in ("task", "language", "classes"):
        if key not in raw:
            raise ConfigError(f"{source}: missing '{key}'")
    _check_keys(raw, TaskCard, source)
    if not isinstance(raw["classes"], list) or not raw["classes"]:
        raise ConfigError(f"{source}: 'classes' must be a non-empty list")
    classes = [_parse_class(item, i, source) for i, item in enumerate(raw["classes"], start=1)]
    names = [c.name for c in classes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: class {duplicates[0]!r} is listed twice")
    return TaskCard(
        task=str(raw["task"]),
        language=str(raw["language"]),
        classes=classes,
        description=str(raw.get("description") or ""),
    )


def _parse_class(item: Any, index: int, source: str) -> ClassCard:
    if not isinstance(item, dict) or "name" not in item:
        raise ConfigError(f"{source}: class {index}: expected a mapping with 'name'")
    name = str(item["name"])
    where = f"{source}: class {index} ({name!r})"
    _check_keys(item, ClassCard, where)
    description = item.get("description")
    if not description or not str(description).strip():
        raise ConfigError(f"{where}: missing 'description'")
    lists = {}
    for key in ("keywords", "examples"):
        value = item.get(key) or []
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list")
        lists[key] = [str(v) for v in value]
    display_name = item.get("display_name")
    return ClassCard(
        name=name,
        description=str(description).strip(),
        display_name=str(display_name).strip() if display_name else None,
        **lists,
    )


def _check_keys(raw: dict[str, Any], cls: type, where: str) -> None:
    """A misspelt key (`exmples:`) would silently drop what it holds: refuse it."""
    allowed = [f.name for f in fields(cls)]
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(allowed)})")


def draft_card(
    data: LabeledData, task: str, language: str = "ru", n_examples: int = 3, seed: int = 0
) -> TaskCard:
    """A starting card from a dataset: class names and a few random real examples; the
    descriptions are left for the user to write from the annotation guide."""
    rng = np.random.default_rng(seed)
    classes = []
    for label, count in data.class_counts().items():
        texts = data.frame.loc[data.frame[LABEL] == label, TEXT].to_numpy()
        picked = rng.choice(len(texts), size=min(n_examples, len(texts)), replace=False)
        classes.append(
            ClassCard(
                name=label,
                description=f"{DESCRIPTION_TODO} ({count} examples in the data)",
                examples=[str(texts[i]) for i in sorted(picked)],
            )
        )
    return TaskCard(task=task, language=language, classes=classes)


def draft_card_yaml(data: LabeledData, task: str, language: str = "ru") -> str:
    card = draft_card(data, task=task, language=language)
    counts = data.class_counts()
    header = [
        f"# Task card drafted from {data.source} ({len(data)} rows, {len(counts)} classes).",
        "# Edit each description to say what the class means, as the annotation guide does;",
        "# add keywords if you have them. Prompts and labeling stages are built from this card.",
        *(f"#   {label}: {n}" for label, n in counts.items()),
    ]
    return "\n".join(header) + "\n" + card.to_yaml()
