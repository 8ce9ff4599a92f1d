"""Texts per second of the cascade's LLM stage on the bundled Gemma, before and after the
fast path, side by side in one run.

- before: every prompt evaluated from scratch (`prefix_cache=False`, the backend's old
  behaviour) and the answer generated up to `max_tokens` (8) with logprobs recorded.
- after: the few-shot prefix shared by all texts is evaluated once and reused from the
  llama.cpp context (`prefix_cache=True`; only the text and the answer cue are evaluated
  per text), and the label is read from one forward pass: the first answer token's
  distribution over the candidate labels (`score_tokens=1`).

Both see the same texts (short real CEDR test sentences), the card's examples as shots
(k=1 per class) and no answer cache. The report also checks that the fast path gives the
same labels and that its scores do not depend on the order texts come in (the prefix is
reused only at block boundaries, see `synthmix.llm.llamacpp._reuse_prefix`).

Run: `python benchmarks/bench_label.py --texts 20` (prints JSON lines; a few minutes on
2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from synthmix.cards.card import load_card
from synthmix.data.labeled import load_labeled
from synthmix.labeling.llm_stage import LLMStage
from synthmix.llm.llamacpp import LlamaCppBackend

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "src/synthmix/demo_data/cedr_emotions/card.yaml"
SHARED = ROOT.parent / "shared/datasets/cedr_emotions/test.csv"


def _texts(n: int) -> list[str]:
    path = SHARED if SHARED.exists() else ROOT / "src/synthmix/demo_data/cedr_emotions/test.csv"
    texts = [t for t in load_labeled(path).texts if len(t) < 150]
    return texts[:: max(1, len(texts) // n)][:n]


def _run(stage: LLMStage, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    rows = stage.score(texts)
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    card = load_card(CARD)
    texts = _texts(args.texts)
    rows: dict[str, np.ndarray] = {}
    speeds: dict[str, float] = {}
    for mode, prefix_cache, score_tokens in (("before", False, None), ("after", True, 1)):
        backend = LlamaCppBackend(n_ctx=2048, n_threads=args.threads, prefix_cache=prefix_cache)
        stage = LLMStage(card, backend, k=1, n_samples=5, score_tokens=score_tokens)
        stage.score(texts[:1])  # load the model (and, after, evaluate the prefix) untimed
        loaded = backend.stats.prompt_tokens
        rows[mode], seconds = _run(stage, texts)
        speeds[mode] = len(texts) / seconds
        print(
            json.dumps(
                {
                    "mode": mode,
                    "texts": len(texts),
                    "seconds": round(seconds, 2),
                    "texts_per_s": round(speeds[mode], 3),
                    "calls": backend.stats.requests - 1,
                    "prompt_tokens_per_text": round(
                        (backend.stats.prompt_tokens - loaded) / len(texts), 1
                    ),
                    "completion_tokens": backend.stats.completion_tokens,
                    "from_logprobs": all(a.from_logprobs for a in stage.last_answers.values()),
                }
            )
        )
        if mode == "after":
            again, _ = _run(stage, texts[::-1])
            order_free = bool(np.array_equal(again[::-1], rows[mode]))
    before, after = rows["before"], rows["after"]
    print(
        json.dumps(
            {
                "speedup": round(speeds["after"] / speeds["before"], 2),
                "same_label": float(np.mean(before.argmax(1) == after.argmax(1))),
                "max_score_diff": round(float(np.abs(before - after).max()), 4),
                "scores_independent_of_order": order_free,
            }
        )
    )


if __name__ == "__main__":
    main()
