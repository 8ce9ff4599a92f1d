"""`synthmix` commands: generation, persona pools and rule-based augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthmix.cli.base import (
    AnswerCachePath,
    ApiKeyEnv,
    BackendKind,
    BaseUrl,
    Encoding,
    Endpoint,
    LabelColumn,
    ModelName,
    TextColumn,
    app,
    claim_output,
)
from synthmix.core.errors import SynthmixError


@app.command()
def augment(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Real labeled data to augment.")],
    per_class: Annotated[int, typer.Option(min=1, help="Unique texts to produce per class.")],
    out: Annotated[Path, typer.Option(help="Source file to write (.csv, .jsonl, .parquet).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    language: Annotated[str, typer.Option(help="'ru' matches inserted words by POS.")] = "ru",
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Rule-based augmentation (EDA without synonyms): the baseline LLM sources must beat."""
    claim_output(ctx, out)
    from synthmix.augment.eda import AugmentConfig, write_source
    from synthmix.augment.eda import augment as run_augment
    from synthmix.data.labeled import load_labeled

    labeled = load_labeled(data, text_column, label_column, encoding)
    config = AugmentConfig(per_class=per_class, seed=seed, language=language)
    synthetic = run_augment(labeled, config, progress=True)
    write_source(synthetic, out)
    typer.echo(f"wrote {len(synthetic)} texts to {out}", err=True)


# Options shared by the commands that call an LLM.
@app.command(
    help="Generate until N unique texts per class; resumable, nothing paid twice.\n\n"
    "Every answer is cached before use, so a rerun after a kill pays for nothing twice. "
    "A text counts when it survives the exact, near-duplicate (MinHash) and real-data "
    "leak checks (and the embedding check if set)."
)
def generate(
    ctx: typer.Context,
    plan: Annotated[
        Path | None, typer.Option(help="Generation plan YAML (generators x strategies x temps).")
    ] = None,
    card: Annotated[Path | None, typer.Option(help="Task card (without --plan).")] = None,
    data: Annotated[Path | None, typer.Option(help="Real labeled examples for prompts.")] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="zero-shot, few-shot, fskw, paraphrase, key-points, completion-few-shot,"
            " persona (needs --personas), or one a plugin registers; repeatable."
        ),
    ] = None,
    personas: Annotated[
        Path | None, typer.Option(help="Persona pool (JSONL from `synthmix personas`).")
    ] = None,
    temperature: Annotated[list[float] | None, typer.Option(help="Repeatable.")] = None,
    backend: BackendKind = "llama-cpp",
    model: ModelName = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    chat: Endpoint = None,
    per_class: Annotated[int, typer.Option(min=0, help="Unique texts wanted per class.")] = 100,
    texts_per_call: Annotated[int, typer.Option(min=1, help="Texts asked for per call.")] = 5,
    max_calls_per_class: Annotated[int | None, typer.Option(help="Call budget per class.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Spend budget for the run.")] = None,
    keywords_from: Annotated[str, typer.Option(help="fskw keywords: card or mined.")] = "card",
    seed: Annotated[int, typer.Option(help="Seed of the call sequence.")] = 0,
    near_dup_threshold: Annotated[
        float, typer.Option(help="MinHash Jaccard at which a text is a near-duplicate.")
    ] = 0.8,
    embedding_dedup: Annotated[
        float | None,
        typer.Option(help="Also drop texts with embedding cosine >= this to a kept one."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Source file (.jsonl, .csv, .parquet).")] = Path(
        "synthetic.jsonl"
    ),
    cache: AnswerCachePath = Path(".synthmix/llm-cache.sqlite"),
    redact: Annotated[
        bool | None,
        typer.Option(
            "--redact/--no-redact",
            help="Redact personal data in real texts before they go into prompts. Default: "
            "only for servers off this machine; --redact also for a loopback URL (a tunnel).",
        ),
    ] = None,
) -> None:
    """Generate until N unique texts per class (help text in the decorator: Typer keeps a
    docstring's line breaks)."""
    from dataclasses import replace

    from synthmix.dedup.config import DedupConfig
    from synthmix.generation.plan import (
        GenerationPlan,
        GeneratorSpec,
        check_plan,
        load_plan,
        run_plan,
    )

    if plan is not None:
        loaded = load_plan(plan)
        if personas is not None:
            loaded.personas = str(personas.resolve())
            check_plan(loaded, str(plan))
    else:
        if card is None:
            raise SynthmixError("generate needs --plan, or --card (and --data for examples)")
        loaded = GenerationPlan(
            card=str(card),
            data=str(data) if data is not None else None,
            out=str(out),
            cache=str(cache),
            generators=[
                GeneratorSpec(
                    kind=backend,
                    model=model,
                    base_url=base_url,
                    api_key_env=api_key_env,
                    chat=chat,
                )
            ],
            strategies=strategy or ["few-shot"],
            temperatures=temperature or [0.7],
            per_class=per_class,
            texts_per_call=texts_per_call,
            max_calls_per_class=max_calls_per_class,
            max_cost=max_cost,
            keywords=keywords_from,
            seed=seed,
            personas=str(personas) if personas is not None else None,
            dedup=DedupConfig(
                minhash_threshold=near_dup_threshold,
                embedding=embedding_dedup is not None,
                embedding_threshold=embedding_dedup or DedupConfig.embedding_threshold,
            ),
        )
        check_plan(loaded, "command line")
    from synthmix.llm.openai_http import fault_line

    if redact is not None:
        loaded.redaction = replace(loaded.redaction, enabled=redact)
    # Checked and locked before the first paid call; the report goes beside the output.
    claim_output(ctx, loaded.resolve(loaded.out))
    result = run_plan(loaded)
    for run in result.runs:
        totals = run.totals()
        typer.echo(
            f"{run.generator} {run.strategy} t={run.config.temperature}: {totals['kept']} kept, "
            f"{totals['calls']} calls ({totals['cached_calls']} cached), "
            f"dropped {totals['duplicates']} duplicates, {totals['near_duplicates']} near, "
            f"{totals['leaks']} leaks; yield {totals['yield']:.2f}, cost {totals['cost']:.4f}",
            err=True,
        )
        faults = fault_line(run.faults) if run.faults else ""
        if faults:
            typer.echo(f"  backend faults: {faults}", err=True)
    typer.echo(f"wrote {len(result.data)} texts to {result.out}; report {result.report}")


