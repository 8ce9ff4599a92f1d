"""Persona pools (Persona Hub style): who might write or read the task's texts.

Two moves build a pool. **text-to-persona** asks an LLM who might have written or would
read a given text; **persona-to-persona** asks for someone close to a persona already in
the pool (a relative, a colleague, a clinician, a neighbour, ...), which reaches people the
seed texts never show. `build_persona_pool` runs text-to-persona over the seed texts, then
expands the pool until it holds `size` personas or the call budget is spent.

Personas are deduplicated as they arrive (`synthmix.dedup.IncrementalDedup`: exact, MinHash
and, by default, embeddings), and one that near-copies a seed text is dropped by the leak
stage: seed texts may be sensitive and a persona must not carry them along. Templates are
Russian or English by the task's language and can be replaced one by one (`templates`).
"""

from __future__ import annotations

from synthmix.generation.personas.config import PersonaConfig
from synthmix.generation.personas.files import load_personas, load_pool, save_pool
from synthmix.generation.personas.pool import Persona, PersonaPool, PoolReport, build_persona_pool
from synthmix.generation.personas.prompts import (
    parse_persona,
    persona_to_persona_prompt,
    text_to_persona_prompt,
    worked_examples,
)
from synthmix.generation.personas.templates import (
    LEVELS,
    PERSONA_TEMPLATES_EN,
    PERSONA_TEMPLATES_RU,
    default_relations,
    persona_templates,
)

__all__ = [
    "LEVELS",
    "PERSONA_TEMPLATES_EN",
    "PERSONA_TEMPLATES_RU",
    "Persona",
    "PersonaConfig",
    "PersonaPool",
    "PoolReport",
    "build_persona_pool",
    "default_relations",
    "load_personas",
    "load_pool",
    "parse_persona",
    "persona_templates",
    "persona_to_persona_prompt",
    "save_pool",
    "text_to_persona_prompt",
    "worked_examples",
]
