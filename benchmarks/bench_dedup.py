"""MinHash LSH dedup of 100k short Russian texts, end to end, vs a plain datasketch loop.

Texts come from real CEDR sentences: each base text is a real sentence with about half of its
words replaced by random CEDR words (so base texts are far apart), and planted near-duplicates
copy a base text with one small edit (one word replaced, one word deleted, two words swapped,
or case and punctuation changed). Ground truth: a planted copy whose exact word-set Jaccard
with its source is >= the threshold must be removed.

Timed for the pipeline: `MinHashDedup.run` from raw strings to the keep mask (normalising,
shingling, hashing, LSH banding and querying, exact verification, keep-first resolution).
The plain loop builds a datasketch MinHash per document with one `update` per shingle and
does `MinHashLSH.query` + `insert`; it runs on a 10k subset and is extrapolated linearly to
the full size (its LSH grows, so the real 100k loop would be a little slower still).

Also timed: the incremental path (`IncrementalDedup.add`, exact + MinHash, one text at a time,
as generation feeds it) on the first `--incremental-size` texts.

`--baseline OLD.py` loads another version of the dedup module from a file (e.g. `git show
main:src/synthmix/dedup/stages.py > /tmp/old.py`, for a module that was one file) and times
its `MinHashDedup.run` and `IncrementalDedup.add` in the same run, interleaved with ours, so a
refactor's speed is compared on the same load.

Run: `python benchmarks/bench_dedup.py` (prints one JSON line).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

import synthmix.dedup as current
from synthmix.core.text import normalize
from synthmix.dedup import jaccard, resolve_backend

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = (
    REPO.parent / "shared" / "datasets" / "cedr_emotions" / "train.csv",
    REPO / "src" / "synthmix" / "demo_data" / "cedr_emotions" / "train.csv",
)
EDITS = ("replace", "delete", "swap", "restyle")


def load_sentences() -> list[str]:
    for path in CANDIDATES:
        if path.exists():
            return pd.read_csv(path, dtype=str, keep_default_na=False)["text"].tolist()
    raise SystemExit(f"no CEDR train.csv at {', '.join(map(str, CANDIDATES))}")


def make_base(sentences: list[str], count: int, rng: random.Random) -> list[str]:
    """Real sentences of >= 6 words with each word replaced by a random CEDR word with
    probability 0.5: two texts from the same sentence share about a quarter of their words."""
    pool = [s.split() for s in sentences if len(s.split()) >= 6]
    vocab = sorted({w for words in pool for w in words})
    texts = []
    for _ in range(count):
        words = [w if rng.random() < 0.5 else rng.choice(vocab) for w in rng.choice(pool)]
        texts.append(" ".join(words))
    return texts


def edit(text: str, kind: str, vocab: list[str], rng: random.Random) -> str:
    words = text.split()
    at = rng.randrange(1, len(words) - 1)
    if kind == "replace":
        words[at] = rng.choice(vocab)
    elif kind == "delete":
        del words[at]
    elif kind == "swap":
        words[at], words[at + 1] = words[at + 1], words[at]
    else:
        return text.upper() + "!!"
    return " ".join(words)


def make_corpus(total: int, planted: int, seed: int) -> tuple[list[str], list[tuple[int, int]]]:
    """`total` texts: base texts first, then `planted` edited copies of random base texts.
    Returns the texts and the (copy, source) positions of planted near-duplicates whose true
    Jaccard is >= 0.8."""
    rng = random.Random(seed)
    sentences = load_sentences()
    base = make_base(sentences, total - planted, rng)
    vocab = sorted({w for s in sentences for w in s.split()})
    sources = rng.sample(range(len(base)), planted)
    copies = [edit(base[s], EDITS[i % len(EDITS)], vocab, rng) for i, s in enumerate(sources)]
    texts = base + copies
    truth = [
        (len(base) + i, s)
        for i, s in enumerate(sources)
        if jaccard(set(normalize(copies[i]).split()), set(normalize(base[s]).split())) >= 0.8
    ]
    return texts, truth


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_pipeline(texts: list[str], repeats: int, versions: dict[str, Any]) -> dict[str, Any]:
    """Each version's `MinHashDedup.run`, the versions interleaved within every repeat."""
    stages = {
        name: module.MinHashDedup(threshold=0.8, num_perm=128, shingles="word")
        for name, module in versions.items()
    }
    runs: dict[str, list[tuple[Any, float, float]]] = {name: [] for name in versions}
    for _ in range(repeats):
        for name, stage in stages.items():
            keep = np.ones(len(texts), dtype=bool)
            runs[name].append(timed(partial(stage.run, texts, keep)))
    return {
        name: {
            "result": found[-1][0],
            "wall_s_best": min(r[1] for r in found),
            "wall_s_median": statistics.median(r[1] for r in found),
            "cpu_s_best": min(r[2] for r in found),
            "bands": stages[name].bands,
        }
        for name, found in runs.items()
    }


def run_incremental(texts: list[str], repeats: int, versions: dict[str, Any]) -> dict[str, Any]:
    """Each version's `IncrementalDedup.add` over `texts` (exact + MinHash): best wall time
    and the number kept."""
    best: dict[str, float] = {name: float("inf") for name in versions}
    kept: dict[str, int] = {}
    for _ in range(repeats):
        for name, module in versions.items():
            stream = module.IncrementalDedup([module.ExactDedup(), module.MinHashDedup()])
            added, wall, _ = timed(partial(feed, stream, texts))
            best[name] = min(best[name], wall)
            kept[name] = added
    return {name: {"wall_s_best": best[name], "kept": kept[name]} for name in versions}


