"""Tuned baselines: each cell's classifier picks its C by cross-validation on its own rows."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.classifiers.tuning import OnCounts, TunePlan, fit_tuned
from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LABEL, LabeledData, load_labeled, stratified_fraction
from synthmix.experiment.config import load_experiment, parse_experiment
from synthmix.experiment.mixing import (
    GROUP,
    ORIGIN,
    REAL_ONLY,
    SMALL_REAL_PLUS_SYNTHETIC,
    Cell,
    compose,
)
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import RunDirInUse, run_experiment
from synthmix.experiment.sources import DerivedSource
from synthmix.report import write_report
from synthmix.stats.classification import evaluate


def test_tuning_picks_a_stronger_c_where_the_default_handicaps_a_small_baseline(
    cedr_train: LabeledData, cedr_test: LabeledData
) -> None:
    """10% of CEDR (742 texts): the default C=10 over-fits; cross-validation on the 742
    training texts alone finds a smaller C, and the test set, unseen by it, agrees."""
    small = stratified_fraction(cedr_train, 0.1, seed=2)
    default = TfidfLogReg(random_state=2)
    spec = default.ngram_spec
    assert spec is not None
    counts, test_counts = spec.counts(small.texts), spec.counts(cedr_test.texts)
    default.fit_counts(counts, small.labels)
    plan = TunePlan({"C": (0.3, default.C)})  # two of the default grid's values, for speed
    search, tuning = fit_tuned(OnCounts(TfidfLogReg(random_state=2)), counts, small.labels, plan, 2)

    def f1(model: TfidfLogReg) -> float:
        predicted = model.predict_counts(test_counts).tolist()
        return float(evaluate(cedr_test.labels, predicted, cedr_train.classes)["f1_macro"])

    assert tuning.chosen["C"] == 0.3
    assert (tuning.folds, tuning.rows) == (3, len(small))
    assert tuning.cv_f1_macro == max(tuning.scores)
    assert tuning.chosen["C"] == search.model_.C
    assert f1(search.model_) > f1(default) + 0.01


def _row_keys(counts: sp.csr_matrix) -> list[str]:
    counts = counts.tocsr()
    return [
        hashlib.sha1(
            counts.indices[a:b].tobytes() + counts.data[a:b].astype(np.float32).tobytes()
        ).hexdigest()
        for a, b in zip(counts.indptr[:-1], counts.indptr[1:], strict=True)
    ]


@pytest.mark.parametrize("features", ["hashed", "per_cell"])
def test_inner_cross_validation_sees_only_the_cells_training_rows(
    experiment_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, features: str
) -> None:
    """Every fit the tuning makes (inner folds and refit) gets rows of its cell's mix only;
    the test texts reach one predict per cell, the refit's; the record and the report say
    what was chosen."""
    config = load_experiment(experiment_files / "experiment.yaml")
    config.sources, config.seeds = [], [0]
    config.plans.learning_curve = [0.3]
    config.classifier.params = {"features": features, "max_iter": 100}
    config.classifier.tune = {"C": [0.1, 10.0], "folds": 2}
    fits: list[set[str]] = []
    predicts: list[set[str]] = []
    spec = TfidfLogReg().ngram_spec
    assert spec is not None
    if features == "hashed":

        def keys(rows: Any) -> set[str]:
            return set(_row_keys(rows))

        original_fit, original_predict = TfidfLogReg.fit_counts, TfidfLogReg.predict_counts
        fit_name, predict_name = "fit_counts", "predict_counts"
    else:

        def keys(rows: Any) -> set[str]:
            return set(_row_keys(spec.counts(list(rows))))

        original_fit, original_predict = TfidfLogReg.fit, TfidfLogReg.predict  # type: ignore[assignment]
        fit_name, predict_name = "fit", "predict"

    def spy_fit(self: TfidfLogReg, rows: Any, labels: Any) -> TfidfLogReg:
        fits.append(keys(rows))
        return original_fit(self, rows, labels)

    def spy_predict(self: TfidfLogReg, rows: Any) -> np.ndarray:
        predicts.append(keys(rows))
        return original_predict(self, rows)

    # scikit-learn's scorers look methods up by their __name__.
    spy_fit.__name__, spy_predict.__name__ = fit_name, predict_name
    monkeypatch.setattr(TfidfLogReg, fit_name, spy_fit)
    monkeypatch.setattr(TfidfLogReg, predict_name, spy_predict)
    run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    monkeypatch.undo()

    train = load_labeled(experiment_files / "train.csv")
    test = load_labeled(experiment_files / "test.csv")
    cells = {
        fraction: set(
            _row_keys(spec.counts(compose(Cell(REAL_ONLY, fraction), train, None, 0).data.texts))
        )
        for fraction in (0.3, 1.0)
    }
    test_rows = set(_row_keys(spec.counts(test.texts)))
    test_only = test_rows - cells[1.0]
    assert test_only
    # Two cells x (2 C x 2 folds + the refit).
    assert len(fits) == 10
    assert all(rows <= cells[0.3] or rows <= cells[1.0] for rows in fits)
    assert not any(rows & test_only for rows in fits)
    assert any(rows < cells[0.3] for rows in fits)  # the inner folds of the 30% cell
    finals = [rows for rows in predicts if rows & test_only]
    assert finals == [test_rows, test_rows]
    assert all(rows <= cells[1.0] for rows in predicts if not rows & test_only)

    records = ResultsStore(tmp_path / "run").records()
    assert len(records) == 2
    for record in records:
        assert record["classifier"]["tune"] == {
            "grid": {"C": [0.1, 10.0]}, "folds": 2, "scoring": "f1_macro"
        }  # fmt: skip
        assert record["tuning"]["chosen"]["C"] in (0.1, 10.0)
        assert record["tuning"]["rows"] == record["train_size"]
        assert record["tuning"]["grouped"] is False  # real rows only: each its own group
        assert record["timings"]["tune_s"] > 0
    paths = write_report(tmp_path / "run")
    html = paths.html.read_text(encoding="utf-8")
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert "| tuned per cell | tfidf_logreg: C from 0.1, 10, 2-fold CV |" in markdown
    assert "Baselines were tuned" in html
    assert "C from 0.1, 10 by 2-fold stratified cross-validation" in html
    assert "Tuned regularisation per cell" in html
    chosen = {record["cell_key"]: record["tuning"]["chosen"]["C"] for record in records}
    assert f"C: {chosen['real_only|-|0.3|0']:g}" in html

    # Untuned, the same label is another classifier: the run directory is not resumed.
    config.classifier.tune = None
    with pytest.raises(RunDirInUse):
        run_experiment(config, tmp_path / "run", jobs=1, progress=False)


def test_a_class_too_small_to_cross_validate_keeps_the_configured_value() -> None:
    texts = ["good day", "fine day", "great day", "nice day", "bad day"]
    labels = ["pos", "pos", "pos", "pos", "neg"]
    model, tuning = fit_tuned(
        TfidfLogReg(C=4.0), texts, labels, TunePlan({"C": (0.1, 1.0)}), seed=0
    )
    assert tuning.chosen == {"C": 4.0}
    assert tuning.folds == 0
    assert "too few to cross-validate" in tuning.note
    assert list(model.predict(["good day"])) == ["pos"]


def test_experiment_tune_covers_classifiers_with_a_default_grid() -> None:
    raw = {
        "name": "x",
        "data": {"train": "train.csv"},
        "tune": True,
        "classifiers": [
            {"name": "tfidf_logreg"},
            {"name": "tfidf_logreg", "label": "fixed", "tune": False},
            {"name": "embedding_logreg", "label": "use"},
            {"name": "transformer", "label": "bert"},
        ],
    }
    config = parse_experiment(raw, "exp.yaml")
    plans = {spec.display: spec.tuning for spec in config.compared_classifiers()}
    assert plans["tfidf_logreg"] is not None and plans["tfidf_logreg"].grid["C"][-1] == 10.0
    assert plans["use"] is not None and "C" in plans["use"].grid
    assert plans["fixed"] is None
    assert plans["bert"] is None


@pytest.mark.parametrize(
    ("tune", "expected"),
    [
        (
            {"D": [1]},
            "exp.yaml: classifier 'tfidf_logreg': tune: unknown parameter 'D' (allowed:",
        ),
        ({"C": []}, "exp.yaml: classifier 'tfidf_logreg': tune: 'C' must be a non-empty list"),
        ({"C": [1], "folds": 1}, "'folds' must be an integer of at least 2, got 1"),
        ({"C": ["a"]}, "tune: parameter 'C': input should be a valid number"),
        ({"random_state": [1, 2]}, "'random_state' is set per seed by the experiment"),
    ],
)
def test_bad_tune_settings_are_one_line(tune: dict[str, Any], expected: str) -> None:
    raw = {"name": "x", "data": {"train": "train.csv"}, "classifier": {"tune": tune}}
    with pytest.raises(ConfigError) as caught:
        parse_experiment(raw, "exp.yaml")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_no_default_grid_asks_for_values() -> None:
    raw = {"name": "x", "data": {"train": "t.csv"}, "classifier": {"name": "lora", "tune": True}}
    with pytest.raises(ConfigError, match="no default grid for this classifier"):
        parse_experiment(raw, "exp.yaml")


def test_rewrites_of_a_real_text_stay_in_its_fold(experiment_files: Path) -> None:
    """EDA rewrites a cell's real texts; a fold scored on rewrites of its own training texts
    would reward memorising them (inner-CV F1 near 1 for the weakest regularisation). Rows are
    grouped by the real text they stem from, and the folds keep groups whole."""
    train = load_labeled(experiment_files / "train.csv")
    cell = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.2, 1.0, "eda")
    mix = compose(cell, train, DerivedSource("eda", {"alpha": 0.1}), 0)
    frame = mix.data.frame
    real, rewrites = frame[frame[ORIGIN] == "real"], frame[frame[ORIGIN] == "synthetic"]
    assert sorted(real[GROUP]) == list(range(len(real)))
    parents = dict(zip(real[GROUP], real[LABEL], strict=True))
    assert all(
        parents[g] == label for g, label in zip(rewrites[GROUP], rewrites[LABEL], strict=True)
    )
    plan = TunePlan({"C": (0.3, 10.0)})
    _, leaky = fit_tuned(TfidfLogReg(max_iter=50), mix.data.texts, mix.data.labels, plan, 0)
    _, grouped = fit_tuned(
        TfidfLogReg(max_iter=50), mix.data.texts, mix.data.labels, plan, 0, frame[GROUP]
    )
    assert grouped.grouped and not leaky.grouped
    assert leaky.cv_f1_macro > grouped.cv_f1_macro + 0.2


def test_untuned_note_names_the_c_every_cell_used() -> None:
    from synthmix.report.sections.tuning import tuning_note

    default = [{"classifier": {"name": "tfidf_logreg", "params": {}}}]
    assert "was fitted with C=10 (the default)." in tuning_note(default)
    assert "Piedboeuf & Langlais 2024" in tuning_note(default)
    configured = [{"classifier": {"name": "embedding_logreg", "params": {"C": 0.5}}}]
    assert "was fitted with C=0.5." in tuning_note(configured)


def test_the_note_warns_when_most_fits_chose_an_end_of_the_grid() -> None:
    from synthmix.report.sections.tuning import tuning_note

    tune = {"grid": {"C": [0.1, 1.0, 10.0]}, "folds": 3, "scoring": "f1_macro"}
    classifier = {"name": "tfidf_logreg", "params": {}, "tune": tune}
    records = [
        {"classifier": classifier, "tuning": {"chosen": {"C": c}, "folds": 3, "grouped": False}}
        for c in (0.1, 0.1, 1.0)
    ]
    note = tuning_note(records)
    assert "Chosen: C=0.1 in 2 fits, C=1 in 1 fit." in note
    assert "2 of 3 fits chose C=0.1, an end of the grid" in note
    records[1]["tuning"]["chosen"] = {"C": 1.0}
    assert "an end of the grid" not in tuning_note(records)
