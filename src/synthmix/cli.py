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
) -> None:
    """Run the mixing grid; rerun the same command to resume after a kill."""
    from synthmix.config import load_experiment
    from synthmix.experiment import run_experiment

    loaded = load_experiment(config)
    run_dir = out or Path("runs") / loaded.name
    outcome = run_experiment(loaded, run_dir, jobs=jobs)
    typer.echo(f"{outcome.ran} fits run, {outcome.reused} reused from {run_dir}", err=True)
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
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's source, run and report.")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per cell.")] = 3,
    jobs: Annotated[int, typer.Option(help="Parallel fits; 0 = one per core.")] = 0,
) -> None:
    """Run the whole pipeline offline on the shipped CEDR emotions data and write a report."""
    from synthmix.demo import run_demo

    paths = run_demo(out, seeds=seeds, jobs=jobs)
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
