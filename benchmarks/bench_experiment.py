"""Wall time and fits per second of the demo grid (shipped CEDR, rule-based source, 1 seed)
with one worker vs one per core, and the share of time spent composing mixes vs fitting.

Run: `make bench` (or `python benchmarks/bench_experiment.py --jobs 1 2`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from synthmix.demo import demo_config
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import run_experiment


def time_grid(jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        config = demo_config(Path(folder), seeds=1)
        started = time.perf_counter()
        outcome = run_experiment(config, Path(folder) / "run", jobs=jobs, progress=False)
        wall = time.perf_counter() - started
        records = ResultsStore(Path(folder) / "run").records()
    return {
        "jobs": jobs,
        "fits": outcome.ran,
        "wall_s": round(wall, 2),
        "fits_per_s": round(outcome.ran / wall, 3),
        "compose_s": round(sum(r["timings"]["compose_s"] for r in records), 2),
        "featurise_s": round(sum(r["timings"].get("featurise_s", 0.0) for r in records), 2),
        "fit_s": round(sum(r["timings"]["fit_s"] for r in records), 2),
        "predict_s": round(sum(r["timings"]["predict_s"] for r in records), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    args = parser.parse_args()
    rows = [time_grid(jobs) for jobs in args.jobs]
    for row in rows:
        print(json.dumps(row))
    if len(rows) > 1:
        speedup = rows[0]["wall_s"] / rows[-1]["wall_s"]
        print(f"speed-up with {rows[-1]['jobs']} workers: {speedup:.2f}x")


if __name__ == "__main__":
    main()
