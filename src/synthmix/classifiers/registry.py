"""Classifiers selectable by name in experiment configs, and their validated parameters.

Built-ins register as "module:Class" and load when a config names them (torch and encoders are
not imported for a TF-IDF run); a third-party package adds its own through the entry point
group `synthmix.classifiers`, and `register_classifier` adds one at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthmix.classifiers.base import TextClassifier
from synthmix.classifiers.tuning import TunePlan, tune_plan
from synthmix.core.config import check_params
from synthmix.core.errors import ConfigError
from synthmix.core.plugins import Registry


@dataclass
class ClassifierConfig:
    """Which classifier the experiment trains, its keyword hyper-parameters, and the label that
    names it in results and reports (default: its name). Two configs of one classifier with
    different params, compared in one experiment, need distinct labels.

    `tune`: choose the regularisation per fit by cross-validation on the fit's own training
    rows (classifiers.tuning): true for the classifier's default grid, or a mapping such as
    `{C: [0.1, 1, 10], folds: 3}`; None takes the experiment's `tune`."""

    name: str = "tfidf_logreg"
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    tune: bool | dict[str, Any] | None = None

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def tuning(self) -> TunePlan | None:
        return tune_plan(self.name, self.tune, f"classifier {self.display!r}")

    def describe(self) -> dict[str, Any]:
        """What results and run.json record: label, name, params and, when tuned, the grid."""
        plan = self.tuning
        return {
            "label": self.display,
            "name": self.name,
            "params": self.params,
            **({"tune": plan.describe()} if plan is not None else {}),
        }


ClassifierFactory = Callable[..., TextClassifier]

CLASSIFIERS: Registry[ClassifierFactory] = Registry(
    "synthmix.classifiers",
    "classifier",
    {
        "tfidf_logreg": "synthmix.classifiers.tfidf:TfidfLogReg",
        "embedding_logreg": "synthmix.classifiers.embedding:EmbeddingLogReg",
        "embedding_mlp": "synthmix.classifiers.embedding:EmbeddingMLP",
        "transformer": "synthmix.classifiers.transformer:TransformerClassifier",
        "lora": "synthmix.classifiers.transformer:LoraClassifier",
        "pair_tfidf_logreg": "synthmix.classifiers.pairs:PairTfidfLogReg",
        "tfidf_ovr": "synthmix.classifiers.multilabel:TfidfOneVsRest",
        "embedding_ovr": "synthmix.classifiers.multilabel:EmbeddingOneVsRest",
        "transformer_multilabel": (
            "synthmix.classifiers.transformer_multilabel:MultiLabelTransformerClassifier"
        ),
        "lora_multilabel": "synthmix.classifiers.transformer_multilabel:MultiLabelLoraClassifier",
    },
)
# Classifiers whose fits must not run in parallel worker processes: each torch fit already uses
# every core (or the one GPU), so two at once thrash instead of finishing sooner.
_SERIAL: set[str] = {"transformer", "lora", "transformer_multilabel", "lora_multilabel"}
# Set by the experiment for every fit, never by the user.
_RESERVED = {"random_state": "set per seed by the experiment"}


def register_classifier(
    name: str, factory: ClassifierFactory, *, serial: bool | None = None
) -> None:
    """Make a classifier selectable by name in experiment configs. `serial=True`: the experiment
    runs its fits one at a time in the main process (for models that use all cores or a GPU);
    None keeps what the name had (a replaced `transformer` factory still runs serially)."""
    CLASSIFIERS.register(name, factory)
    if serial is True:
        _SERIAL.add(name)
    elif serial is False:
        _SERIAL.discard(name)


def runs_serially(name: str) -> bool:
    return name in _SERIAL


def available_classifiers() -> list[str]:
    return CLASSIFIERS.names()


def check_classifier(config: ClassifierConfig) -> None:
    """A classifier's name and params checked against its constructor, before any fit: an
    unknown or misspelt parameter, or a value of the wrong type, is one ConfigError."""
    factory = CLASSIFIERS.get(config.name)
    where = f"classifier {config.display!r}"
    check_params(factory, config.params, where, _RESERVED)
    plan = tune_plan(config.name, config.tune, where)
    if plan is not None:
        for param, values in plan.grid.items():
            for value in values:
                check_params(factory, {param: value}, f"{where}: tune", _RESERVED)


def build_classifier(config: ClassifierConfig, seed: int) -> TextClassifier:
    check_classifier(config)
    try:
        model: TextClassifier = CLASSIFIERS.get(config.name)(random_state=seed, **config.params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"classifier {config.display!r}: {exc}") from None
    return model