@app.command(
    "personas",
    help="Build a persona pool for `generate --strategy persona`.\n\n"
    "Who might write or read the seed texts, then people close to them; deduplicated "
    "and cached.",
)
def personas_command(
    ctx: typer.Context,
    card: Annotated[Path, typer.Option(help="Task card: its examples seed the pool.")],
    out: Annotated[Path, typer.Option(help="Pool (JSONL); <out stem>.report.json goes beside it.")],
    size: Annotated[int, typer.Option(min=1, help="Distinct personas wanted.")] = 50,
    data: Annotated[
        Path | None, typer.Option(help="More seed texts (CSV/TSV/JSONL/Parquet, text column).")
    ] = None,
    level: Annotated[str, typer.Option(help="short (one line) or detailed (2-3 sentences).")] = (
        "short"
    ),
    relation: Annotated[
        list[str] | None,
        typer.Option(
            help="Relation for persona-to-persona (default: a built-in list); repeatable."
        ),
    ] = None,
    text_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the pool taken from seed texts.")
    ] = 0.5,
    max_calls: Annotated[int | None, typer.Option(help="Call budget (default 4 x size).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the call sequence.")] = 0,
    embedding_dedup: Annotated[
        bool, typer.Option(help="Also drop personas whose embeddings nearly match a kept one.")
    ] = True,
    backend: BackendKind = "llama-cpp",
    model: ModelName = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    chat: Endpoint = None,
    cache: AnswerCachePath = Path(".synthmix/llm-cache.sqlite"),
    text_column: TextColumn = "text",
    encoding: Encoding = "auto",
) -> None:
    """Build a persona pool (help text in the decorator)."""
    import asyncio

    from synthmix.cards.card import load_card
    from synthmix.dedup import DedupConfig
    from synthmix.generation.personas import PersonaConfig, build_persona_pool, save_pool
    from synthmix.generation.plan import GeneratorSpec, open_backend
    from synthmix.labeling.run import load_texts
    from synthmix.llm.cache import AnswerCache

    task_card = load_card(card)
    seeds = [example for class_card in task_card.classes for example in class_card.examples]
    if data is not None:
        seeds += load_texts(data, text_column, encoding)
    config = PersonaConfig(
        level=level,
        language=task_card.language,
        relations=relation or None,
        text_share=text_share,
        max_calls=max_calls,
        temperature=temperature,
        seed=seed,
        dedup=DedupConfig(embedding=embedding_dedup),
    )
    spec = GeneratorSpec(
        kind=backend, model=model, base_url=base_url, api_key_env=api_key_env, chat=chat
    )
    # claimed after the options are checked (a typo leaves no lock) and before the first call
    claim_output(ctx, out)
    llm = open_backend(spec, AnswerCache(cache))
    pool = asyncio.run(build_persona_pool(llm, seeds, size, config, progress=True))
    report = save_pool(pool, out)
    totals = pool.report
    removed = ", ".join(f"{n} {stage}" for stage, n in totals.removed.items()) or "none"
    typer.echo(
        f"{totals.kept} personas from {totals.calls} calls ({totals.cached_calls} cached); "
        f"rejected {totals.rejected}, removed {removed}; stopped by {totals.stopped_by}",
        err=True,
    )
    typer.echo(f"wrote {totals.kept} personas to {out}; report {report}")
