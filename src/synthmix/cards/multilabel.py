"""Task cards drafted from multi-label data, and from text pairs.

A multi-label card lists every label with its count, and its header reports what a
researcher checks first: rows with no label, rows with several, and which labels go together.
The card format is the single-label one: whether a task is multi-label or takes pairs is
the experiment's data setting (`task: multi_label`, `text_pair_column`), and a pair card's
`description` is where to say what the second text is.
"""

from __future__ import annotations

import numpy as np

from synthmix.cards.card import DESCRIPTION_TODO, ClassCard, TaskCard
from synthmix.data.labeled import LabeledData
from synthmix.data.multilabel import MultiLabelData, summary_lines

MULTI_LABEL_NOTE = "A multi-label task: a text carries any number of these labels."
PAIR_TODO = "TODO: say what the second text of each pair is (e.g. the aspect term of the review)"


def draft_multilabel_card(
    data: MultiLabelData, task: str, language: str = "ru", n_examples: int = 3, seed: int = 0
) -> TaskCard:
    """Label names and a few real texts carrying each label (preferably texts with that label
    alone, so an example shows the label rather than its companions)."""
    rng = np.random.default_rng(seed)
    sets = data.label_sets
    texts = data.texts
    classes = []
    for label, count in data.label_counts().items():
        alone = [i for i, labels in enumerate(sets) if labels == (label,)]
        mixed = [i for i, labels in enumerate(sets) if label in labels and labels != (label,)]
        picked: list[int] = []
        for pool in (alone, mixed):
            need = n_examples - len(picked)
            if need > 0 and pool:
                chosen = rng.choice(len(pool), size=min(need, len(pool)), replace=False)
                picked.extend(pool[i] for i in sorted(chosen))
        classes.append(
            ClassCard(
                name=label,
                description=f"{DESCRIPTION_TODO} ({count} texts carry it)",
                examples=[texts[i] for i in picked],
            )
        )
    description = MULTI_LABEL_NOTE + (f" {PAIR_TODO}" if data.pairs is not None else "")
    return TaskCard(task=task, language=language, classes=classes, description=description)


def draft_multilabel_card_yaml(data: MultiLabelData, task: str, language: str = "ru") -> str:
    card = draft_multilabel_card(data, task=task, language=language)
    header = [
        f"# Multi-label task card drafted from {data.source}.",
        *(f"# {line}" for line in summary_lines(data)),
        "# Edit each description to say what the label means, as the annotation guide does.",
    ]
    return "\n".join(header) + "\n" + card.to_yaml()


def draft_pair_card_yaml(data: LabeledData, task: str, language: str = "ru") -> str:
    """A single-label card for a text-pair task: the usual classes, plus `text_pair` to say
    what the second text is."""
    from synthmix.cards.card import draft_card

    card = draft_card(data, task=task, language=language)
    card.description = PAIR_TODO
    counts = data.class_counts()
    header = [
        f"# Text-pair task card drafted from {data.source} ({len(data)} pairs, "
        f"{len(counts)} classes).",
        *(f"#   {label}: {n}" for label, n in counts.items()),
    ]
    return "\n".join(header) + "\n" + card.to_yaml()
