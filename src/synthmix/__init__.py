"""synthmix: will LLM-generated data help my text classifier? Generate, mix, train, measure."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthmix.errors import ConfigError, DataError, SynthmixError

if TYPE_CHECKING:
    from synthmix.cards import ClassCard, TaskCard, draft_card, load_card
    from synthmix.classify import ClassifierConfig, TextClassifier, TfidfLogReg, build_classifier
    from synthmix.data import LabeledData, from_frame, load_labeled, stratified_fraction
    from synthmix.metrics import evaluate, mean_ci
    from synthmix.mixing import Cell, PlanConfig, compose, plan_cells

__version__ = "0.1.0"

# Re-exports load on first use (PEP 562): importing them here pulled in scikit-learn, pandas
# and scipy, 1.5 s before the CLI could even print --help.
_LAZY = {
    "synthmix.cards": ("ClassCard", "TaskCard", "draft_card", "load_card"),
    "synthmix.classify": ("ClassifierConfig", "TextClassifier", "TfidfLogReg", "build_classifier"),
    "synthmix.data": ("LabeledData", "from_frame", "load_labeled", "stratified_fraction"),
    "synthmix.metrics": ("evaluate", "mean_ci"),
    "synthmix.mixing": ("Cell", "PlanConfig", "compose", "plan_cells"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'synthmix' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "Cell",
    "ClassCard",
    "ClassifierConfig",
    "ConfigError",
    "DataError",
    "LabeledData",
    "PlanConfig",
    "SynthmixError",
    "TaskCard",
    "TextClassifier",
    "TfidfLogReg",
    "build_classifier",
    "compose",
    "draft_card",
    "evaluate",
    "from_frame",
    "load_card",
    "load_labeled",
    "mean_ci",
    "plan_cells",
    "stratified_fraction",
]
