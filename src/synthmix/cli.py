"""The `synthmix` command line: thin glue over the Python API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from synthmix.errors import SynthmixError

app = typer.Typer(
    help="Will synthetic data help my text classifier? Generate, mix, train and measure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
card_app = typer.Typer(
    help="Task cards: classes described as in the annotation guide.", no_args_is_help=True
)
app.add_typer(card_app, name="card")

TextColumn = Annotated[str, typer.Option(help="Column holding the texts.")]
LabelColumn = Annotated[str, typer.Option(help="Column holding the labels.")]
Encoding = Annotated[
    str, typer.Option(help="File encoding; 'auto' reads UTF-8 and falls back to cp1251.")
]


@card_app.command("init")
def card_init(
    data: Annotated[Path, typer.Argument(help="Labeled data (CSV/TSV/JSONL/JSON/Parquet).")],
    out: Annotated[Path | None, typer.Option(help="Write the card here instead of stdout.")] = None,
    task: Annotated[str | None, typer.Option(help="Task name (default: the file's name).")] = None,
    language: Annotated[str, typer.Option(help="Language code of the texts.")] = "ru",
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Draft a task card from a dataset: class names, counts and a few examples to edit."""
    from synthmix.cards import draft_card_yaml
    from synthmix.data import load_labeled

    labeled = load_labeled(data, text_column, label_column, encoding)
    text = draft_card_yaml(labeled, task=task or data.stem, language=language)
    _emit(text, out)


def _emit(text: str, out: Path | None) -> None:
    """YAML for the user: to stdout (pipeable), or to a file with a note on stderr."""
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@app.command()
def experiment(
    config: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/<name>).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Parallel fits; 0 = one per core.")] = None,
    report: Annotated[bool, typer.Option(help="Write the report when done.")] = True,
    quality: Annotated[
        bool, typer.Option(help="Also measure each source's quality metrics for the report.")
    ] = False,
) -> None:
    """Run the mixing grid; rerun the same command to resume after a kill."""
    from synthmix.config import load_experiment
    from synthmix.experiment import measure_source_quality, run_experiment

    loaded = load_experiment(config)
    run_dir = out or Path("runs") / loaded.name
    outcome = run_experiment(loaded, run_dir, jobs=jobs)
    typer.echo(f"{outcome.ran} fits run, {outcome.reused} reused from {run_dir}", err=True)
    if quality:
        measure_source_quality(loaded, run_dir)
    if report:
        _write_report(run_dir)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Experiment run directory.")],
) -> None:
    """Write report.html (self-contained) and report.md for a run directory."""
    _write_report(run_dir)


def _write_report(run_dir: Path) -> None:
    from synthmix.report import write_report

    paths = write_report(run_dir)
    typer.echo(f"report: {paths.html}")
    typer.echo(f"markdown: {paths.markdown}")


