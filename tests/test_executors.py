"""The grid on a real local Ray cluster (started once for the module): the same records as the
local executor, resume after a killed driver, a failing fit, and the config and CLI edges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthmix.classifiers.registry import ClassifierConfig
from synthmix.core.errors import ConfigError
from synthmix.experiment.config import (
    ExperimentConfig,
    load_experiment,
    parse_experiment,
    with_executor,
)
from synthmix.experiment.executors import ExecutorConfig, FitFailed
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import run_experiment
from synthmix.experiment.sources import SourceConfig

# What differs between two runs of one fit: when it finished and how long it took.
_CIRCUMSTANCES = ("timings", "finished_at", "versions")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    # num_gpus=0: the same cluster on a machine with a GPU.
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _tiny(experiment_files: Path, executor: str = "local") -> ExperimentConfig:
    """3 cells x 1 seed (all real, a file source, a rule-based source), fitted by the
    shared-counts TF-IDF and by a per-cell TF-IDF, which fits on texts as transformers do."""
    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.plans.synthetic_ratios = []
    config.seeds = [0]
    config.sources[0].plans = ["half_and_half"]
    eda = SourceConfig(name="eda", augment={"alpha": 0.1}, plans=["synthetic_only"])
    config.sources.append(eda)
    per_cell = {"max_iter": 200, "features": "per_cell", "char_ngrams": (2, 3)}
    config.classifiers = [
        ClassifierConfig("tfidf_logreg", {"max_iter": 200}),
        ClassifierConfig("tfidf_logreg", per_cell, "per-cell"),
    ]
    config.classifier = ClassifierConfig()
    config.executor = ExecutorConfig(kind=executor)  # type: ignore[arg-type]
    return config


def _outcomes(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {
        record["key"]: {k: v for k, v in record.items() if k not in _CIRCUMSTANCES}
        for record in ResultsStore(run_dir).records()
    }


def test_ray_gives_the_records_of_the_local_executor(
    ray_cluster: Any, experiment_files: Path, tmp_path: Path
) -> None:
    t0 = time.perf_counter()
    local = run_experiment(_tiny(experiment_files), tmp_path / "local", jobs=1, progress=False)
    print(f"local grid: {time.perf_counter() - t0:.1f}s")
    started = time.perf_counter()
    on_ray = run_experiment(
        _tiny(experiment_files, "ray"), tmp_path / "ray", jobs=2, progress=False
    )
    print(f"ray grid: {time.perf_counter() - started:.1f}s for {on_ray.ran} fits")
    assert local.ran == on_ray.ran == 6  # 3 cells, two classifiers
    records = _outcomes(tmp_path / "ray")
    assert len(ResultsStore(tmp_path / "ray").records()) == 6  # each once
    assert records == _outcomes(tmp_path / "local")  # metrics, predictions, mixes
    assert {r["classifier"]["label"] for r in records.values()} == {"tfidf_logreg", "per-cell"}
    # A run directory of one executor is resumed by the other: where fits ran is no identity.
    again = run_experiment(_tiny(experiment_files), tmp_path / "ray", jobs=1, progress=False)
    assert (again.ran, again.reused) == (0, 6)


def test_a_failing_fit_is_named_and_the_others_are_kept(
    ray_cluster: Any, experiment_files: Path, tmp_path: Path
) -> None:
    config = load_experiment(experiment_files / "experiment.yaml")
    config.plans.learning_curve = [1.0]
    config.sources = []
    config.seeds = [0, 1]
    config.classifiers = [
        ClassifierConfig("tfidf_logreg", {"max_iter": 200}),
        # No n-gram occurs in a million texts: every fit of this one raises.
        ClassifierConfig("tfidf_logreg", {"features": "per_cell", "min_df": 10**6}, "broken"),
    ]
    config.classifier = ClassifierConfig()
    config.executor = ExecutorConfig(kind="ray")
    with pytest.raises(FitFailed) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    message = str(caught.value)
    assert message.startswith("fit failed: broken ")
    assert "seed=" in message and "(and 1 more)" in message and "\n" not in message
    kept = ResultsStore(tmp_path / "run").records()
    assert sorted((r["classifier"]["label"], r["seed"]) for r in kept) == [
        ("tfidf_logreg", 0),
        ("tfidf_logreg", 1),
    ]


def test_a_killed_ray_driver_resumes_without_loss_or_doubles(
    ray_cluster: Any, experiment_files: Path, tmp_path: Path
) -> None:
    """SIGKILL of `synthmix experiment --executor ray` (its private cluster goes with it),
    then the same run resumed on Ray: every fit once, equal to an uninterrupted run."""
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "synthmix", "experiment", str(experiment_files / "experiment.yaml"),
        "--out", str(run_dir), "--jobs", "1", "--executor", "ray", "--no-report",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and len(results.read_text(encoding="utf-8").splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {json.loads(line)["key"] for line in results.read_text().splitlines()}
    assert 3 <= len(done_before) < 16, "the kill should land mid-run"

    config = load_experiment(experiment_files / "experiment.yaml")
    config.executor = ExecutorConfig(kind="ray")
    outcome = run_experiment(config, run_dir, progress=False)
    assert (outcome.reused, outcome.ran) == (len(done_before), 16 - len(done_before))
    keys = [r["key"] for r in ResultsStore(run_dir).records()]
    assert len(keys) == len(set(keys)) == 16

    config.executor = ExecutorConfig()
    run_experiment(config, tmp_path / "fresh", jobs=1, progress=False)
    assert _outcomes(run_dir) == _outcomes(tmp_path / "fresh")


def test_a_gpu_fit_on_a_cluster_without_gpus_is_refused_before_any_fit(
    ray_cluster: Any, experiment_files: Path, tmp_path: Path
) -> None:
    config = load_experiment(experiment_files / "experiment.yaml")
    config.classifier = ClassifierConfig("transformer")
    config.executor = ExecutorConfig(kind="ray")
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    assert str(caught.value) == (
        "executor.num_gpus: each transformer fit asks for 1 GPU, but the Ray cluster has none "
        "that large; set executor.num_gpus: 0 to fit on CPUs"
    )
    assert ResultsStore(tmp_path / "run").records() == []


def test_without_ray_one_line_says_how_to_install_it(
    experiment_files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    config = with_executor(load_experiment(experiment_files / "experiment.yaml"), "ray", None)
    with pytest.raises(ConfigError) as caught:
        run_experiment(config, tmp_path / "run", progress=False)
    assert str(caught.value) == (
        "the Ray executor needs Ray, an optional extra: pip install 'synthmix[ray]'"
    )


def _parse(executor: Any) -> ExperimentConfig:
    raw = {"name": "x", "data": {"train": "train.csv"}, "executor": executor}
    return parse_experiment(raw, "experiment.yaml")


def test_the_executor_is_read_from_the_yaml_and_the_command_line() -> None:
    assert _parse("ray").executor == ExecutorConfig(kind="ray")
    full = _parse({"kind": "ray", "address": "ray://head:10001", "num_gpus": 0.5})
    assert full.executor == ExecutorConfig("ray", "ray://head:10001", 1.0, 0.5)
    assert "executor" not in full.to_dict()  # where fits run is not part of a run's identity
    chosen = with_executor(_parse("local"), "ray", "auto").executor
    assert (chosen.kind, chosen.address) == ("ray", "auto")
    with pytest.raises(ConfigError) as caught:
        _parse({"kind": "dask"})
    assert str(caught.value) == (
        "experiment.yaml: executor.kind: 'dask' is not allowed (use 'local' or 'ray')"
    )
    with pytest.raises(ConfigError, match="unknown key 'gpus' "):
        _parse({"kind": "ray", "gpus": 1})
    with pytest.raises(ConfigError, match=r"^--address: joins a Ray cluster; add --executor ray$"):
        with_executor(_parse("local"), None, "auto")


def _close(left: Any, right: Any) -> bool:
    """Equal, floats to 1e-5 relative or 1e-6 absolute: BLAS sums in a one-thread Ray worker
    differ in the last bits of the float32 embeddings (~1e-7), and a small statistic (a
    bootstrap bound of a mean cosine near 0.01) carries that as ~2e-6 relative (seen)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_close(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_close, left, right))
    if isinstance(left, float) and isinstance(right, float):
        return left == pytest.approx(right, rel=1e-5, abs=1e-6)
    return bool(left == right)


