"""Generating class-conditional texts: one engine (batches within a budget, a filter chain
per answer), strategies and their registry, personas, plans."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.generation.engine import Budget, run_batches
    from synthmix.generation.filters import Candidate, Filter, FilterChain, is_degenerate
    from synthmix.generation.generate import (
        GenerationConfig,
        GenerationResult,
        generate_until_unique,
    )
    from synthmix.generation.personas import (
        Persona,
        PersonaConfig,
        PersonaPool,
        build_persona_pool,
        load_personas,
        load_pool,
        save_pool,
    )
    from synthmix.generation.plan import GenerationPlan, GeneratorSpec, load_plan, run_plan
    from synthmix.generation.strategies import (
        Prompt,
        PromptStrategy,
        make_strategy,
        register_strategy,
        strategy_names,
    )


_EXPORTS = {
    ".strategies": (
        "Prompt",
        "PromptStrategy",
        "make_strategy",
        "register_strategy",
        "strategy_names",
    ),
    ".engine": (
        "Budget",
        "run_batches",
    ),
    ".filters": (
        "Candidate",
        "Filter",
        "FilterChain",
        "is_degenerate",
    ),
    ".generate": (
        "GenerationConfig",
        "GenerationResult",
        "generate_until_unique",
    ),
    ".personas": (
        "PersonaConfig",
        "Persona",
        "PersonaPool",
        "build_persona_pool",
        "save_pool",
        "load_pool",
        "load_personas",
    ),
    ".plan": (
        "GenerationPlan",
        "GeneratorSpec",
        "load_plan",
        "run_plan",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "Budget",
    "Candidate",
    "Filter",
    "FilterChain",
    "GenerationConfig",
    "GenerationPlan",
    "GenerationResult",
    "GeneratorSpec",
    "Persona",
    "PersonaConfig",
    "PersonaPool",
    "Prompt",
    "PromptStrategy",
    "build_persona_pool",
    "generate_until_unique",
    "is_degenerate",
    "load_personas",
    "load_plan",
    "load_pool",
    "make_strategy",
    "register_strategy",
    "run_batches",
    "run_plan",
    "save_pool",
    "strategy_names",
]
