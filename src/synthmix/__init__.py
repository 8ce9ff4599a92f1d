"""synthmix: will LLM-generated data help my text classifier? Generate, mix, train, measure."""

from synthmix.cards import ClassCard, TaskCard, draft_card, load_card
from synthmix.classify import ClassifierConfig, TextClassifier, TfidfLogReg, build_classifier
from synthmix.data import LabeledData, from_frame, load_labeled, stratified_fraction
from synthmix.errors import ConfigError, DataError, SynthmixError
from synthmix.metrics import evaluate, mean_ci
from synthmix.mixing import Cell, PlanConfig, compose, plan_cells

__version__ = "0.1.0"

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