def test_source_quality_on_ray_equals_local_and_fills_the_runs_embedding_cache(
    ray_cluster: Any, experiment_files: Path, tmp_path: Path
) -> None:
    import sqlite3

    from synthmix.experiment.runner import measure_source_quality
    from synthmix.quality.config import QualityConfig

    quality = QualityConfig(
        sample_size=24, n_boot=5, self_bleu_sample=8, min_class_size=3,
        novelty_against_all_real=False,
    )  # fmt: skip
    config = _tiny(experiment_files)  # a file source and a rule-based one
    started = time.perf_counter()
    local = measure_source_quality(config, tmp_path / "local", quality, progress=False)
    config.executor = ExecutorConfig(kind="ray")
    print(f"quality local: {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    on_ray = measure_source_quality(config, tmp_path / "ray", quality, progress=False)
    print(f"quality ray: {time.perf_counter() - started:.1f}s")

    # On Ray, each source's file as its task finishes.
    assert sorted(p.name for p in on_ray) == sorted(p.name for p in local)
    assert sorted(p.name for p in local) == ["eda.json", "heldout.json"]
    for mine, theirs in zip(sorted(on_ray), sorted(local), strict=True):
        assert _close(json.loads(mine.read_text()), json.loads(theirs.read_text()))

    def vectors(run: str) -> int:
        with sqlite3.connect(tmp_path / run / "embeddings.sqlite") as db:
            (count,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        return int(count)

    assert vectors("ray") == vectors("local") > 0  # what the tasks embedded, the driver kept
    assert measure_source_quality(config, tmp_path / "ray", quality, progress=False) == []
