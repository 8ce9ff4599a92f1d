"""`synthmix` commands: auto-labeling with the cascade, and LLM annotators with a moderator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from synthmix.cli.base import Encoding, LabelColumn, TextColumn, app, claim_output
from synthmix.core.errors import SynthmixError

if TYPE_CHECKING:
    from synthmix.labeling.run import LabelRun

MultiLabel = Annotated[
    bool,
    typer.Option(
        "--multi-label",
        help="Each text may carry several labels: label sets; labeled files hold label lists "
        "(--labels-column).",
    ),
]
LabelsColumn = Annotated[
    str, typer.Option(help="Multi-label: the column holding each row's label list.")
]
LabelDelimiter = Annotated[
    str | None, typer.Option(help="Multi-label: labels joined by this (default: a JSON list).")
]


@app.command()
def label(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Unlabeled texts (CSV/TSV/JSONL/JSON/Parquet).")],
    card: Annotated[Path, typer.Option(help="Task card YAML.")],
    out: Annotated[Path, typer.Option(help="Labels (JSONL); <out stem>.report.json beside it.")],
    cascade: Annotated[
        Path | None,
        typer.Option(help="Cascade YAML (default: keywords -> embedding -> bundled Gemma)."),
    ] = None,
    calibrate: Annotated[
        Path | None,
        typer.Option(help="Gold labeled file: calibrate on it (else cross-validate on examples)."),
    ] = None,
    target_precision: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Precision each stage must reach.")
    ] = 0.9,
    fallback: Annotated[
        bool | None,
        typer.Option(
            "--fallback/--no-fallback",
            help="Guess a label for texts no stage decided (decided: false) instead of "
            "leaving them to the review file (default: the cascade's 'fallback', none).",
        ),
    ] = None,
    criterion: Annotated[str, typer.Option(help="'wilson' (lower bound) or 'point'.")] = "wilson",
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of gold held out to check.")
    ] = 0.3,
    examples: Annotated[
        Path | None,
        typer.Option(
            help="Labeled examples: LLM prompts, embedding prototypes, and (cross-validated) "
            "the thresholds."
        ),
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
    multi_label: MultiLabel = False,
    labels_column: LabelsColumn = "labels",
    label_delimiter: LabelDelimiter = None,
) -> None:
    """Auto-label texts with a confidence cascade whose thresholds are calibrated to a target
    precision on labeled texts (gold, else the examples by cross-validation); texts no stage
    decides go to <out stem>.review.jsonl. --multi-label: label sets with per-label
    thresholds; OUT holds a `labels` list per decided text (fallback guesses go to the
    review file)."""
    claim_output(ctx, out)
    from synthmix.cards.card import load_card
    from synthmix.data.labeled import load_labeled
    from synthmix.labeling.config import default_config, load_config
    from synthmix.labeling.run import label_texts, load_texts

    if criterion not in ("wilson", "point"):
        raise SynthmixError(f"--criterion must be 'wilson' or 'point', got {criterion!r}")
    task_card = load_card(card)
    config = load_config(cascade) if cascade is not None else default_config()
    if fallback is not None:
        config.fallback = "last" if fallback else "none"
    if multi_label:
        from synthmix.labeling.run import label_sets_from_files

        run = label_sets_from_files(
            data,
            task_card,
            str(card),
            config,
            examples=examples,
            gold=calibrate,
            columns=(text_column, labels_column, label_delimiter),
            encoding=encoding,
            target_precision=target_precision,
            criterion="point" if criterion == "point" else "wilson",
            holdout=holdout,
        )
        _report_labels(run, out)
        return
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
    _report_labels(run, out)


def _report_labels(run: LabelRun, out: Path) -> None:
    from synthmix.labeling.multilabel import MultiLabelResult
    from synthmix.labeling.run import review_path, write_run

    report = write_run(run, out)
    for line in run.summary_lines():
        typer.echo(line, err=True)
    multi = isinstance(run.result, MultiLabelResult)
    labelled = sum(d.decided if multi else d.labelled for d in run.result.decisions)
    what = "label sets" if multi else "labels"
    typer.echo(
        f"wrote {labelled} {what} to {out}, {run.trust.review} texts to review to "
        f"{review_path(out)}; report {report}"
    )


@app.command()
def annotate(
    ctx: typer.Context,
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
    multi_label: MultiLabel = False,
    labels_column: LabelsColumn = "labels",
    label_delimiter: LabelDelimiter = None,
) -> None:
    """LLM annotators label the same texts; a moderator settles their disagreements.
    --multi-label: label sets, per-label kappa, Krippendorff's alpha with set distances."""
    claim_output(ctx, out)
    from synthmix.cards.card import load_card
    from synthmix.data.labeled import load_labeled, read_frame
    from synthmix.labeling.annotate import (
        default_annotation_config,
        gold_labels,
        load_annotation_config,
        run_annotation,
        summary_lines,
        write_annotation,
    )
    from synthmix.labeling.run import texts_of

    task_card = load_card(card)
    config = load_annotation_config(annotators) if annotators else default_annotation_config()
    frame, _ = read_frame(data, encoding)
    texts = texts_of(frame, data, text_column)
    if multi_label:
        from synthmix.data.multilabel import load_multilabel
        from synthmix.labeling.annotate import gold_label_sets

        gold_sets = (
            gold_label_sets(frame, data, gold_column, task_card, label_delimiter)
            if gold_column
            else None
        )
        sets = (
            load_multilabel(examples, text_column, labels_column, label_delimiter, None, encoding)
            if examples
            else None
        )
        run = run_annotation(
            texts,
            task_card,
            config,
            examples=sets,
            gold=gold_sets,
            explain=explain,
            progress=True,
            multi_label=True,
        )
    else:
        gold = gold_labels(frame, data, gold_column, task_card) if gold_column else None
        shots = load_labeled(examples, text_column, label_column, encoding) if examples else None
        run = run_annotation(
            texts, task_card, config, examples=shots, gold=gold, explain=explain, progress=True
        )
    report = write_annotation(run, out, label_studio)
    for line in summary_lines(run):
        typer.echo(line, err=True)
    typer.echo(f"wrote {len(texts)} annotated texts to {out}; agreement {report}")


