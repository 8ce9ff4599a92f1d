"""`synthmix` commands: checking synthetic texts: deduplication and quality metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthmix.cli.base import Encoding, LabelColumn, TextColumn, app, claim_output
from synthmix.core.files import sidecar


@app.command()
def dedup(
    ctx: typer.Context,
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
    claim_output(ctx, out)
    from synthmix.augment.eda import write_source
    from synthmix.data.labeled import LabeledData, load_labeled
    from synthmix.dedup.batch import Deduplicator
    from synthmix.dedup.config import DedupConfig, build_stages
    from synthmix.dedup.report import write_dedup_report

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
    report_path = write_dedup_report(result, report or sidecar(out, "dedup"), config)
    if removed is not None:
        write_source(LabeledData(result.removed, str(removed)), removed)
    typer.echo(result.summary(), err=True)
    typer.echo(f"wrote {len(result.data)} texts to {out}; report {report_path}", err=True)


@app.command()
def quality(
    ctx: typer.Context,
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
    claim_output(ctx, out)
    from synthmix.data.labeled import load_labeled
    from synthmix.embeddings.encoder import build_encoder
    from synthmix.quality.config import QualityConfig
    from synthmix.quality.files import summary_lines, write_quality
    from synthmix.quality.measure import measure_quality

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
