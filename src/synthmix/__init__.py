"""synthmix: will LLM-generated data help my text classifier? Generate, mix, train, measure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.errors import ConfigError, DataError, SynthmixError
from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.cards import ClassCard, TaskCard, draft_card, load_card
    from synthmix.classifiers.base import TextClassifier
    from synthmix.classifiers.registry import ClassifierConfig, build_classifier
    from synthmix.classifiers.tfidf import TfidfLogReg
    from synthmix.data import LabeledData, from_frame, load_labeled, stratified_fraction
    from synthmix.experiment.mixing import Cell, PlanConfig, compose, plan_cells
    from synthmix.stats import evaluate, mean_ci

__version__ = "0.1.0"

_EXPORTS = {
    "synthmix.cards": ("ClassCard", "TaskCard", "draft_card", "load_card"),
    "synthmix.classifiers.tfidf": (
        "ClassifierConfig",
        "TextClassifier",
        "TfidfLogReg",
        "build_classifier",
    ),
    "synthmix.data": ("LabeledData", "from_frame", "load_labeled", "stratified_fraction"),
    "synthmix.stats": ("evaluate", "mean_ci"),
    "synthmix.experiment.mixing": ("Cell", "PlanConfig", "compose", "plan_cells"),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

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
