"""The offline demo: the whole pipeline on a real Russian dataset shipped in the package.

Sources: rule-based EDA (derived in every cell from the real texts it sees) and, with the
bundled Gemma-3-270M base model, zero-shot, few-shot and few-shot-with-keywords generation
(fskw at two temperatures), and persona generation from a small persona pool that Gemma
builds from the card's examples (text-to-persona, then persona-to-persona). The LLM prompts
use only the task card's own examples and keywords, so no generated text carries information
from real data a cell does not see. The small model yields a few texts per class in minutes,
so LLM sources enter the fixed-count plan ("10% real + N synthetic per class"); every answer
is cached, so a rerun is quick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import yaml

from synthmix.cards.card import load_card
from synthmix.experiment.config import DataConfig, ExperimentConfig
from synthmix.experiment.mixing import SMALL_REAL_PLUS_COUNT, PlanConfig
from synthmix.experiment.runner import RunDirInUse, measure_source_quality, run_experiment
from synthmix.experiment.sources import SourceConfig
from synthmix.generation.personas import PersonaConfig, build_persona_pool, save_pool
from synthmix.generation.plan import GenerationPlan, run_plan
from synthmix.generation.strategies import declares
from synthmix.llm.cache import AnswerCache, CachedBackend
from synthmix.llm.factory import build_backend
from synthmix.quality.config import QualityConfig
from synthmix.report import ReportPaths, write_report

log = logging.getLogger("synthmix")

DEMO_DATASET = "cedr_emotions"
LLM_RUNS = (
    ("llm-a", ["zero-shot", "few-shot", "fskw"], [0.7]),
    ("llm-b", ["fskw"], [1.0]),
    ("llm-p", ["persona"], [0.7]),
)
# Enough personas that 6 classes x a few calls rarely repeat one; about 15 s of Gemma.
DEMO_PERSONAS = 14
# Small samples keep the quality step to about a minute on 2 cores.
DEMO_QUALITY = QualityConfig(
    sample_size=400, n_boot=50, self_bleu_sample=40, novelty_against_all_real=False
)


def demo_data_dir() -> Path:
    return Path(str(resources.files("synthmix") / "demo_data" / DEMO_DATASET))


# Seeds of the small-real cells (10% real, alone and with each source): their gains are a
# point or two and their fits cheap. At 3 seeds, EDA at 10% real + 25/50/75/100% read "no
# detectable effect" (-0.015 to -0.022; the design detected about ±0.07); at 10 seeds all four
# are "hurt" (-0.012 to -0.017, each CI below zero, Holm p <= 0.001 over these four; EDA-only
# grid), and the 7 extra seeds of those five cells (35 fits) took 54 s on a loaded 2-core
# machine.
DEMO_SMALL_REAL_SEEDS = 10


def demo_config(
    out_dir: Path,
    seeds: int = 3,
    llm_per_class: int = 0,
    small_real_seeds: int = DEMO_SMALL_REAL_SEEDS,
) -> ExperimentConfig:
    data_dir = demo_data_dir()
    # Augmented per cell from the real texts that cell sees; see sources.DerivedSource.
    sources = [SourceConfig(name="eda", augment={"alpha": 0.1})]
    counts: list[int] = []
    if llm_per_class > 0:
        counts = sorted({max(1, llm_per_class // 2), llm_per_class})
        sources += [
            SourceConfig(
                path=str(out_dir / "sources" / f"{name}.jsonl"),
                name="gemma",
                split_by=["strategy", "temperature"],
                plans=[SMALL_REAL_PLUS_COUNT],
            )
            for name, _, _ in LLM_RUNS
        ]
    return ExperimentConfig(
        name="demo-cedr-emotions",
        data=DataConfig(train=str(data_dir / "train.csv"), test=str(data_dir / "test.csv")),
        card=str(data_dir / "card.yaml"),
        sources=sources,
        plans=PlanConfig(synthetic_counts=counts),
        seeds=list(range(seeds)),
        # No fewer than `seeds`: a value at or below it adds nothing.
        small_real_seeds=list(range(small_real_seeds)) if small_real_seeds > seeds else [],
        base_dir=out_dir,
    )


def build_demo_personas(out_dir: Path, size: int = DEMO_PERSONAS, progress: bool = True) -> Path:
    """A persona pool from the card's examples only (like the prompts: no real data a
    cell does not see), cached in the demo's answer cache."""
    card = load_card(demo_data_dir() / "card.yaml")
    seeds = [example for class_card in card.classes for example in class_card.examples]
    backend = CachedBackend(build_backend("llama-cpp"), AnswerCache(out_dir / "llm-cache.sqlite"))
    config = PersonaConfig(language=card.language)
    pool = asyncio.run(build_persona_pool(backend, seeds, size, config, progress=progress))
    path = out_dir / "personas.jsonl"
    save_pool(pool, path)
    return path


def generate_llm_sources(out_dir: Path, per_class: int, progress: bool = True) -> list[Path]:
    """Gemma sources from the card alone (descriptions, examples, keywords), and from a
    persona pool built from the card's examples."""
    base = GenerationPlan(
        card=str(demo_data_dir() / "card.yaml"),
        cache=str(out_dir / "llm-cache.sqlite"),
        per_class=per_class,
        k=3,
        max_tokens=200,
    )
    if any(declares(s, "needs_personas") for _, strategies, _ in LLM_RUNS for s in strategies):
        base = replace(base, personas=str(build_demo_personas(out_dir, progress=progress)))
    written = []
    for name, strategies, temperatures in LLM_RUNS:
        plan = replace(
            base,
            out=str(out_dir / "sources" / f"{name}.jsonl"),
            strategies=strategies,
            temperatures=temperatures,
        )
        written.append(run_plan(plan, progress=progress).out)
    return written


def run_grid(config: ExperimentConfig, run_dir: Path, jobs: int, progress: bool) -> None:
    """The demo's experiment. A run directory left by an earlier synthmix version (whose
    Gemma sources or settings differ) is moved aside, not refused: the demo makes all its
    inputs itself, so a user rerunning `make demo` after an upgrade should get a report."""
    try:
        run_experiment(config, run_dir, jobs=jobs, progress=progress)
    except RunDirInUse:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = run_dir.with_name(f"{run_dir.name}-before-{stamp}")
        run_dir.rename(aside)
        log.warning("%s: results of a different demo setup moved to %s", run_dir, aside)
        run_experiment(config, run_dir, jobs=jobs, progress=progress)


def run_demo(
    out_dir: str | Path = "runs/demo",
    seeds: int = 3,
    jobs: int = 0,
    llm_per_class: int = 10,
    progress: bool = True,
    small_real_seeds: int = DEMO_SMALL_REAL_SEEDS,
) -> ReportPaths:
    out_dir = Path(out_dir).resolve()
    config = demo_config(out_dir, seeds, llm_per_class, small_real_seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "experiment.yaml").write_text(
        yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    if llm_per_class > 0:
        generate_llm_sources(out_dir, llm_per_class, progress)
    run_dir = out_dir / "run"
    run_grid(config, run_dir, jobs, progress)
    measure_source_quality(config, run_dir, DEMO_QUALITY, progress)
    return write_report(run_dir)
