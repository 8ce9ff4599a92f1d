"""Tuned baselines: a classifier's regularisation chosen per fit by cross-validation on that
fit's own training rows.

Gains from augmentation can vanish once the baseline is tuned (Piedboeuf & Langlais 2024,
"Is ChatGPT the ultimate data augmentation algorithm?"): a fixed C that over-regularises 10%
of the real data handicaps the baseline, and synthetic texts then "help" by adding rows a
better C would not have needed. With `tune`, every cell (baseline and mix alike) picks its
values by stratified k-fold cross-validation (scikit-learn's GridSearchCV, F1-macro) over its
own training rows, then refits on all of them. The test set is never seen: the caller hands
over the training rows only, and each inner fold learns its own TF-IDF weights, oversampling
and model from its own part of them.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from synthmix.core.errors import ConfigError

DEFAULT_FOLDS = 3
SCORING = "f1_macro"
# Ordered strongest regularisation first: GridSearchCV breaks ties by grid order, and with
# small cells ties are common, so a tie goes to the simpler model.
DEFAULT_GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    # Decades up to the default C=10. On 10% of CEDR (742 texts) cross-validation over
    # 0.1-10 picked 0.1-0.3, up to +0.03 F1-macro above C=10 on the test set; on all of CEDR
    # 1-3 (within 0.005 of C=10); with EDA rewrites added to 10% it picked 0.1 every time,
    # the grid's end, and 0.01-0.03 given the choice. C above 10 never won.
    "tfidf_logreg": {"C": (0.01, 0.1, 1.0, 10.0)},
    "embedding_logreg": {"C": (0.1, 1.0, 10.0, 100.0)},
    "embedding_mlp": {"alpha": (1e-1, 1e-2, 1e-3, 1e-4)},
}


@dataclass(frozen=True)
class TunePlan:
    """Which parameter values are tried, in order, and in how many folds."""

    grid: dict[str, tuple[Any, ...]]
    folds: int = DEFAULT_FOLDS

    def describe(self) -> dict[str, Any]:
        """What results and run.json record about the tuning asked for."""
        return {
            "grid": {name: list(values) for name, values in self.grid.items()},
            "folds": self.folds,
            "scoring": SCORING,
        }


def tune_plan(name: str, tune: bool | Mapping[str, Any] | None, where: str = "") -> TunePlan | None:
    """The tuning a classifier config asks for: None (off), `true` (its default grid) or a
    mapping of parameter -> list of values to try, with an optional `folds`. `where` names
    the classifier in errors."""
    if tune is None or tune is False:
        return None
    where = f"{where or f'classifier {name!r}'}: tune"
    if tune is True:
        raw: dict[str, Any] = {}
    elif isinstance(tune, Mapping):
        raw = dict(tune)
    else:
        raise ConfigError(f"{where}: expected true, false or a mapping, got {tune!r}")
    folds = raw.pop("folds", DEFAULT_FOLDS)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"{where}: 'folds' must be an integer of at least 2, got {folds!r}")
    grid: dict[str, tuple[Any, ...]] = {}
    for param, values in raw.items():
        if not isinstance(values, list | tuple) or not values:
            raise ConfigError(
                f"{where}: '{param}' must be a non-empty list of values to try, got {values!r}"
            )
        grid[str(param)] = tuple(values)
    if not grid:
        if name not in DEFAULT_GRIDS:
            raise ConfigError(
                f"{where}: no default grid for this classifier; list the values to try, "
                "e.g. tune: {C: [0.1, 1, 10]}"
            )
        grid = dict(DEFAULT_GRIDS[name])
    return TunePlan(grid, folds)


@dataclass(frozen=True)
class Tuning:
    """What one tuned fit chose, and on what."""

    chosen: dict[str, Any]
    folds: int  # 0: the cell was too small to cross-validate, so the given values were kept
    rows: int  # training rows the inner cross-validation split (the cell's, no others)
    grouped: bool  # folds kept each real text and its rewrites together
    cv_f1_macro: float  # mean over folds for the chosen values (NaN when not tuned)
    scores: list[float]  # mean over folds for each grid point, in grid order
    tune_s: float  # time spent in cross-validation, on top of the final fit
    note: str = ""

    def as_record(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "folds": self.folds,
            "rows": self.rows,
            "grouped": self.grouped,
            "cv_f1_macro": None if math.isnan(self.cv_f1_macro) else round(self.cv_f1_macro, 6),
            "scores": [round(s, 6) for s in self.scores],
            "tune_s": round(self.tune_s, 4),
            **({"note": self.note} if self.note else {}),
        }


class OnCounts(ClassifierMixin, BaseEstimator):
    """A TF-IDF classifier seen by scikit-learn as fitting on precomputed n-gram counts
    (`fit_counts`/`predict_counts`), so GridSearchCV can split the count rows of a cell."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def fit(self, counts: Any, labels: Sequence[str] | np.ndarray) -> OnCounts:
        self.model_ = clone(self.model).fit_counts(counts, labels)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, counts: Any) -> np.ndarray:
        return np.asarray(self.model_.predict_counts(counts))


