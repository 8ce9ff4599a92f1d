from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthmix.core.errors import ConfigError, DataError
from synthmix.experiment.config import load_experiment
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import RunDir, read_run_info
from synthmix.experiment.runner import run_experiment

CARD = "src/synthmix/demo_data/cedr_emotions/card.yaml"


def test_full_run_records_everything(experiment_files: Path, tmp_path: Path) -> None:
    config = load_experiment(experiment_files / "experiment.yaml")
    outcome = run_experiment(config, tmp_path / "run", jobs=2, progress=False)
    # real: 0.1 (small-real reference), 0.5, 1.0; source: 3 fixed plans + 2 ratios
    assert (outcome.total, outcome.ran, outcome.reused) == (16, 16, 0)
    records = ResultsStore(tmp_path / "run").records()
    assert len({r["key"] for r in records}) == 16
    all_real = [r for r in records if r["cell_key"] == "real_only|-|1|0"]
    assert {r["seed"] for r in all_real} == {0, 1}
    assert all(0.2 < r["metrics"]["f1_macro"] < 0.9 for r in records)
    info = read_run_info(tmp_path / "run")
    assert info["config"]["seeds"] == [0, 1]
    assert info["data"]["train"]["rows"] == 742
    assert info["data"]["sources"]["heldout"]["rows"] == 742
    assert {"python", "scikit-learn", "numpy", "synthmix"} <= set(info["versions"])
    assert info["classifier"] == {"name": "tfidf_logreg", "params": {"max_iter": 200}}
    from synthmix.report import write_report

    write_report(tmp_path / "run")
    run = RunDir(tmp_path / "run")
    named = {
        run.run_file,
        run.results_file,
        run.sources_file,
        run.features_dir,
        run.report_html,
        run.report_markdown,
        run.figures_dir,
    }
    # every file the runner and the report wrote is one RunDir names
    assert set(run.root.iterdir()) <= named and run.results_file in set(run.root.iterdir())


def test_rerun_skips_finished_cells_and_extra_seeds_extend(
    experiment_files: Path, tmp_path: Path
) -> None:
    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.sources = []
    first = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    again = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert (first.ran, again.ran, again.reused) == (2, 0, 2)
    config.seeds = [0, 1, 2]
    more = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert (more.ran, more.reused) == (1, 2)


def test_changed_config_refuses_the_old_run_dir(experiment_files: Path, tmp_path: Path) -> None:
    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.sources = []
    config.seeds = [0]
    run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    config.classifier.params = {"C": 1.0}
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert str(caught.value) == (
        f"{tmp_path / 'run'}: holds results of a different experiment (config or data changed); "
        "pass another --out or delete that folder"
    )


def test_demo_sets_an_outdated_run_dir_aside(experiment_files: Path, tmp_path: Path) -> None:
    from synthmix.demo import run_grid

    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.sources = []
    config.seeds = [0]
    run_dir = tmp_path / "run"
    run_grid(config, run_dir, jobs=1, progress=False)
    before = ResultsStore(run_dir).records()
    config.classifier.params = {"C": 1.0}  # as an upgrade changing the demo's settings would
    run_grid(config, run_dir, jobs=1, progress=False)
    (aside,) = tmp_path.glob("run-before-*")
    assert ResultsStore(aside).records() == before  # nothing of the old run is lost
    assert read_run_info(run_dir)["classifier"]["params"] == {"C": 1.0}
    assert len(ResultsStore(run_dir).records()) == len(before)


