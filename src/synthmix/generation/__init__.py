"""Generating class-conditional texts: strategies, the until-N engine, personas, plans."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".strategies": (
        "Prompt",
        "PromptStrategy",
        "make_strategy",
    ),
    ".engine": (
        "GenerationConfig",
        "GenerationResult",
    ),
    ".personas": (
        "PersonaConfig",
        "Persona",
        "PersonaPool",
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
    "GenerationConfig",
    "GenerationPlan",
    "GenerationResult",
    "GeneratorSpec",
    "Persona",
    "PersonaConfig",
    "PersonaPool",
    "Prompt",
    "PromptStrategy",
    "load_personas",
    "load_plan",
    "load_pool",
    "make_strategy",
    "run_plan",
    "save_pool",
]