def fit_tuned(
    model: Any,
    rows: Any,
    labels: Sequence[str] | np.ndarray,
    plan: TunePlan,
    seed: int,
    groups: Sequence[int] | np.ndarray | None = None,
) -> tuple[Any, Tuning]:
    """`model` fitted on `rows` (texts, or count rows for an `OnCounts`) with the grid values
    that scored best in stratified cross-validation over these rows alone; the fitted model
    (the best refit on every row) and what was chosen. `groups`: rows of one group (a real
    text and its rewrites) stay in one fold, or a fold would be scored on near-copies of its
    own training texts and favour the weakest regularisation."""
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

    prefix = "model__" if isinstance(model, OnCounts) else ""
    inner = model.model if isinstance(model, OnCounts) else model
    _check_tunable(inner, plan)
    labels_arr = np.asarray(list(labels), dtype=object)
    if groups is not None and len(np.unique(np.asarray(groups))) == len(labels_arr):
        groups = None  # every row its own group: plain stratified folds
    if groups is None:
        smallest = min(Counter(labels_arr.tolist()).values())
        splitter: Any = StratifiedKFold
    else:
        groups = np.asarray(groups)
        # A class can be split only into as many folds as it has groups.
        smallest = _groups_per_class(labels_arr, groups)
        splitter = StratifiedGroupKFold
    folds = min(plan.folds, smallest)
    if folds < 2:
        model.fit(rows, labels_arr)
        kept = {name: inner.get_params()[name] for name in plan.grid}
        unit = "training row(s)" if groups is None else "real text(s) with its rewrites"
        note = f"a class has {smallest} {unit}: too few to cross-validate, kept {kept}"
        return model, Tuning(kept, 0, len(labels_arr), groups is not None, math.nan, [], 0.0, note)
    search = GridSearchCV(
        model,
        {f"{prefix}{name}": list(values) for name, values in plan.grid.items()},
        # F1 of a class a fold's model never predicts is 0, as in the experiment's metrics;
        # the default would warn once per fold.
        scoring=make_scorer(f1_score, average="macro", zero_division=0),
        cv=splitter(folds, shuffle=True, random_state=seed),
        refit=True,
        n_jobs=1,  # the grid's workers already use every core
        error_score="raise",
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # With fewer rows of a class than folds StratifiedKFold warns; folds were capped above.
        warnings.simplefilter("ignore", UserWarning)
        search.fit(rows, labels_arr, groups=groups)
    elapsed = time.perf_counter() - started
    chosen = {name: search.best_params_[f"{prefix}{name}"] for name in plan.grid}
    tuning = Tuning(
        chosen=chosen,
        folds=folds,
        rows=len(labels_arr),
        grouped=groups is not None,
        cv_f1_macro=float(search.best_score_),
        scores=[float(s) for s in search.cv_results_["mean_test_score"]],
        tune_s=max(0.0, elapsed - float(search.refit_time_)),
    )
    return search.best_estimator_, tuning


def _groups_per_class(labels: np.ndarray, groups: np.ndarray) -> int:
    """The fewest distinct groups any class has."""
    per_class: dict[Any, set[Any]] = {}
    for label, group in zip(labels.tolist(), groups.tolist(), strict=True):
        per_class.setdefault(label, set()).add(group)
    return min(len(members) for members in per_class.values())


def _check_tunable(model: Any, plan: TunePlan) -> None:
    if not hasattr(model, "get_params") or not hasattr(model, "set_params"):
        raise ConfigError(
            f"{type(model).__name__} cannot be tuned: it is not a scikit-learn estimator"
        )
    known = model.get_params(deep=False)
    unknown = [name for name in plan.grid if name not in known]
    if unknown:
        raise ConfigError(
            f"{type(model).__name__} has no parameter {unknown[0]!r} to tune "
            f"(it has: {', '.join(sorted(known))})"
        )
