"""The demo grid (shipped CEDR, rule-based EDA source, `tfidf_logreg`) run by the local
executor and by the Ray executor on the same cores, printed as JSON lines: wall time of each,
Ray's cluster start-up on its own, and the overhead ratio ray / local (issue 15's target:
at most 1.15x, start-up excluded). Each executor runs the grid in a fresh run directory, so
both featurise and fit everything.

Run: `python benchmarks/bench_executors.py [--seeds 3] [--cores 2] [--repeat 2]`; needs the
`ray` extra (`pip install 'synthmix[ray]'`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from synthmix.demo import demo_config
from synthmix.experiment.executors import LocalExecutor, RayExecutor, import_ray
from synthmix.experiment.runner import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best counts")
    args = parser.parse_args()
    ray = import_ray()
    started = time.perf_counter()
    ray.init(num_cpus=args.cores, num_gpus=0, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - started
    print(json.dumps({"ray_startup_s": round(startup, 2), "cores": args.cores}), flush=True)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for round_ in range(args.repeat):
                for name in ("local", "ray"):
                    executor = (
                        LocalExecutor(args.cores)
                        if name == "local"
                        else RayExecutor(jobs=args.cores)
                    )
                    config = demo_config(Path(folder), seeds=args.seeds)
                    run_dir = Path(folder) / f"{name}-{round_}"
                    began = time.perf_counter()
                    outcome = run_experiment(config, run_dir, progress=False, executor=executor)
                    seconds = time.perf_counter() - began
                    times[name].append(seconds)
                    print(
                        json.dumps(
                            {"executor": name, "fits": outcome.ran, "wall_s": round(seconds, 2)}
                        ),
                        flush=True,
                    )
    finally:
        ray.shutdown()
    local, on_ray = min(times["local"]), min(times["ray"])
    print(
        json.dumps(
            {
                "local_s": round(local, 2),
                "ray_s": round(on_ray, 2),
                "overhead_ratio": round(on_ray / local, 3),
                "with_startup_ratio": round((on_ray + startup) / local, 3),
                "target": 1.15,
            }
        )
    )


if __name__ == "__main__":
    main()