def feed(stream: Any, texts: list[str]) -> int:
    return sum(stream.add(text) for text in texts)


def load_module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_dedup", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_plain_loop(texts: list[str]) -> tuple[set[int], float, float]:
    """The textbook datasketch loop; returns positions it calls duplicates (any candidate)."""
    from datasketch import MinHash, MinHashLSH

    def loop() -> set[int]:
        lsh = MinHashLSH(threshold=0.8, num_perm=128)
        flagged = set()
        for position, text in enumerate(texts):
            sketch = MinHash(num_perm=128)
            for token in set(normalize(text).split()):
                sketch.update(token.encode("utf-8"))
            if lsh.query(sketch):
                flagged.add(position)
            else:
                lsh.insert(position, sketch)
        return flagged

    return timed(loop)


def plain_subset(
    texts: list[str], truth: list[tuple[int, int]], size: int
) -> tuple[list[str], list[tuple[int, int]]]:
    """The first base texts plus the planted copies of those, `size` texts in all."""
    copies = [(c, s) for c, s in truth if s < size * 0.9]
    base_count = size - len(copies)
    copies = [(c, s) for c, s in copies if s < base_count]
    subset = texts[:base_count] + [texts[c] for c, _ in copies]
    return subset, [(base_count + i, s) for i, (_, s) in enumerate(copies)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=5_000)
    parser.add_argument("--plain-size", type=int, default=10_000)
    parser.add_argument("--incremental-size", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", help="another dedup module file to time side by side")
    args = parser.parse_args()

    texts, truth = make_corpus(args.total, args.planted, args.seed)
    versions: dict[str, Any] = {"ours": current}
    if args.baseline:
        versions["baseline"] = load_module(args.baseline)
    pipelines = run_pipeline(texts, args.repeats, versions)
    ours = pipelines["ours"]
    removed = {d.position for d in ours["result"].duplicates}
    caught = sum(copy in removed for copy, _ in truth)
    planted = {len(texts) - args.planted + i for i in range(args.planted)}
    stream_texts = texts[: args.incremental_size]
    streams = run_incremental(stream_texts, args.repeats, versions)

    subset, subset_truth = plain_subset(texts, truth, args.plain_size)
    flagged, plain_wall, plain_cpu = run_plain_loop(subset)
    plain_rate = len(subset) / plain_wall
    ours_rate = len(texts) / ours["wall_s_best"]
    report: dict[str, Any] = {
        "docs": len(texts),
        "backend": resolve_backend("auto"),
        "num_perm": 128,
        "threshold": 0.8,
        "bands": ours["bands"],
        "pipeline_wall_s_best": round(ours["wall_s_best"], 3),
        "pipeline_wall_s_median": round(ours["wall_s_median"], 3),
        "pipeline_cpu_s_best": round(ours["cpu_s_best"], 3),
        "pipeline_docs_per_s": round(ours_rate),
        "pipeline_docs_per_cpu_s": round(len(texts) / ours["cpu_s_best"]),
        "planted_true_near_dups": len(truth),
        "recall": round(caught / len(truth), 4),
        "removed": len(removed),
        "removed_not_planted": len(removed - planted),
        "incremental_docs": len(stream_texts),
        "incremental_docs_per_s": round(len(stream_texts) / streams["ours"]["wall_s_best"]),
        "plain_docs": len(subset),
        "plain_wall_s": round(plain_wall, 3),
        "plain_cpu_s": round(plain_cpu, 3),
        "plain_docs_per_s": round(plain_rate),
        "plain_extrapolated_wall_s": round(len(texts) / plain_rate, 1),
        "plain_recall_on_subset": round(
            sum(c in flagged for c, _ in subset_truth) / max(1, len(subset_truth)), 4
        ),
        "speedup_wall": round(ours_rate / plain_rate, 1),
    }
    if "baseline" in versions:
        base = pipelines["baseline"]
        base_removed = {d.position for d in base["result"].duplicates}
        base_stream = streams["baseline"]
        report |= {
            "baseline_pipeline_wall_s_best": round(base["wall_s_best"], 3),
            "baseline_pipeline_wall_s_median": round(base["wall_s_median"], 3),
            "baseline_pipeline_cpu_s_best": round(base["cpu_s_best"], 3),
            "baseline_pipeline_docs_per_s": round(len(texts) / base["wall_s_best"]),
            "pipeline_cpu_vs_baseline": round(base["cpu_s_best"] / ours["cpu_s_best"], 3),
            "pipeline_vs_baseline": round(base["wall_s_best"] / ours["wall_s_best"], 3),
            "same_removed_as_baseline": base_removed == removed,
            "baseline_incremental_docs_per_s": round(
                len(stream_texts) / base_stream["wall_s_best"]
            ),
            "incremental_vs_baseline": round(
                base_stream["wall_s_best"] / streams["ours"]["wall_s_best"], 3
            ),
            "same_incremental_kept_as_baseline": base_stream["kept"] == streams["ours"]["kept"],
        }
    report |= {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
