"""Prompt strategies for LLM generation, their registry, and parsers for what models answer."""

from __future__ import annotations

from synthmix.generation.strategies.base import (
    ListStrategy,
    Prompt,
    PromptStrategy,
    require_examples,
)
from synthmix.generation.strategies.completion import CompletionFewShotStrategy
from synthmix.generation.strategies.few_shot import (
    FewShotKeywordsStrategy,
    FewShotStrategy,
    ParaphraseStrategy,
)
from synthmix.generation.strategies.key_points import KeyPointsStrategy
from synthmix.generation.strategies.parsing import (
    ParseResult,
    clean_item,
    parse_completion,
    parse_list,
)
from synthmix.generation.strategies.persona import PersonaStrategy
from synthmix.generation.strategies.registry import (
    ENTRY_POINT_GROUP,
    declares,
    make_strategy,
    register_strategy,
    strategy_factory,
    strategy_names,
)
from synthmix.generation.strategies.templates import TEMPLATES_EN, TEMPLATES_RU, templates_for

__all__ = [
    "ENTRY_POINT_GROUP",
    "TEMPLATES_EN",
    "TEMPLATES_RU",
    "CompletionFewShotStrategy",
    "FewShotKeywordsStrategy",
    "FewShotStrategy",
    "KeyPointsStrategy",
    "ListStrategy",
    "ParaphraseStrategy",
    "ParseResult",
    "PersonaStrategy",
    "Prompt",
    "PromptStrategy",
    "clean_item",
    "declares",
    "make_strategy",
    "parse_completion",
    "parse_list",
    "register_strategy",
    "require_examples",
    "strategy_factory",
    "strategy_names",
    "templates_for",
]
