"""Strategies by name: the built-ins, those registered at runtime, and plugins.

A third-party package adds a strategy through the entry point group `synthmix.strategies`
(`my-strategy = "my_package.module:MyStrategy"`), the way simonw/llm takes plugins; the
built-ins go through the same `register_strategy`. A factory is a class (or callable) that
takes keyword settings (`language`, `texts_per_call`, `templates`, and `k` and `personas`
where it accepts them) and gives a `PromptStrategy`; its `needs_examples`,
`needs_personas` and `completion` attributes are read before anything is built.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.generation.strategies.base import ListStrategy, PromptStrategy
from synthmix.generation.strategies.completion import CompletionFewShotStrategy
from synthmix.generation.strategies.few_shot import (
    FewShotKeywordsStrategy,
    FewShotStrategy,
    ParaphraseStrategy,
)
from synthmix.generation.strategies.key_points import KeyPointsStrategy
from synthmix.generation.strategies.persona import PersonaStrategy

log = logging.getLogger("synthmix")

ENTRY_POINT_GROUP = "synthmix.strategies"
StrategyFactory = Callable[..., PromptStrategy]

_REGISTRY: dict[str, StrategyFactory] = {}
_plugins_loaded = False


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make a strategy selectable by name (plans, `--strategy`); a name already taken is
    replaced."""
    _REGISTRY[name] = factory


for _name, _factory in (
    ("zero-shot", ListStrategy),
    ("few-shot", FewShotStrategy),
    ("fskw", FewShotKeywordsStrategy),
    ("paraphrase", ParaphraseStrategy),
    ("key-points", KeyPointsStrategy),
    ("completion-few-shot", CompletionFewShotStrategy),
    ("persona", PersonaStrategy),
):
    register_strategy(_name, _factory)


def _load_plugins() -> None:
    """Entry points are read once, on the first lookup, so importing synthmix stays cheap;
    a registration made in code wins over a plugin of the same name."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in _REGISTRY:
            continue
        try:
            _REGISTRY[point.name] = point.load()
        except Exception as exc:  # a broken plugin must not take the built-ins down
            log.warning("strategy plugin %r could not be loaded: %s", point.name, exc)


def strategy_names() -> list[str]:
    _load_plugins()
    return list(_REGISTRY)


def strategy_factory(name: str) -> StrategyFactory:
    """The factory registered as `name`; an unknown name is a one-line ConfigError that
    lists the known ones."""
    _load_plugins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown strategy {name!r} (use {', '.join(_REGISTRY)})")
    return factory


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
) -> PromptStrategy:
    """A strategy by its name (see `strategy_names`); `k` and `personas` go to the
    strategies that take them and are ignored by the others."""
    factory = strategy_factory(name)
    options: dict[str, Any] = {
        "language": language,
        "texts_per_call": texts_per_call,
        "templates": dict(templates or {}),
        "k": k,
        "personas": list(personas or []),
    }
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
