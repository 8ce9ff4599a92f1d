"""What tune-generator costs on the bundled Gemma-3-270M (its GGUF de-quantised by
transformers): seconds to load, LoRA steps per second, and texts per second when the tuned
model generates class-conditionally through the engine (`tuned` strategy).

Run: `python benchmarks/bench_tune.py [--steps 4] [--batch-size 8] [--texts 6]`
(`--model` for another base). Meant to be read next to a GPU run: on CPU a step takes tens of
seconds, so keep `--steps` small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from synthmix.cards.card import load_card
from synthmix.data.labeled import load_labeled, stratified_fraction
from synthmix.demo import demo_data_dir
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.generation.tuning import TuneConfig, load_base, tune_generator
from synthmix.llm.llamacpp import bundled_model_path
from synthmix.llm.transformers_local import TransformersBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--texts", type=int, default=6, help="texts generated in all")
    args = parser.parse_args()
    model = args.model or bundled_model_path()
    train = stratified_fraction(load_labeled(demo_data_dir() / "train.csv"), 0.1, seed=0)
    started = time.perf_counter()
    load_base(model)
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        config = TuneConfig(
            model=model, max_steps=args.steps, batch_size=args.batch_size,
            max_length=args.max_length,
        )  # fmt: skip
        result = tune_generator(train, config, Path(folder) / "tuned", progress=False)
        backend = TransformersBackend(str(result.out), seed=0)
        classes = train.classes[:2]
        generation = GenerationConfig(
            strategy="tuned", per_class=max(1, args.texts // len(classes)), texts_per_call=1,
            classes=classes, max_tokens=48, temperature=0.9, concurrency=1,
        )  # fmt: skip
        card = load_card(demo_data_dir() / "card.yaml")
        began = time.perf_counter()
        made = asyncio.run(generate_until_unique(backend, "tuned", card, None, generation, False))
        generate_s = time.perf_counter() - began
    calls = sum(r.calls for r in made.classes.values())
    print(
        json.dumps(
            {
                "model": Path(model).name,
                "load_s": round(load_s, 1),
                "steps": result.steps,
                "batch_size": args.batch_size,
                "train_s": round(result.seconds, 1),
                "steps_per_s": round(result.steps_per_s, 4),
                "texts_kept": len(made.data),
                "calls": calls,
                "generate_s": round(generate_s, 1),
                "texts_per_s": round(len(made.data) / generate_s, 3) if generate_s else None,
                "examples": made.data.texts[:4],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
