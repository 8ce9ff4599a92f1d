"""How a persona pool is built: level of detail, language, budget, sampling, dedup."""

from __future__ import annotations

from dataclasses import dataclass, field

from synthmix.core.errors import ConfigError
from synthmix.dedup import DedupConfig
from synthmix.generation.engine import redaction_config
from synthmix.generation.personas.templates import LEVELS, default_relations, persona_templates
from synthmix.llm.redaction import RedactionConfig


def _persona_dedup() -> DedupConfig:
    # Embeddings on by default: "учительница из Казани" and "преподаватель начальной школы
    # в Казани" share few words but are one persona for generation purposes.
    return DedupConfig(embedding=True)


@dataclass
class PersonaConfig:
    """How a pool is built. `text_share` of the target comes from text-to-persona (each
    seed text used at most once), the rest from persona-to-persona. `max_calls=None`
    allows four calls per wanted persona. `max_tokens=None` picks 60 (short) or 150
    (detailed). `chat=None` follows the backend."""

    level: str = "short"
    language: str = "ru"
    relations: list[str] | None = None
    text_share: float = 0.5
    max_calls: int | None = None
    temperature: float = 0.9
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int = 0
    concurrency: int = 4
    max_text_chars: int = 500
    chat: bool | None = None
    templates: dict[str, str] = field(default_factory=dict)
    dedup: DedupConfig = field(default_factory=_persona_dedup)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)

    def __post_init__(self) -> None:
        if isinstance(self.dedup, dict):  # from a report read back
            self.dedup = DedupConfig(**self.dedup)
        self.redaction = redaction_config(self.redaction)
        if self.level not in LEVELS:
            raise ConfigError(
                f"persona level must be one of {', '.join(LEVELS)}, got {self.level!r}"
            )
        if not 0.0 <= self.text_share <= 1.0:
            raise ConfigError(f"text_share must be between 0 and 1, got {self.text_share}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_calls is not None and self.max_calls < 1:
            raise ConfigError(f"max_calls must be >= 1, got {self.max_calls}")
        if self.relations is not None and not [r for r in self.relations if r.strip()]:
            raise ConfigError("relations must name at least one relation")
        persona_templates(self.language, self.templates)

    @property
    def relation_list(self) -> list[str]:
        if self.relations is None:
            return default_relations(self.language)
        return [r.strip() for r in self.relations if r.strip()]

    def token_limit(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return 60 if self.level == "short" else 150

    def call_limit(self, size: int) -> int:
        return self.max_calls if self.max_calls is not None else 4 * size