@app.command()
def augment(
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
    from synthmix.augment import AugmentConfig, write_source
    from synthmix.augment import augment as run_augment
    from synthmix.data import load_labeled

    labeled = load_labeled(data, text_column, label_column, encoding)
    config = AugmentConfig(per_class=per_class, seed=seed, language=language)
    synthetic = run_augment(labeled, config, progress=True)
    write_source(synthetic, out)
    typer.echo(f"wrote {len(synthetic)} texts to {out}", err=True)


# Options shared by the commands that call an LLM.
BackendKind = Annotated[str, typer.Option(help="llama-cpp, openai or transformers.")]
ModelName = Annotated[
    str | None, typer.Option(help="Model name, or GGUF path (default: bundled Gemma-3-270M).")
]
BaseUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")]
ApiKeyEnv = Annotated[str, typer.Option(help="Environment variable holding the API key.")]
Endpoint = Annotated[
    bool | None,
    typer.Option(
        "--chat/--completions",
        help="OpenAI-compatible servers: chat endpoint (instruction models; the default) or"
        " completions endpoint (base models, with completion-few-shot).",
    ),
]
AnswerCachePath = Annotated[Path, typer.Option(help="Answer cache (SQLite).")]


@app.command(
    help="Generate until N unique texts per class; resumable, nothing paid twice.\n\n"
    "Every answer is cached before use, so a rerun after a kill pays for nothing twice. "
    "A text counts when it survives the exact, near-duplicate (MinHash) and real-data "
    "leak checks (and the embedding check if set)."
)
def generate(
    plan: Annotated[
        Path | None, typer.Option(help="Generation plan YAML (generators x strategies x temps).")
    ] = None,
    card: Annotated[Path | None, typer.Option(help="Task card (without --plan).")] = None,
    data: Annotated[Path | None, typer.Option(help="Real labeled examples for prompts.")] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="zero-shot, few-shot, fskw, paraphrase, key-points, completion-few-shot,"
            " persona (needs --personas); repeatable."
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
) -> None:
    """Generate until N unique texts per class (help text in the decorator: Typer keeps a
    docstring's line breaks)."""
    from synthmix.dedup import DedupConfig
    from synthmix.generation_plan import (
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
    typer.echo(f"wrote {len(result.data)} texts to {result.out}; report {result.report}")


@app.command(
    "personas",
    help="Build a persona pool for `generate --strategy persona`.\n\n"
    "Who might write or read the seed texts, then people close to them; deduplicated "
    "and cached.",
)
def personas_command(
    card: Annotated[Path, typer.Option(help="Task card: its examples seed the pool.")],
    out: Annotated[Path, typer.Option(help="Pool (JSONL); <name>.report.json goes beside it.")],
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

    from synthmix.cards import load_card
    from synthmix.dedup import DedupConfig
    from synthmix.generation_plan import GeneratorSpec, open_backend
    from synthmix.labeling.run import load_texts
    from synthmix.llm.cache import AnswerCache
    from synthmix.personas import PersonaConfig, build_persona_pool, save_pool

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


@app.command()
def dedup(
    data: Annotated[Path, typer.Argument(help="Synthetic labeled texts to deduplicate.")],
    out: Annotated[Path, typer.Option(help="Kept texts (.csv, .jsonl, .parquet).")],
    real: Annotated[
        list[Path] | None,
        typer.Option(
            help="Real train/test file; near-copies of its texts are dropped. Repeatable."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="JSON report (default <out>.dedup.json).")
    ] = None,
    removed: Annotated[
        Path | None, typer.Option(help="Also write the removed rows with reasons.")
    ] = None,
    minhash_threshold: Annotated[float, typer.Option(help="Jaccard for near-duplicates.")] = 0.8,
    shingles: Annotated[str, typer.Option(help="'word' or 'char' shingles.")] = "word",
    embedding: Annotated[bool, typer.Option(help="Also drop embedding near-duplicates.")] = False,
    embedding_threshold: Annotated[float, typer.Option(help="Cosine for --embedding.")] = 0.92,
    leak_threshold: Annotated[float, typer.Option(help="Jaccard to a real text = leak.")] = 0.7,
    keep_leaks: Annotated[bool, typer.Option(help="Only flag near-copies of real texts.")] = False,
    across_labels: Annotated[
        bool, typer.Option(help="Dedup across labels (same text, two labels = contradiction).")
    ] = True,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Drop exact, near (MinHash) and optionally embedding duplicates, and copies of real data."""
    from synthmix.augment import write_source
    from synthmix.data import LabeledData, load_labeled
    from synthmix.dedup import DedupConfig, Deduplicator, build_stages, write_dedup_report

    labeled = load_labeled(data, text_column, label_column, encoding)
    real_texts = [
        text
        for path in real or []
        for text in load_labeled(path, text_column, label_column, encoding).texts
    ]
    config = DedupConfig(
        minhash_threshold=minhash_threshold,
        shingles=shingles,  # type: ignore[arg-type]  # MinHashDedup rejects other values
        embedding=embedding,
        embedding_threshold=embedding_threshold,
        leak_minhash_threshold=leak_threshold,
        drop_leaks=not keep_leaks,
        across_labels=across_labels,
    )
    stages = build_stages(config, real_texts or None)
    result = Deduplicator(stages, across_labels=across_labels).run(labeled)
    write_source(result.data, out)
    report_path = write_dedup_report(result, report or out.with_suffix(".dedup.json"), config)
    if removed is not None:
        write_source(LabeledData(result.removed, str(removed)), removed)
    typer.echo(result.summary(), err=True)
    typer.echo(f"wrote {len(result.data)} texts to {out}; report {report_path}", err=True)


@app.command()
def quality(
    synthetic: Annotated[Path, typer.Argument(help="Synthetic labeled data to assess.")],
    real: Annotated[Path, typer.Option(help="Real labeled data to compare with.")],
    out: Annotated[Path, typer.Option(help="Write the metrics JSON here.")],
    sample_size: Annotated[int, typer.Option(min=10, help="Texts sampled per side.")] = 2000,
    n_boot: Annotated[int, typer.Option(min=0, help="Bootstrap draws per metric.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    leak_threshold: Annotated[float, typer.Option(help="Cosine counted as a leak.")] = 0.95,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Metric or group (diversity, fidelity, consistency, novelty); repeatable.",
        ),
    ] = None,
    encoder: Annotated[
        str, typer.Option(help="'use-multilingual' or a sentence-transformers model.")
    ] = "use-multilingual",
    cache: Annotated[Path | None, typer.Option(help="SQLite file caching embeddings.")] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Diversity, fidelity, label consistency and memorisation of a synthetic source."""
    from synthmix.data import load_labeled
    from synthmix.embeddings import build_encoder
    from synthmix.quality import QualityConfig, measure_quality, summary_lines, write_quality

    synth = load_labeled(synthetic, text_column, label_column, encoding)
    reference = load_labeled(real, text_column, label_column, encoding)
    config = QualityConfig(
        sample_size=sample_size, n_boot=n_boot, seed=seed, leak_threshold=leak_threshold
    )
    if metrics:
        config.metrics = tuple(metrics)
    result = measure_quality(synth, reference, config, build_encoder(encoder, cache, progress=True))
    write_quality(result, out)
    typer.echo("\n".join(summary_lines(result)))
    typer.echo(f"wrote {out} (per-class values there)", err=True)


@app.command()
def label(
    data: Annotated[Path, typer.Argument(help="Unlabeled texts (CSV/TSV/JSONL/JSON/Parquet).")],
    card: Annotated[Path, typer.Option(help="Task card YAML.")],
    out: Annotated[Path, typer.Option(help="Labels (JSONL); <out>.report.json beside it.")],
    cascade: Annotated[
        Path | None,
        typer.Option(help="Cascade YAML (default: keywords -> embedding -> bundled Gemma)."),
    ] = None,
    calibrate: Annotated[
        Path | None, typer.Option(help="Gold labeled file: calibrate thresholds on it first.")
    ] = None,
    target_precision: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Precision each stage must reach.")
    ] = 0.9,
    criterion: Annotated[str, typer.Option(help="'wilson' (lower bound) or 'point'.")] = "wilson",
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of gold held out to check.")
    ] = 0.3,
    examples: Annotated[
        Path | None, typer.Option(help="Labeled examples for LLM prompts / embedding prototypes.")
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Auto-label texts with a confidence cascade; thresholds optionally calibrated on gold."""
    from synthmix.cards import load_card
    from synthmix.data import load_labeled
    from synthmix.labeling.config import default_config, load_config
    from synthmix.labeling.run import label_texts, load_texts, write_run

    if criterion not in ("wilson", "point"):
        raise SynthmixError(f"--criterion must be 'wilson' or 'point', got {criterion!r}")
    task_card = load_card(card)
    config = load_config(cascade) if cascade is not None else default_config()
    gold = load_labeled(calibrate, text_column, label_column, encoding) if calibrate else None
    if gold is not None:
        task_card.check_covers(gold, str(card))
    shots = load_labeled(examples, text_column, label_column, encoding) if examples else None
    texts = load_texts(data, text_column, encoding)
    run = label_texts(
        texts,
        task_card,
        config,
        examples=shots,
        gold=gold,
        target_precision=target_precision,
        criterion="point" if criterion == "point" else "wilson",
        holdout=holdout,
        progress=True,
    )
    report = write_run(run, out)
    if run.calibration is not None:
        typer.echo(run.calibration.format(), err=True)
    typer.echo(run.result.format(), err=True)
    typer.echo(f"wrote {len(texts)} labels to {out}; report {report}")


@app.command()
def annotate(
    data: Annotated[Path, typer.Argument(help="Texts to annotate (CSV/TSV/JSONL/JSON/Parquet).")],
    card: Annotated[Path, typer.Option(help="Task card YAML.")],
    out: Annotated[Path, typer.Option(help="Review CSV; <out>.agreement.json goes beside it.")],
    annotators: Annotated[
        Path | None,
        typer.Option(help="Annotators YAML (default: bundled Gemma twice + Gemma moderator)."),
    ] = None,
    examples: Annotated[
        Path | None, typer.Option(help="Labeled examples for the annotators' prompts.")
    ] = None,
    gold_column: Annotated[
        str | None, typer.Option(help="Column of DATA with human labels: agreement with gold.")
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="Expert mode: the moderator's model explains each label.")
    ] = False,
    label_studio: Annotated[
        Path | None, typer.Option(help="Also write Label Studio tasks (JSON) here.")
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """LLM annotators label the same texts; a moderator settles their disagreements."""
    from synthmix.annotate_run import (
        default_annotation_config,
        gold_labels,
        load_annotation_config,
        run_annotation,
        summary_lines,
        write_annotation,
    )
    from synthmix.cards import load_card
    from synthmix.data import load_labeled, read_frame
    from synthmix.labeling.run import texts_of

    task_card = load_card(card)
    config = load_annotation_config(annotators) if annotators else default_annotation_config()
    frame, _ = read_frame(data, encoding)
    texts = texts_of(frame, data, text_column)
    gold = gold_labels(frame, data, gold_column, task_card) if gold_column else None
    shots = load_labeled(examples, text_column, label_column, encoding) if examples else None
    run = run_annotation(
        texts, task_card, config, examples=shots, gold=gold, explain=explain, progress=True
    )
    report = write_annotation(run, out, label_studio)
    for line in summary_lines(run):
        typer.echo(line, err=True)
    typer.echo(f"wrote {len(texts)} annotated texts to {out}; agreement {report}")


@app.command()
def keywords(
    data: Annotated[Path, typer.Argument(help="Real labeled data to mine.")],
    top_k: Annotated[int, typer.Option(min=1, help="Keywords per class.")] = 20,
    min_count: Annotated[int, typer.Option(min=1, help="Least occurrences in the class.")] = 3,
    language: Annotated[str, typer.Option(help="'ru' lemmatises with pymorphy3.")] = "ru",
    card: Annotated[
        Path | None, typer.Option(help="Put the keywords into this task card (written to --out).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write YAML here instead of stdout.")] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Class-salient keywords: log-odds ratio with an informative Dirichlet prior over lemmas."""
    import yaml

    from synthmix.cards import load_card
    from synthmix.data import load_labeled
    from synthmix.keywords import mine_keywords

    labeled = load_labeled(data, text_column, label_column, encoding)
    mined = mine_keywords(labeled, language=language, top_k=top_k, min_count=min_count)
    words = {label: [word for word, _ in pairs] for label, pairs in mined.items()}
    if card is None:
        text = yaml.safe_dump(words, allow_unicode=True, sort_keys=True)
    else:
        task_card = load_card(card)
        task_card.check_covers(labeled, str(card))
        for class_card in task_card.classes:
            class_card.keywords = words.get(class_card.name, class_card.keywords)
        text = task_card.to_yaml()
    _emit(text, out)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's source, run and report.")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per cell.")] = 3,
    jobs: Annotated[int, typer.Option(help="Parallel fits; 0 = one per core.")] = 0,
    llm_per_class: Annotated[
        int,
        typer.Option(min=0, help="Texts per class from the bundled Gemma per source; 0 = no LLM."),
    ] = 10,
) -> None:
    """Run the whole pipeline offline on the shipped CEDR emotions data and write a report."""
    from synthmix.demo import run_demo

    paths = run_demo(out, seeds=seeds, jobs=jobs, llm_per_class=llm_per_class)
    typer.echo(f"report: {paths.html}")
    typer.echo(f"markdown: {paths.markdown}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app()
    except SynthmixError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
