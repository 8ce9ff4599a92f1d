"""Structured output on the bundled Gemma-3-270M base model: how often answers parse, and how
many texts a call gives, with and without a JSON schema.

For each strategy, the same generation run three times through `generate_until_unique`
(llama.cpp in-process, completion prompts as the demo sends them, `--calls` calls per class
over `--classes`): plain (a numbered list, read by the list parser), `structured` (the prompt
asks for {"texts": [...]}, and llama.cpp samples under the schema's grammar), and structured
with `--min-chars` as the schema's minLength for each text. Per run:
answers that gave no text (parse failures), how answers were read, texts parsed and texts
kept (unique, not truncated or degenerate) per call, the share of kept texts in Cyrillic (the
card is Russian), and seconds per call. Side-by-side ratios structured / plain close it.

Run: `python benchmarks/bench_structured.py` (JSON lines, then a table). The defaults make 24
calls: about 2 minutes of 2 cores (seen here: 4 minutes of CPU for `--calls 4`, 48 calls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from importlib import resources
from typing import Any

from synthmix.cards.card import load_card
from synthmix.data.labeled import load_labeled
from synthmix.dedup import DedupConfig
from synthmix.generation.generate import (
    GenerationConfig,
    generate_until_unique,
    parsing_summary,
)
from synthmix.generation.strategies import make_strategy
from synthmix.llm.llamacpp import LlamaCppBackend

CYRILLIC = re.compile(r"[а-яё]", re.I)


async def one_run(
    backend: LlamaCppBackend,
    strategy_name: str,
    structured: bool,
    min_chars: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    data = resources.files("synthmix") / "demo_data" / "cedr_emotions"
    card = load_card(str(data / "card.yaml"))
    real = load_labeled(str(data / "train.csv"))
    strategy = make_strategy(
        strategy_name,
        texts_per_call=args.texts_per_call,
        k=3,
        structured=structured,
        structured_min_chars=min_chars,
    )
    config = GenerationConfig(
        strategy=strategy_name,
        per_class=1000,  # never reached: every class makes exactly --calls calls
        max_calls_per_class=args.calls,
        texts_per_call=args.texts_per_call,
        temperature=0.7,
        max_tokens=args.max_tokens,
        k=3,
        classes=args.classes,
        dedup=DedupConfig(embedding=False),
    )
    started = time.perf_counter()
    result = await generate_until_unique(backend, strategy, card, real, config, progress=False)
    seconds = time.perf_counter() - started
    totals = result.totals()
    parsing = parsing_summary(result)
    calls = totals["calls"]
    kept = list(result.data.texts)
    return {
        "strategy": strategy_name,
        "structured": structured,
        "min_chars": min_chars,
        "calls": calls,
        "parse_failures": parsing["failures"],
        "parse_rate": round(1 - parsing["failure_rate"], 3),
        "methods": parsing["methods"],
        "texts_per_call": round(totals["texts_returned"] / calls, 2),
        "kept_per_call": round(totals["unique"] / calls, 2),
        "cyrillic_share": round(sum(bool(CYRILLIC.search(t)) for t in kept) / len(kept), 2)
        if kept
        else 0.0,
        "dropped": dict(sorted(result.filters.items())),
        "s_per_call": round(seconds / calls, 2),
        "example": kept[0][:100] if kept else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=["zero-shot", "few-shot"])
    parser.add_argument("--classes", nargs="+", default=["joy", "anger"])
    parser.add_argument("--calls", type=int, default=2, help="calls per class and run")
    parser.add_argument("--texts-per-call", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--min-chars", type=int, default=25)
    args = parser.parse_args()
    backend = LlamaCppBackend(n_ctx=1024, seed=0)
    rows = []
    modes = [
        ("plain", False, 0),
        ("schema", True, 0),
        (f"schema+min{args.min_chars}", True, args.min_chars),
    ]
    for name in args.strategies:
        for mode, structured, min_chars in modes:
            row = {"mode": mode, **asyncio.run(one_run(backend, name, structured, min_chars, args))}
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
    print("\nstrategy     mode           parse rate  texts/call  kept/call  cyrillic  s/call")
    for row in rows:
        print(
            f"{row['strategy']:<12} {row['mode']:<14} {row['parse_rate']:<11} "
            f"{row['texts_per_call']:<11} {row['kept_per_call']:<10} "
            f"{row['cyrillic_share']:<9} {row['s_per_call']}"
        )
    for name in args.strategies:
        plain, *structured = (r for r in rows if r["strategy"] == name)
        for row in structured:
            base = plain["kept_per_call"]
            ratio = row["kept_per_call"] / base if base else 0.0
            print(f"{name}: kept texts per call, {row['mode']} / plain = {ratio:.2f}")


if __name__ == "__main__":
    main()
