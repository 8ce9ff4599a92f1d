"""`synthmix` commands: task cards and class keywords."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthmix.cli.base import Encoding, LabelColumn, TextColumn, _emit, app, card_app


@card_app.command("init")
def card_init(
    data: Annotated[Path, typer.Argument(help="Labeled data (CSV/TSV/JSONL/JSON/Parquet).")],
    out: Annotated[Path | None, typer.Option(help="Write the card here instead of stdout.")] = None,
    task: Annotated[str | None, typer.Option(help="Task name (default: the file's name).")] = None,
    language: Annotated[str, typer.Option(help="Language code of the texts.")] = "ru",
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    encoding: Encoding = "auto",
    multi_label: Annotated[
        bool, typer.Option(help="Each row holds a list of labels (see --labels-column).")
    ] = False,
    labels_column: Annotated[
        str, typer.Option(help="Multi-label: the column holding each row's label list.")
    ] = "labels",
    label_delimiter: Annotated[
        str | None,
        typer.Option(help="Multi-label: labels joined by this (default: a JSON list)."),
    ] = None,
    text_pair_column: Annotated[
        str | None, typer.Option(help="Text pairs: the column holding the second text.")
    ] = None,
) -> None:
    """Draft a task card from a dataset: class names, counts and a few examples to edit
    (multi-label: per-label counts, co-occurrence and rows with no label in its header)."""
    from synthmix.cards.card import draft_card_yaml
    from synthmix.cards.multilabel import draft_multilabel_card_yaml, draft_pair_card_yaml
    from synthmix.data.labeled import load_labeled
    from synthmix.data.multilabel import load_multilabel

    name = task or data.stem
    if multi_label:
        multi = load_multilabel(
            data, text_column, labels_column, label_delimiter, text_pair_column, encoding
        )
        text = draft_multilabel_card_yaml(multi, task=name, language=language)
    elif text_pair_column is not None:
        pairs = load_labeled(data, text_column, label_column, encoding, text_pair_column)
        text = draft_pair_card_yaml(pairs, task=name, language=language)
    else:
        labeled = load_labeled(data, text_column, label_column, encoding)
        text = draft_card_yaml(labeled, task=name, language=language)
    _emit(text, out)


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

    from synthmix.cards.card import load_card
    from synthmix.cards.keywords import mine_keywords
    from synthmix.data.labeled import load_labeled

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
