"""`synthmix` commands: generation for multi-label and text-pair tasks."""

from __future__ import annotations

import json
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

Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]
Seed = Annotated[int, typer.Option(help="Seed of the call sequence.")]
MaxCalls = Annotated[int | None, typer.Option(help="Call budget (default 4 x what N needs).")]


@app.command("generate-sets")
def generate_sets(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Real multi-label data (label lists).")],
    card: Annotated[Path, typer.Option(help="Task card naming every label.")],
    total: Annotated[int, typer.Option(min=1, help="Unique texts to generate.")],
    out: Annotated[Path, typer.Option(help="Source file to write (.csv or .jsonl).")],
    labels_column: Annotated[str, typer.Option(help="Column holding label lists.")] = "labels",
    label_delimiter: Annotated[
        str | None, typer.Option(help="Labels joined by this (default: a JSON list).")
    ] = None,
    temperature: Temperature = 1.0,
    seed: Seed = 0,
    max_calls: MaxCalls = None,
    backend: BackendKind = "llama-cpp",
    model: ModelName = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    chat: Endpoint = None,
    cache: AnswerCachePath = Path(".synthmix/llm-cache.sqlite"),
    text_column: TextColumn = "text",
    encoding: Encoding = "auto",
) -> None:
    """Generate texts carrying label sets drawn from the real co-occurrence, until N unique
    (exact, MinHash and real-leak checks); every answer cached before use."""
    import asyncio

    from synthmix.cards.card import load_card
    from synthmix.data.multilabel import load_multilabel
    from synthmix.generation.generate import GenerationConfig
    from synthmix.generation.plan import GeneratorSpec, open_backend
    from synthmix.generation.tasks import generate_label_sets
    from synthmix.llm.cache import AnswerCache

    real = load_multilabel(data, text_column, labels_column, label_delimiter, None, encoding)
    task_card = load_card(card)
    config = GenerationConfig(
        per_class=0, temperature=temperature, seed=seed, max_calls_per_class=max_calls
    )
    spec = GeneratorSpec(
        kind=backend, model=model, base_url=base_url, api_key_env=api_key_env, chat=chat
    )
    claim_output(ctx, out)
    llm = open_backend(spec, AnswerCache(cache))
    made, report = asyncio.run(generate_label_sets(llm, task_card, real, total, config))
    frame = made.frame.assign(
        labels=[json.dumps(list(s), ensure_ascii=False) for s in made.label_sets]
    )
    _write(frame, out)
    _report(report.to_dict(), out, len(made))


@app.command("generate-pairs")
def generate_pairs_command(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Real pairs: text, second text, label.")],
    card: Annotated[Path, typer.Option(help="Task card naming every class.")],
    text_pair_column: Annotated[str, typer.Option(help="Column holding the second text.")],
    per_class: Annotated[int, typer.Option(min=1, help="Unique pairs to generate per class.")],
    out: Annotated[Path, typer.Option(help="Source file to write (.csv or .jsonl).")],
    pair_description: Annotated[
        str, typer.Option(help="What the second text is, in the prompt's words.")
    ] = "второй текст",
    temperature: Temperature = 1.0,
    seed: Seed = 0,
    max_calls: MaxCalls = None,
    backend: BackendKind = "llama-cpp",
    model: ModelName = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    chat: Endpoint = None,
    cache: AnswerCachePath = Path(".synthmix/llm-cache.sqlite"),
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Generate second texts (aspects, questions) of each class for real first texts, until
    N unique pairs per class (dedup and leak check on the pair); every answer cached."""
    import asyncio

    from synthmix.cards.card import load_card
    from synthmix.data.labeled import load_labeled
    from synthmix.generation.generate import GenerationConfig
    from synthmix.generation.plan import GeneratorSpec, open_backend
    from synthmix.generation.tasks import generate_pairs
    from synthmix.llm.cache import AnswerCache

    real = load_labeled(data, text_column, label_column, encoding, text_pair_column)
    task_card = load_card(card)
    task_card.check_covers(real, str(card))
    config = GenerationConfig(
        per_class=0, temperature=temperature, seed=seed, max_calls_per_class=max_calls
    )
    spec = GeneratorSpec(
        kind=backend, model=model, base_url=base_url, api_key_env=api_key_env, chat=chat
    )
    claim_output(ctx, out)
    llm = open_backend(spec, AnswerCache(cache))
    made, report = asyncio.run(
        generate_pairs(llm, task_card, real, per_class, config, pair_description)
    )
    # The second text under the column the real data uses, so the experiment reads both alike.
    _write(made.frame.rename(columns={"text_pair": text_pair_column}), out)
    _report(report.to_dict(), out, len(made))


def _write(frame: object, out: Path) -> None:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    if out.suffix.lower() == ".jsonl":
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(out, index=False, encoding="utf-8")


def _report(report: dict[str, object], out: Path, kept: int) -> None:
    from synthmix.core.files import sidecar

    path = sidecar(out)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    typer.echo(
        f"wrote {kept} to {out} from {report['calls']} calls ({report['cached_calls']} cached); "
        f"stopped by {report['stop']}; report {path}",
        err=True,
    )
