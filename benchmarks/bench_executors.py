"""The demo grid (shipped CEDR, rule-based EDA source, `tfidf_logreg`) run by the local
executor and by the Ray executor on the same cores, printed as JSON lines: wall time of each,
Ray's cluster start-up on its own, and the overhead ratio ray / local (issue 15's target:
at most 1.15x, start-up excluded). Each executor runs the grid in a fresh run directory, so
both featurise and fit everything.

On a busy machine one pair of runs says little (0.93x to 1.93x were seen on shared cores), so
the two alternate in `--repeat` rounds, the order switched each round, and the summary gives
each round's ratio, their median, the best-of ratio, and the CPU seconds of each run (this
process and its descendants, Ray's workers included; a wall-time ratio far from the CPU-time
ratio means other load interfered). The load average before each run is printed too.

Run: `python benchmarks/bench_executors.py [--seeds 3] [--cores 2] [--repeat 3]`; needs the
`ray` extra (`pip install 'synthmix[ray]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import psutil  # a dependency of ray

from synthmix.demo import demo_config
from synthmix.experiment.executors import LocalExecutor, RayExecutor, import_ray
from synthmix.experiment.runner import run_experiment


def tree_cpu_s() -> float:
    """CPU seconds of this process, its waited-for children and its live descendants."""
    me = psutil.Process()
    own = me.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue  # gone meanwhile
        total += times.user + times.system + times.children_user + times.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of one run of each")
    args = parser.parse_args()
    ray = import_ray()
    started = time.perf_counter()
    ray.init(num_cpus=args.cores, num_gpus=0, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - started
    print(json.dumps({"ray_startup_s": round(startup, 2), "cores": args.cores}), flush=True)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    cpu: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.repeat):
                order = ("local", "ray") if round_ % 2 == 0 else ("ray", "local")
                for name in order:
                    executor = (
                        LocalExecutor(args.cores)
                        if name == "local"
                        else RayExecutor(jobs=args.cores)
                    )
                    config = demo_config(Path(folder), seeds=args.seeds)
                    run_dir = Path(folder) / f"{name}-{round_}"
                    load = os.getloadavg()[0]
                    began, cpu_began = time.perf_counter(), tree_cpu_s()
                    outcome = run_experiment(config, run_dir, progress=False, executor=executor)
                    seconds = time.perf_counter() - began
                    cpu_s = tree_cpu_s() - cpu_began
                    times[name].append(seconds)
                    cpu[name].append(cpu_s)
                    record = {"executor": name, "fits": outcome.ran, "wall_s": round(seconds, 2)}
                    record |= {"cpu_s": round(cpu_s, 2), "load_before": round(load, 2)}
                    print(json.dumps(record), flush=True)
    finally:
        ray.shutdown()
    local, on_ray = min(times["local"]), min(times["ray"])
    ratios = [r / v for r, v in zip(times["ray"], times["local"], strict=True)]
    cpu_ratio = statistics.median(cpu["ray"]) / statistics.median(cpu["local"])
    print(
        json.dumps(
            {
                "local_s": round(local, 2),
                "ray_s": round(on_ray, 2),
                "overhead_ratio": round(statistics.median(ratios), 3),
                "ratio_per_round": [round(r, 3) for r in ratios],
                "best_of_ratio": round(on_ray / local, 3),
                "cpu_ratio": round(cpu_ratio, 3),
                "with_startup_ratio": round((on_ray + startup) / local, 3),
                "target": 1.15,
            }
        )
    )


if __name__ == "__main__":
    main()
