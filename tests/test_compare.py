"""Several classifiers in one experiment: config, resumable runs that grow by classifier, torch
fits kept out of parallel workers, and the report's "Classifiers compared" section."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from run_records import result_record
from synthmix.classifiers import registry
from synthmix.classifiers.registry import ClassifierConfig
from synthmix.classifiers.tfidf import TfidfLogReg
from synthmix.core.errors import ConfigError
from synthmix.experiment.config import load_experiment, parse_experiment
from synthmix.experiment.mixing import REAL_ONLY, SMALL_REAL_PLUS_SYNTHETIC, Cell
from synthmix.experiment.results import ResultsStore, record_classifier
from synthmix.experiment.run_dir import read_run_info, write_run_info
from synthmix.experiment.runner import run_experiment, schedule
from synthmix.report import write_report

STRONG = {"name": "tfidf_logreg", "params": {"max_iter": 200}}
WEAK = {"name": "tfidf_logreg", "label": "tfidf C=0.05", "params": {"C": 0.05, "max_iter": 200}}


def small_config(experiment_files: Path, tmp_path: Path, **changes: Any) -> Path:
    """The shared small experiment cut to 3 cells (10% real, all real, 10% real + 100% of a
    held-out-real source) x 2 seeds, so each classifier costs 6 fast fits."""
    raw = yaml.safe_load((experiment_files / "experiment.yaml").read_text(encoding="utf-8"))
    raw["data"] = {
        "train": str(experiment_files / "train.csv"),
        "test": str(experiment_files / "test.csv"),
    }
    raw["sources"] = [{"path": str(experiment_files / "synth.csv"), "name": "heldout"}]
    raw["plans"] = {
        "learning_curve": [1.0],
        "synthetic_only": False,
        "half_and_half": False,
        "real_plus_equal": False,
        "synthetic_ratios": [1.0],
    }
    raw.pop("classifier")
    raw.update(changes)
    path = tmp_path / f"experiment-{len(list(tmp_path.glob('experiment-*')))}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# ----- config ----------------------------------------------------------------------------


def test_classifiers_list_parses_with_labels() -> None:
    raw = {"name": "x", "data": {"train": "a.csv"}, "classifiers": [STRONG, WEAK]}
    config = parse_experiment(raw, "e.yaml")
    assert [c.display for c in config.compared_classifiers()] == ["tfidf_logreg", "tfidf C=0.05"]
    assert config.classifiers[1].params == {"C": 0.05, "max_iter": 200}
    single = parse_experiment({"name": "x", "data": {"train": "a.csv"}}, "e.yaml")
    assert single.compared_classifiers() == [ClassifierConfig()]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"classifier": STRONG, "classifiers": [WEAK]},
            "e.yaml: set either 'classifier' (one) or 'classifiers' (a list to compare), not both",
        ),
        (
            {"classifiers": [STRONG, {"name": "tfidf_logreg", "params": {"C": 1.0}}]},
            "e.yaml: two classifiers are labelled 'tfidf_logreg'; give each a distinct 'label'",
        ),
        ({"classifiers": []}, "e.yaml: 'classifiers' must name at least one classifier"),
        (
            {"classifiers": [{"name": "tfidf_logreg", "lable": "x"}]},
            "e.yaml: classifiers[0]: unknown key 'lable' (allowed: name, params, label)",
        ),
    ],
)
def test_classifier_config_errors(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_experiment({"name": "x", "data": {"train": "a.csv"}, **changes}, "e.yaml")
    assert str(caught.value) == expected


# ----- running ---------------------------------------------------------------------------


def test_two_classifiers_record_resume_and_compare(experiment_files: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    single = load_experiment(small_config(experiment_files, tmp_path, classifier=STRONG))
    first = run_experiment(single, run_dir, jobs=2, progress=False)
    assert (first.total, first.ran) == (6, 6)

    # Adding a classifier extends the finished run: only the new classifier's fits run.
    both = load_experiment(small_config(experiment_files, tmp_path, classifiers=[STRONG, WEAK]))
    second = run_experiment(both, run_dir, jobs=2, progress=False)
    assert (second.total, second.ran, second.reused) == (12, 6, 6)
    again = run_experiment(both, run_dir, jobs=2, progress=False)
    assert (again.ran, again.reused) == (0, 12)

    records = ResultsStore(run_dir).records()
    by_label = {
        label: [r for r in records if record_classifier(r) == label]
        for label in ("tfidf_logreg", "tfidf C=0.05")
    }
    assert {label: len(group) for label, group in by_label.items()} == {
        "tfidf_logreg": 6,
        "tfidf C=0.05": 6,
    }
    assert by_label["tfidf C=0.05"][0]["classifier"] == {
        "label": "tfidf C=0.05",
        "name": "tfidf_logreg",
        "params": {"C": 0.05, "max_iter": 200},
    }
    assert len({r["key"] for r in records}) == 12
    info = read_run_info(run_dir)
    assert [c["label"] for c in info["classifiers"]] == ["tfidf_logreg", "tfidf C=0.05"]

    # A label keeps its settings: new params under an old label would mix two classifiers.
    changed = {**WEAK, "params": {"C": 0.5, "max_iter": 200}}
    edited = load_experiment(
        small_config(experiment_files, tmp_path, classifiers=[STRONG, changed])
    )
    with pytest.raises(ConfigError, match="holds results of a different experiment"):
        run_experiment(edited, run_dir, jobs=1, progress=False)

    markdown = write_report(run_dir).markdown.read_text(encoding="utf-8")
    section = markdown.split("## Classifiers compared", 1)[1].split("\n## ", 1)[0]
    for label, group in by_label.items():
        all_real = [r["metrics"]["f1_macro"] for r in group if r["cell_key"] == "real_only|-|1|0"]
        mean = sum(all_real) / len(all_real)
        row = next(line for line in section.splitlines() if line.startswith("| — | 100% real"))
        assert f"{mean:.3f} ± " in row, (label, row)
    # Which one wins on 74-742 texts is the data's business; that it is said is ours.
    assert re.search(r"On all real data, (tfidf_logreg|tfidf C=0\.05) scores best", section)
    assert "tfidf C=0.05, 10% real data:" in section
    assert "(figures/classifiers_compared.png)" in section
    assert (run_dir / "figures" / "classifiers_compared.png").read_bytes().startswith(b"\x89PNG")
    assert "the primary one, tfidf_logreg" in markdown


def test_run_from_before_classifier_labels_resumes(experiment_files: Path, tmp_path: Path) -> None:
    """A run directory written before `classifiers` existed (no labels, keys without a
    classifier, the classifier inside the fingerprint) resumes and can gain a classifier."""
    run_dir = tmp_path / "run"
    # Such a run fitted TF-IDF per cell (saga tol 1e-3): hashed counts would not resume it.
    per_cell = {**STRONG, "params": {**STRONG["params"], "features": "per_cell", "tol": 1e-3}}
    config = load_experiment(small_config(experiment_files, tmp_path, classifier=per_cell))
    config.seeds = [0]
    run_experiment(config, run_dir, jobs=1, progress=False)
    _make_legacy(run_dir)

    again = run_experiment(config, run_dir, jobs=1, progress=False)
    assert (again.ran, again.reused) == (0, 3)
    both = load_experiment(small_config(experiment_files, tmp_path, classifiers=[per_cell, WEAK]))
    both.seeds = [0]
    grown = run_experiment(both, run_dir, jobs=1, progress=False)
    assert (grown.ran, grown.reused) == (3, 3)


def _make_legacy(run_dir: Path) -> None:
    """Rewrite a run directory the way the runner wrote it before classifiers had labels."""
    info = read_run_info(run_dir)
    info.pop("classifiers")
    settings = {k: v for k, v in info["config"].items() if k not in ("seeds", "classifiers")}
    settings["classifier"] = info["classifier"]
    identity = json.dumps(
        {"config": settings, "data": info["data"]}, sort_keys=True, ensure_ascii=False
    )
    info["fingerprint"] = hashlib.sha256(identity.encode()).hexdigest()[:16]
    write_run_info(run_dir, info)
    records = ResultsStore(run_dir).records()
    (run_dir / "results.jsonl").unlink()
    store = ResultsStore(run_dir)
    for record in records:
        record["classifier"].pop("label")
        record["key"] = f"{record['cell_key']}|seed={record['seed']}"
        store.append(record)


# ----- torch classifiers run one fit at a time --------------------------------------------


def test_torch_classifiers_are_scheduled_serially_with_a_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cell = Cell(REAL_ONLY, 1.0)
    specs = [
        ClassifierConfig("tfidf_logreg"),
        ClassifierConfig("transformer", {"model": "some/bert"}),
        ClassifierConfig("lora", {"model": "some/bert"}, label="lora r8"),
    ]
    todo = [(cell, seed, spec) for spec in specs for seed in (0, 1, 2)]
    with caplog.at_level(logging.WARNING, logger="synthmix"):
        batches = schedule(todo, requested=2)
    assert [(len(batch), workers) for batch, workers in batches] == [(3, 2), (6, 1)]
    assert {spec.name for _, _, spec in batches[1][0]} == {"transformer", "lora"}
    (notice,) = [r.getMessage() for r in caplog.records]
    assert notice.startswith("transformer, lora r8: one fit at a time (jobs=1)")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="synthmix"):
        assert [w for _, w in schedule(todo, requested=1)] == [1, 1]
    assert caplog.records == []  # nothing was forced down


def test_serial_fits_run_in_the_main_process(
    experiment_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serial classifier known only to this process (as a worker would not know it) runs
    with jobs=2, every fit in this process, while the other classifier runs in workers."""
    pids: list[int] = []

    def factory(**params: Any) -> TfidfLogReg:
        pids.append(os.getpid())
        return TfidfLogReg(**params)

    # The registration is undone after the test.
    monkeypatch.setattr(registry.CLASSIFIERS, "_entries", dict(registry.CLASSIFIERS._entries))
    monkeypatch.setattr(registry, "_SERIAL", set(registry._SERIAL))
    registry.register_classifier("serial_tfidf", factory, serial=True)
    serial = {"name": "serial_tfidf", "params": {"max_iter": 200}}
    config = load_experiment(small_config(experiment_files, tmp_path, classifiers=[STRONG, serial]))
    outcome = run_experiment(config, tmp_path / "run", jobs=2, progress=False)
    assert outcome.ran == 12
    assert pids == [os.getpid()] * 6


