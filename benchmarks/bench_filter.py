"""Does the classifier filter make the demo's Gemma sources useful? CEDR, 10% real + N Gemma
texts per class, each source with and without the filter (a TF-IDF classifier fitted inside
each cell on its 10% real sample), compared seed by seed; and what the filter dropped per class.

Run: `python benchmarks/bench_filter.py --out bench-filter [--per-class 10] [--seeds 3]
[--min-probability 0.5]`. The Gemma sources are generated once into OUT like the demo's
(answers cached in OUT/llm-cache.sqlite), so a rerun only refits. `--stand-in 0.3` replaces
them by a source of held-out real CEDR test sentences with 30% of their labels changed to
another class (a generator writing the wrong class that often), for machines without Gemma.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from synthmix.demo import LLM_RUNS, demo_config, generate_llm_sources
from synthmix.experiment.mixing import PlanConfig
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.runner import run_experiment
from synthmix.generation.classifier_filter import ClassifierFilterConfig

FILTERED = "filtered"


def run(
    out: Path,
    per_class: int,
    seeds: int,
    rule: ClassifierFilterConfig,
    stand_in: float | None,
    label_issues: bool = False,
    strategies: list[str] | None = None,
) -> list[dict[str, Any]]:
    real = _write_stand_in(out, per_class, stand_in) if stand_in is not None else None
    made = all((out / "sources" / f"{name}.jsonl").exists() for name, _, _ in LLM_RUNS)
    if real is None and strategies:
        subset = _generate_subset(out, per_class, strategies)
    elif real is None and not made:
        generate_llm_sources(out, per_class, progress=True)
    config = demo_config(out, seeds=seeds, llm_per_class=per_class)
    if real is None and strategies:
        config.sources = [dataclasses.replace(config.sources[1], path=str(subset))]
    if real is not None:
        config.data = dataclasses.replace(config.data, train=str(real))
        config.sources = [
            dataclasses.replace(s, path=str(out / "sources" / "stand-in.jsonl"), split_by=[])
            for s in config.sources[1:2]
        ]
    gemma = [s for s in config.sources if s.path is not None]
    judged = [
        dataclasses.replace(s, name=FILTERED, filter=rule, drop_label_issues=label_issues)
        for s in gemma
    ]
    config.sources = [*gemma, *judged]  # no EDA: the comparison is Gemma with and without
    config.plans = PlanConfig(
        learning_curve=[1.0],
        synthetic_only=False,
        half_and_half=False,
        real_plus_equal=False,
        synthetic_ratios=[],
        synthetic_counts=config.plans.synthetic_counts,
    )
    tag = "run-" + "-".join(f"{k}{v}" for k, v in rule.to_dict().items() if v and k != "params")
    tag += "-issues" if label_issues else ""
    run_experiment(config, out / tag, progress=True)
    return ResultsStore(out / tag).records()


def _generate_subset(out: Path, per_class: int, strategies: list[str]) -> Path:
    """Only some of the demo's Gemma sources (card-only prompts, temperature 0.7, answers in
    the same cache as the demo's), for a shorter run on a busy machine."""
    from synthmix.demo import demo_data_dir
    from synthmix.generation.plan import GenerationPlan, run_plan

    plan = GenerationPlan(
        card=str(demo_data_dir() / "card.yaml"),
        cache=str(out / "llm-cache.sqlite"),
        out=str(out / "sources" / f"subset-{'-'.join(strategies)}.jsonl"),
        per_class=per_class,
        k=3,
        max_tokens=200,
        strategies=strategies,
        temperatures=[0.7],
    )
    return run_plan(plan, progress=True).out


def _write_stand_in(out: Path, per_class: int, wrong: float) -> Path:
    """Real training sentences of CEDR, `wrong` of them relabeled, as the source; the rest
    of the training file (returned) as the experiment's real data, so none is in both."""
    import numpy as np

    from synthmix.augment.eda import write_source
    from synthmix.data.labeled import LabeledData, load_labeled, sample_per_class
    from synthmix.demo import demo_data_dir

    train = load_labeled(demo_data_dir() / "train.csv")
    source = sample_per_class(train, dict.fromkeys(train.classes, per_class), seed=12345)
    rest = train.frame[~train.frame["text"].isin(set(source.texts))]
    rng = np.random.default_rng(0)
    frame = source.frame.copy()
    for i in rng.choice(len(frame), round(wrong * len(frame)), replace=False):
        frame.loc[i, "label"] = rng.choice([c for c in train.classes if c != frame.loc[i, "label"]])
    (out / "sources").mkdir(parents=True, exist_ok=True)
    write_source(LabeledData(frame, "stand-in"), out / "sources" / "stand-in.jsonl")
    rest.to_csv(out / "train-rest.csv", index=False)
    return out / "train-rest.csv"


def summarise(records: list[dict[str, Any]]) -> None:
    f1: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    baseline: dict[int, float] = {}
    drops: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        cell, seed = record["cell"], record["seed"]
        score = record["metrics"]["f1_macro"]
        if cell["source"] is None:
            if cell["real_fraction"] < 1:
                baseline[seed] = score
            continue
        f1[cell["source"], cell["synthetic_count"]][seed] = score
        judged = record.get("source_filter", {}).get("classifier")
        if judged is not None and cell["synthetic_count"] == max(
            r["cell"]["synthetic_count"] for r in records
        ):
            for label, total in judged["judged"].items():
                share = judged["dropped"].get(label, 0) / total if total else 0.0
                drops[cell["source"]][label].append(share)
    print(f"10% real only: F1 {statistics.mean(baseline.values()):.4f} over {len(baseline)} seeds")
    print("source | N | F1 unfiltered | F1 filtered | filtered - unfiltered (per seed) | vs real")
    for (source, count), scores in sorted(f1.items()):
        if source.startswith(FILTERED):
            continue
        other = f1.get((FILTERED + source[len(source.split(":")[0]) :], count), {})
        seeds = sorted(set(scores) & set(other))
        deltas = [other[s] - scores[s] for s in seeds]
        versus = [other[s] - baseline[s] for s in seeds if s in baseline]
        print(
            f"{source} | {count} | {statistics.mean(scores.values()):.4f} | "
            f"{statistics.mean(other[s] for s in seeds):.4f} | "
            f"{statistics.mean(deltas):+.4f} ({', '.join(f'{d:+.3f}' for d in deltas)}) | "
            f"{statistics.mean(versus):+.4f}"
        )
    print("drop rate of the filter per class (largest N, mean over seeds):")
    for source, by_label in sorted(drops.items()):
        rates = ", ".join(f"{lab} {statistics.mean(v):.0%}" for lab, v in sorted(by_label.items()))
        print(f"  {source}: {rates}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-filter"))
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--min-probability", type=float, default=0.5)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--keep-share", type=float, default=None)
    parser.add_argument("--label-issues", action="store_true", help="also drop_label_issues")
    parser.add_argument("--strategies", nargs="+", default=None, help="only these Gemma sources")
    parser.add_argument("--stand-in", type=float, default=None, metavar="WRONG_SHARE")
    args = parser.parse_args()
    if args.top_k is not None:
        rule = ClassifierFilterConfig(top_k=args.top_k)
    elif args.keep_share is not None:
        rule = ClassifierFilterConfig(keep_share=args.keep_share)
    else:
        rule = ClassifierFilterConfig(min_probability=args.min_probability)
    options = (args.stand_in, args.label_issues, args.strategies)
    summarise(run(args.out, args.per_class, args.seeds, rule, *options))


if __name__ == "__main__":
    main()
