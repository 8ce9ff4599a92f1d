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

Run: `python benchmarks/bench_dedup.py` (prints one JSON line).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthmix.augment.eda import normalize
from synthmix.dedup.stages import MinHashDedup, jaccard, resolve_backend

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


def run_pipeline(texts: list[str], repeats: int) -> dict[str, Any]:
    stage = MinHashDedup(threshold=0.8, num_perm=128, shingles="word")
    runs = [
        timed(lambda: stage.run(texts, np.ones(len(texts), dtype=bool))) for _ in range(repeats)
    ]
    result = runs[-1][0]
    walls = [r[1] for r in runs]
    cpus = [r[2] for r in runs]
    return {
        "result": result,
        "wall_s_best": min(walls),
        "wall_s_median": statistics.median(walls),
        "cpu_s_best": min(cpus),
        "bands": stage.bands,
    }


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    texts, truth = make_corpus(args.total, args.planted, args.seed)
    ours = run_pipeline(texts, args.repeats)
    removed = {d.position for d in ours["result"].duplicates}
    caught = sum(copy in removed for copy, _ in truth)
    planted = {len(texts) - args.planted + i for i in range(args.planted)}

    subset, subset_truth = plain_subset(texts, truth, args.plain_size)
    flagged, plain_wall, plain_cpu = run_plain_loop(subset)
    plain_rate = len(subset) / plain_wall
    ours_rate = len(texts) / ours["wall_s_best"]
    print(
        json.dumps(
            {
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
                "plain_docs": len(subset),
                "plain_wall_s": round(plain_wall, 3),
                "plain_cpu_s": round(plain_cpu, 3),
                "plain_docs_per_s": round(plain_rate),
                "plain_extrapolated_wall_s": round(len(texts) / plain_rate, 1),
                "plain_recall_on_subset": round(
                    sum(c in flagged for c, _ in subset_truth) / max(1, len(subset_truth)), 4
                ),
                "speedup_wall": round(ours_rate / plain_rate, 1),
                "cpus": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
