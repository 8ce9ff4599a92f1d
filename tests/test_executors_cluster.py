"""The grid on a two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`), one node
removed mid-run: its fits are retried on the other, nothing is lost or stored twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from synthmix.experiment.config import load_experiment
from synthmix.experiment.executors import ExecutorConfig
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import RunOutcome, run_experiment


@pytest.mark.slow  # three Ray nodes start and stop: about 45 s on 2 busy cores
def test_a_node_removed_mid_run_loses_no_fit(experiment_files: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    # The head holds the driver's objects and runs no fit; each worker node one at a time.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False},
    )
    doomed = cluster.add_node(num_cpus=1, num_gpus=0)
    cluster.add_node(num_cpus=1, num_gpus=0)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        config = load_experiment(experiment_files / "experiment.yaml")  # 16 fits
        config.executor = ExecutorConfig(kind="ray")
        run_dir = tmp_path / "run"
        outcome: list[RunOutcome] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(run_experiment(config, run_dir, progress=False))
            except BaseException as exc:
                failure.append(exc)

        driver = threading.Thread(target=run)
        driver.start()
        results = run_dir / "results.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.is_alive():
            if results.exists() and len(results.read_text(encoding="utf-8").splitlines()) >= 2:
                break
            time.sleep(0.02)
        stored = len(results.read_text(encoding="utf-8").splitlines())
        cluster.remove_node(doomed, allow_graceful=False)
        driver.join(300)
        assert not failure, failure
        assert 2 <= stored < 16, "the node should go mid-run"
        assert outcome[0].ran == 16
        keys = [record["key"] for record in ResultsStore(run_dir).records()]
        assert len(keys) == len(set(keys)) == 16
    finally:
        ray.shutdown()
        cluster.shutdown()

    def scores(run: Path) -> dict[str, Any]:
        return {r["key"]: r["predictions"] for r in ResultsStore(run).records()}

    config.executor = ExecutorConfig()
    run_experiment(config, tmp_path / "local", jobs=1, progress=False)
    assert scores(run_dir) == scores(tmp_path / "local")