def test_resume_after_kill(experiment_files: Path, tmp_path: Path) -> None:
    """SIGKILL mid-run, then rerun: finished fits are reused, none is lost or doubled, and the
    resumed results equal an uninterrupted run's."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "synthmix.cli.app",
        "experiment",
        str(experiment_files / "experiment.yaml"),
        "--out",
        str(run_dir),
        "--jobs",
        "1",
        "--no-report",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text(encoding="utf-8").splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {
        json.loads(line)["key"] for line in results.read_text().splitlines() if line.strip()
    }
    assert 3 <= len(done_before) < 16, "the kill should land mid-run"
    with results.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn')  # what a kill during a write leaves behind

    config = load_experiment(experiment_files / "experiment.yaml")
    outcome = run_experiment(config, run_dir, jobs=1, progress=False)
    assert outcome.reused == len(done_before)
    assert outcome.ran == 16 - len(done_before)
    records = ResultsStore(run_dir).records()
    assert sorted(r["key"] for r in records) == sorted({r["key"] for r in records})
    assert len(records) == 16

    fresh = tmp_path / "fresh"
    run_experiment(config, fresh, jobs=2, progress=False)
    scores = {r["key"]: r["metrics"]["f1_macro"] for r in ResultsStore(fresh).records()}
    assert {r["key"]: r["metrics"]["f1_macro"] for r in records} == pytest.approx(scores)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_with_a_killed_run(experiment_files: Path, tmp_path: Path) -> None:
    """kill -9 of `synthmix experiment --jobs 2` leaves no worker fitting for nobody."""
    command = [
        sys.executable, "-m", "synthmix", "experiment", str(experiment_files / "experiment.yaml"),
        "--out", str(tmp_path / "run"), "--jobs", "2", "--no-report",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = tmp_path / "run" / "results.jsonl"
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and not (results.exists() and results.stat().st_size):
        workers |= {pid for pid in _children(process.pid) if _alive(pid)}
        time.sleep(0.05)
    assert workers, "the run should have started worker processes"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]


def test_bad_source_label_fails_before_training(experiment_files: Path, tmp_path: Path) -> None:
    synthetic = pd.read_csv(experiment_files / "synth.csv")
    synthetic.loc[2, "label"] = "happiness"
    path = tmp_path / "synth.csv"
    synthetic.to_csv(path, index=False)
    config = load_experiment(experiment_files / "experiment.yaml")
    config.sources[0].path = str(path)
    with pytest.raises(DataError) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    assert str(caught.value) == (
        f"{path}: row 3: label 'happiness' does not occur in the training data "
        f"({experiment_files / 'train.csv'})"
    )
    assert not (tmp_path / "run").exists()


def test_single_class_source_fails_before_training(experiment_files: Path, tmp_path: Path) -> None:
    synthetic = pd.read_csv(experiment_files / "synth.csv")
    path = tmp_path / "synth.csv"
    synthetic[synthetic["label"] == "anger"].to_csv(path, index=False)
    config = load_experiment(experiment_files / "experiment.yaml")
    config.sources[0].path = str(path)
    with pytest.raises(DataError) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    assert str(caught.value) == (f"{path}: only one class ('anger'); a classifier needs at least 2")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\n", "missing 'data'"),
        (
            "name: x\ndata: {train: a.csv}\nplans: {learnin_curve: [1]}\n",
            "plans: unknown key 'learnin_curve' (allowed: learning_curve, synthetic_only, "
            "half_and_half, real_plus_equal, small_real_fraction, synthetic_ratios, "
            "synthetic_counts)",
        ),
        (
            "name: x\ndata: {train: a.csv}\nseeds: [0, one]\n",
            "seeds[1]: expected int, got str 'one'",
        ),
        ("name: x\ndata: {train: a.csv}\nseeds: []\n", "'seeds' must name at least one seed"),
        ("name: x\ndata: [train]\n", "data: expected a mapping, got list ['train']"),
        ("name: x\ndata: {train: a.csv\n", "invalid YAML"),
    ],
)
def test_config_errors_are_one_line(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_labeled_output_feeds_back_as_a_source(experiment_files: Path, tmp_path: Path) -> None:
    """Label held-out texts with the cascade, then use `labeled.jsonl` as a source: the
    rows the cascade decided train the source's cells; undecided ones are left out."""
    from synthmix.cards.card import load_card
    from synthmix.labeling import parse_config
    from synthmix.labeling.run import label_texts, load_texts, write_run

    card = load_card(Path(__file__).resolve().parents[1] / CARD)
    # Real CEDR sentences the experiment's real data does not hold, labels hidden.
    held_out = pd.read_csv(experiment_files / "synth.csv").groupby("label").head(15)
    held_out[["text"]].to_csv(tmp_path / "unlabeled.csv", index=False)
    cascade = parse_config(
        {
            "fallback": "none",  # undecided texts get no label: the loader must cope
            "stages": [
                {"type": "keywords", "threshold": 0.5},
                {"type": "embedding", "threshold": 0.5},
            ],
        },
        "cascade",
    )
    run = label_texts(load_texts(tmp_path / "unlabeled.csv"), card, cascade)
    write_run(run, tmp_path / "labeled.jsonl")
    decided = [d for d in run.result.decisions if d.decided]
    assert 0 < len(decided) < len(held_out)
    assert any(d.label is None for d in run.result.decisions)

    config = yaml.safe_load((experiment_files / "experiment.yaml").read_text(encoding="utf-8"))
    config["data"] = {k: str(experiment_files / v) for k, v in config["data"].items()}
    config["sources"] = [{"path": "labeled.jsonl", "name": "labeled"}]
    config["plans"] = {
        "learning_curve": [1.0],
        "synthetic_ratios": [1.0],
        "synthetic_only": False,
        "half_and_half": False,
    }
    config["seeds"] = 1
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    outcome = run_experiment(
        load_experiment(tmp_path / "experiment.yaml"), tmp_path / "run", jobs=1, progress=False
    )
    records = ResultsStore(tmp_path / "run").records()
    labeled = [r for r in records if r["cell"]["source"] == "labeled"]
    assert outcome.ran == len(records) and len(labeled) == 2  # real+equal, 10% real + 100%
    assert all(sum(r["synthetic_counts"].values()) > 0 for r in labeled)
    info = read_run_info(tmp_path / "run")
    assert info["data"]["sources"]["labeled"]["rows"] == len(decided)
    counts = info["data"]["sources"]["labeled"]["class_counts"]
    assert counts == dict(Counter(str(d.label) for d in decided))