@app.command("label-issues")
def label_issues(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Real labeled texts (CSV/TSV/JSONL/JSON/Parquet).")],
    out: Annotated[Path, typer.Option(help="Review CSV; <out stem>.report.json goes beside it.")],
    synthetic: Annotated[
        Path | None, typer.Option(help="Synthetic labeled texts scored together with DATA.")
    ] = None,
    classifier: Annotated[
        str, typer.Option(help="Classifier of the registry giving out-of-fold probabilities.")
    ] = "tfidf_logreg",
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    filter_by: Annotated[
        str, typer.Option(help="cleanlab's rule: prune_by_noise_rate, both, confident_learning...")
    ] = "prune_by_noise_rate",
    seed: Annotated[int, typer.Option(help="Seed of the folds and the classifier.")] = 0,
    label_studio: Annotated[
        Path | None,
        typer.Option(help="Also write the flagged texts as Label Studio tasks (JSON) here."),
    ] = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
) -> None:
    """Suspected label errors (cleanlab's confident learning on out-of-fold probabilities),
    worst first, in a review CSV with an empty human_label column."""
    claim_output(ctx, out)
    if label_studio is not None:
        claim_output(ctx, label_studio, "Label Studio tasks")
    from synthmix.data.labeled import load_labeled
    from synthmix.labeling.issues import IssueConfig, find_label_issues, write_issues

    config = IssueConfig(classifier=classifier, folds=folds, filter_by=filter_by, seed=seed)
    config.check()
    real = load_labeled(data, text_column, label_column, encoding)
    synth = load_labeled(synthetic, text_column, label_column, encoding) if synthetic else None
    issues = find_label_issues(real, synth, config)
    files = {"real": str(data), **({"synthetic": str(synthetic)} if synthetic else {})}
    report = write_issues(issues, out, files, label_studio)
    parts = [
        f"{origin}: {entry['flagged']} of {entry['texts']}"
        for origin, entry in issues.counts().items()
    ]
    typer.echo(
        f"wrote {int(issues.flagged.sum())} suspected label issues ({', '.join(parts)}) to "
        f"{out}; report {report}"
    )


@app.command("review-import")
def review_import(
    ctx: typer.Context,
    reviews: Annotated[
        list[Path],
        typer.Argument(
            help="Label Studio JSON exports and/or review CSVs with a filled human_label column."
        ),
    ],
    card: Annotated[Path, typer.Option(help="Task card YAML: the classes a label must be.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Reviewed labels (JSONL: a source, --calibrate gold or --examples); "
            "<out stem>.conflicts.jsonl and .report.json beside it."
        ),
    ],
    reviewer: Annotated[
        str | None, typer.Option(help="Who filled the CSVs (unless they have a reviewer column).")
    ] = None,
    blank: Annotated[
        str,
        typer.Option(
            help="A blank human_label: 'skip' (not reviewed) or 'keep' (the label stands)."
        ),
    ] = "skip",
    from_name: Annotated[
        str, typer.Option(help="Name of the Choices tag in the Label Studio labeling config.")
    ] = "label",
    text_column: TextColumn = "text",
    encoding: Encoding = "auto",
) -> None:
    """Read human review back: Label Studio exports and filled review CSVs become labels
    with provenance (file, task/annotation or row, reviewer, label before review)."""
    claim_output(ctx, out)
    from synthmix.cards.card import load_card
    from synthmix.labeling.review_import import conflicts_path, import_reviews, write_import

    if blank not in ("skip", "keep"):
        raise SynthmixError(f"--blank must be 'skip' or 'keep', got {blank!r}")
    result = import_reviews(
        reviews,
        load_card(card),
        str(card),
        reviewer=reviewer,
        blank="keep" if blank == "keep" else "skip",
        from_name=from_name,
        text_column=text_column,
        encoding=encoding,
    )
    report = write_import(result, out)
    typer.echo(result.summary(), err=True)
    if result.conflicts:
        typer.echo(
            f"{len(result.conflicts)} texts whose reviewers disagree are left out: see "
            f"{conflicts_path(out)}",
            err=True,
        )
    typer.echo(f"wrote {len(result.labels)} reviewed labels to {out}; report {report}")