def test_transformer_experiment_runs_with_jobs_forced_to_one(
    experiment_files: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from synthmix.classifiers.tiny_bert import build_tiny_bert
    from synthmix.data.labeled import load_labeled

    train = load_labeled(experiment_files / "train.csv")
    model = build_tiny_bert(train.texts, tmp_path / "tiny-bert")
    tiny = {
        "name": "transformer",
        "params": {
            "model": str(model),
            "lr": 1e-3,
            "epochs": 1,
            "batch_size": 32,
            "warmup_steps": 0,
            "max_length": 32,
            "device": "cpu",
            "validation_fraction": 0.0,
        },
    }
    plans = {"learning_curve": [0.5, 1.0]}
    path = small_config(
        experiment_files, tmp_path, classifier=tiny, sources=[], seeds=[0], plans=plans
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model is slower with threads on 2 busy cores
    try:
        with caplog.at_level(logging.WARNING, logger="synthmix"):
            outcome = run_experiment(
                load_experiment(path), tmp_path / "run", jobs=2, progress=False
            )
    finally:
        torch.set_num_threads(threads)
    assert outcome.ran == 2  # 50% and 100% real
    assert "transformer: one fit at a time (jobs=1)" in caplog.text
    records = ResultsStore(tmp_path / "run").records()
    assert {r["classifier"]["name"] for r in records} == {"transformer"}
    assert all(0 <= r["metrics"]["f1_macro"] <= 1 for r in records)


# ----- report on hand-made results ---------------------------------------------------------


def _hand_made_run(run_dir: Path, scores: dict[str, dict[Cell, list[float]]]) -> Path:
    labels = list(scores)
    write_run_info(
        run_dir,
        {
            "name": "hand-made",
            "classifier": {"name": "tfidf_logreg", "params": {}},
            "classifiers": [{"label": lb, "name": "tfidf_logreg", "params": {}} for lb in labels],
        },
    )
    store = ResultsStore(run_dir)
    for label, cells in scores.items():
        for cell, values in cells.items():
            for seed, value in enumerate(values):
                store.append(
                    result_record(
                        cell,
                        seed,
                        value,
                        ["a", "b"],
                        classifier={"label": label, "name": "tfidf_logreg", "params": {}},
                        timings={"compose_s": 0.0, "fit_s": 1.5, "predict_s": 0.5},
                    )
                )
    return run_dir


ALL_REAL = Cell(REAL_ONLY, 1.0)
SMALL = Cell(REAL_ONLY, 0.1)
MIX = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "llm")


def test_comparison_says_beyond_noise_only_when_the_paired_lead_survives(tmp_path: Path) -> None:
    apart = {
        "bert": {ALL_REAL: [0.80, 0.81, 0.82], SMALL: [0.50, 0.51, 0.52], MIX: [0.60, 0.61, 0.62]},
        "tfidf": {ALL_REAL: [0.70, 0.71, 0.72], SMALL: [0.55, 0.56, 0.57], MIX: [0.54, 0.56, 0.58]},
    }
    markdown = write_report(_hand_made_run(tmp_path / "a", apart)).markdown.read_text()
    assert (
        "On all real data, bert scores best: F1-macro 0.810 ± 0.025 against tfidf's "
        "0.710 ± 0.025 (the runner-up); the gap of +0.100 is beyond noise (paired over seeds "
        "and test texts: 95% CI [+0.100, +0.100], P(improvement) 1.00, corrected p < 0.001)."
        in markdown
    )
    assert "bert, 10% real data: synthetic data helped" in markdown
    assert "tfidf, 10% real data: synthetic data had no detectable effect; best mix" in markdown
    row = "| — | 100% real (all real, reference) | 0.810 ± 0.025 | 0.710 ± 0.025 | bert |"
    assert f"{row} +0.100 [+0.100, +0.100] | beyond noise |" in markdown
    assert "| bert (primary) | tfidf_logreg | {} | 9 | 1.50 | 0.50 |" in markdown
    # The headline and ranking are the primary classifier's alone.
    assert "All real data (the reference): F1-macro 0.810 ± 0.025" in markdown

    # Per seed bert leads by 0, 0.02 and 0.01: a lead, but not a consistent one.
    close = {
        "bert": {ALL_REAL: [0.70, 0.72, 0.74], SMALL: [0.5, 0.5, 0.5]},
        "tfidf": {ALL_REAL: [0.70, 0.70, 0.73], SMALL: [0.5, 0.5, 0.5]},
    }
    markdown = write_report(_hand_made_run(tmp_path / "b", close)).markdown.read_text()
    assert "the gap of +0.010 is within noise (paired over seeds" in markdown
    # The same mean gap on every seed is a consistent lead, which unpaired intervals missed.
    close["tfidf"][ALL_REAL] = [0.69, 0.71, 0.73]
    markdown = write_report(_hand_made_run(tmp_path / "c", close)).markdown.read_text()
    assert "the gap of +0.010 is beyond noise (paired over seeds" in markdown


def test_single_classifier_report_has_no_comparison(tmp_path: Path) -> None:
    scores = {"tfidf": {ALL_REAL: [0.70, 0.71, 0.72], SMALL: [0.5, 0.5, 0.5]}}
    markdown = write_report(_hand_made_run(tmp_path, scores)).markdown.read_text()
    assert "Classifiers compared" not in markdown
    assert "compares" not in markdown