def test_labeled_source_errors_count_rows_as_the_file_does(
    experiment_files: Path, tmp_path: Path
) -> None:
    rows = [
        {"text": "Мне страшно", "label": None, "confidence": 0.2, "decided": False},
        {"text": "Ура, отпуск!", "label": "joy", "confidence": 0.9, "decided": True},
        {"text": "Я так счастлив", "label": "happiness", "confidence": 0.9, "decided": True},
    ]
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    config = load_experiment(experiment_files / "experiment.yaml")
    config.sources[0].path = str(path)
    with pytest.raises(DataError) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    assert str(caught.value) == (
        f"{path}: row 3: label 'happiness' does not occur in the training data "
        f"({experiment_files / 'train.csv'})"
    )
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", "utf-8")
    with pytest.raises(DataError, match="no row the labeling cascade decided"):
        run_experiment(config, tmp_path / "run", progress=False)


def _count_featurised(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Texts passed to the n-gram counter, per call (jobs=1 keeps counting in-process)."""
    from synthmix.classifiers.features import NgramSpec

    calls: list[int] = []
    original = NgramSpec.counts

    def counting(self: NgramSpec, texts: list[str]) -> object:
        calls.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(NgramSpec, "counts", counting)
    return calls


def test_each_text_is_featurised_once_and_a_resumed_run_reuses_them(
    experiment_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_featurised(monkeypatch)
    config = load_experiment(experiment_files / "experiment.yaml")
    run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    distinct = {
        *pd.read_csv(experiment_files / "train.csv")["text"],
        *pd.read_csv(experiment_files / "test.csv")["text"],
        *pd.read_csv(experiment_files / "synth.csv")["text"],
    }
    # 16 fits, one counting pass over the distinct texts they train and test on.
    assert calls == [len(distinct)]
    records = ResultsStore(tmp_path / "run").records()
    assert all(
        set(r["timings"]) == {"compose_s", "featurise_s", "fit_s", "predict_s"} for r in records
    )
    timings = read_run_info(tmp_path / "run")["timings"]
    assert timings["fits"] == 16 and timings["fits_per_s"] > 0
    assert timings["texts_featurised"] == len(distinct)

    calls.clear()
    config.seeds = [0, 1, 2]  # 8 new fits, on texts counted before
    outcome = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert outcome.ran == 8
    assert calls == []
    timings = read_run_info(tmp_path / "run")["timings"]
    assert timings["texts_featurised"] == 0
    assert (timings["fits"], timings["sessions"], timings["total_fits"]) == (8, 2, 24)
    assert timings["total_grid_s"] > timings["grid_s"]


def test_a_cell_learns_nothing_from_texts_only_other_cells_see(
    experiment_files: Path, tmp_path: Path
) -> None:
    """The real-only cells' predictions are the same whether or not a source's texts share
    the run's feature store."""
    config = load_experiment(experiment_files / "experiment.yaml")
    config.seeds = [0]
    run_experiment(config, tmp_path / "with", jobs=1, progress=False)
    config.sources = []
    run_experiment(config, tmp_path / "without", jobs=1, progress=False)

    def real_only(run: str) -> dict[str, list[int]]:
        records = ResultsStore(tmp_path / run).records()
        return {r["key"]: r["predictions"] for r in records if r["cell"]["plan"] == "real_only"}

    without = real_only("without")  # 50% and 100% real (10% is planned for sources only)
    assert len(without) == 2
    assert {key: real_only("with")[key] for key in without} == without


def test_a_run_of_the_per_cell_tfidf_is_refused_not_resumed(
    experiment_files: Path, tmp_path: Path
) -> None:
    """Results fitted before counts were shared (run.json without a method) are not mixed
    with hashed fits under the same params."""
    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.sources = []
    config.seeds = [0]
    run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    info = read_run_info(tmp_path / "run")
    assert info["classifiers"][0]["method"].startswith("hashed n-gram counts")
    for entry in info["classifiers"]:
        entry.pop("method")
    (tmp_path / "run" / "run.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ConfigError, match="holds results of a different experiment"):
        run_experiment(config, tmp_path / "run", jobs=1, progress=False)


def test_eda_cells_compose_alike_in_workers_and_here(
    experiment_files: Path, tmp_path: Path
) -> None:
    """A derived source's cells are grouped by real sample and seed, each group augmenting
    once in a worker: the results equal composing everything in this process."""
    from synthmix.experiment.sources import SourceConfig

    config = load_experiment(experiment_files / "experiment.yaml")
    config.sources = [SourceConfig(name="eda", augment={"alpha": 0.1})]
    config.plans.learning_curve = [1.0]
    config.seeds = [0]
    run_experiment(config, tmp_path / "parallel", jobs=2, progress=False)
    run_experiment(config, tmp_path / "serial", jobs=1, progress=False)

    def scores(run: str) -> dict[str, object]:
        records = ResultsStore(tmp_path / run).records()
        return {r["key"]: (r["synthetic_counts"], r["predictions"]) for r in records}

    assert scores("parallel") == scores("serial")
    assert len(scores("serial")) == 2 + 5  # 10% and 100% real; 3 fixed plans + 2 ratios
    timings = read_run_info(tmp_path / "serial")["timings"]
    assert timings["augmented_texts"] > 0


def test_small_real_cells_get_their_own_extra_seeds(experiment_files: Path, tmp_path: Path) -> None:
    """`small_real_seeds` adds seeds to the small-real cells alone (mixes and their baseline),
    and added to a finished run, runs only those fits."""
    config = load_experiment(experiment_files / "experiment.yaml")
    config.seeds = [0]
    first = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert first.ran == 8
    config.small_real_seeds = [0, 1, 2]
    more = run_experiment(config, tmp_path / "run", jobs=1, progress=False)
    assert (more.ran, more.reused) == (6, 8)
    seeds: dict[str, set[int]] = {}
    for record in ResultsStore(tmp_path / "run").records():
        seeds.setdefault(record["cell_key"], set()).add(record["seed"])
    small = {key for key, found in seeds.items() if found == {0, 1, 2}}
    assert small == {
        "real_only|-|0.1|0",
        "small_real_plus_synthetic|heldout|0.1|0.5",
        "small_real_plus_synthetic|heldout|0.1|1",
    }
    assert all(found == {0} for key, found in seeds.items() if key not in small)
    assert read_run_info(tmp_path / "run")["small_real_seeds"] == [0, 1, 2]


def test_small_real_seeds_must_include_the_others(tmp_path: Path) -> None:
    from synthmix.experiment.config import parse_experiment

    raw = {"name": "x", "data": {"train": "t.csv"}, "seeds": [0, 1], "small_real_seeds": [1, 2]}
    with pytest.raises(ConfigError) as caught:
        parse_experiment(raw, "e.yaml")
    assert str(caught.value) == (
        "e.yaml: 'small_real_seeds' must include every seed of 'seeds' (missing 0)"
    )
    assert parse_experiment({**raw, "small_real_seeds": 5}, "e.yaml").small_real_seeds == [
        0, 1, 2, 3, 4,
    ]  # fmt: skip


def test_composed_mixes_hold_one_copy_of_each_text(experiment_files: Path) -> None:
    """pandas' string columns make new string objects on every `tolist()`; the mixes a run
    composes up front share one per distinct text (the devlog grid held 3.8 GB of copies)."""
    from synthmix.experiment.mixing import compose, plan_cells
    from synthmix.experiment.runner import load_experiment_data
    from synthmix.experiment.shared_features import GridStats, _compose_all

    config = load_experiment(experiment_files / "experiment.yaml")
    data = load_experiment_data(config)
    cells = plan_cells(config.plans, list(data.sources))
    tasks = [(cell, seed, config.classifier) for cell in cells for seed in config.seeds]
    composed = _compose_all(tasks, data.train, data.sources, 1, GridStats())
    first: dict[str, str] = {}
    copies = 0
    for item in composed:
        for text in [*item.texts, *item.labels]:
            copies += first.setdefault(text, text) is not text
    assert copies == 0
    assert len(composed) == len(tasks) > 4
    # The same values as composing alone.
    cell, seed, _ = composed[-1].task
    source = data.sources[cell.source] if cell.source is not None else None
    alone = compose(cell, data.train, source, seed)
    assert composed[-1].texts == alone.data.texts
    assert list(composed[-1].labels) == alone.data.labels
