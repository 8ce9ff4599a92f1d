"""Strategies by name: the built-ins, those registered at run time, and plugins.

A third-party package adds a strategy through the entry point group `synthmix.strategies`
(`my-strategy = "my_package.module:MyStrategy"`), the way simonw/llm takes plugins; the
built-ins are entries of the same `core.plugins.Registry`, imported when first named, and
`register_strategy` adds one at run time. A factory is a class (or callable) that takes
keyword settings (`language`, `texts_per_call`, `templates`, and `k` and `personas` where
it accepts them) and gives a `PromptStrategy`; its `needs_examples`, `needs_personas` and
`completion` attributes are read before anything is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from synthmix.core.plugins import Registry
from synthmix.generation.strategies.base import PromptStrategy

ENTRY_POINT_GROUP = "synthmix.strategies"
StrategyFactory = Callable[..., PromptStrategy]

_HOME = "synthmix.generation.strategies"
STRATEGIES: Registry[StrategyFactory] = Registry(
    ENTRY_POINT_GROUP,
    "strategy",
    {
        "zero-shot": f"{_HOME}.base:ListStrategy",
        "few-shot": f"{_HOME}.few_shot:FewShotStrategy",
        "fskw": f"{_HOME}.few_shot:FewShotKeywordsStrategy",
        "paraphrase": f"{_HOME}.few_shot:ParaphraseStrategy",
        "key-points": f"{_HOME}.key_points:KeyPointsStrategy",
        "completion-few-shot": f"{_HOME}.completion:CompletionFewShotStrategy",
        "persona": f"{_HOME}.persona:PersonaStrategy",
        "tuned": f"{_HOME}.tuned:TunedStrategy",
    },
)


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make a strategy selectable by name (plans, `--strategy`); a name already taken is
    replaced."""
    STRATEGIES.register(name, factory)


def strategy_names() -> list[str]:
    return STRATEGIES.names()


def strategy_factory(name: str) -> StrategyFactory:
    """The factory registered as `name`; an unknown name is a one-line ConfigError that
    lists the known ones."""
    return STRATEGIES.get(name)


def declares(name: str, need: str) -> bool:
    """Whether strategy `name` declares `need` ("needs_examples", "needs_personas",
    "completion"), read from its factory before any strategy is built."""
    return bool(getattr(strategy_factory(name), need, False))


def make_strategy(
    name: str,
    language: str | None = None,
    texts_per_call: int = 5,
    k: int = 8,
    templates: Mapping[str, str] | None = None,
    personas: list[str] | None = None,
    structured: bool = False,
    structured_min_chars: int = 0,
) -> PromptStrategy:
    """A strategy by its name (see `strategy_names`); `k`, `personas` and `structured`
    (answers as JSON of a schema) go to the strategies that take them and are ignored by
    the others."""
    factory = strategy_factory(name)
    options: dict[str, Any] = {
        "language": language,
        "texts_per_call": texts_per_call,
        "templates": dict(templates or {}),
        "k": k,
        "personas": list(personas or []),
    }
    if structured:  # only when asked: a plugin strategy without the setting still builds
        options["structured"] = True
        if structured_min_chars > 0:
            options["structured_min_chars"] = structured_min_chars
    accepted = _parameters(factory)
    if accepted is not None:
        options = {key: value for key, value in options.items() if key in accepted}
    return factory(**options)


def _parameters(factory: StrategyFactory) -> set[str] | None:
    """The keyword settings `factory` accepts; None when it takes any (**options)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}
