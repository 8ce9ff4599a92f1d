"""The prompt of a generator tuned by `synthmix tune-generator`: the class label and a colon,
the format it was trained on ("label: text"); its continuation up to the line end is one text."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.text import one_line
from synthmix.generation.strategies.base import ListStrategy, Prompt
from synthmix.generation.strategies.parsing import ParseResult

# Shared with generation.tuning, which writes the training sequences in this format.
SEPARATOR = ": "


def tuned_prompt(label: str) -> str:
    return f"{label}{SEPARATOR.rstrip()}"


@dataclass
class TunedStrategy(ListStrategy):
    """For a causal LM fine-tuned on "label: text" sequences of the real training texts
    (LAMBADA, Anaby-Tavor et al. 2020): no instructions, no examples, the class label is
    the whole prompt. Use it with the transformers backend on the tuned folder."""

    completion: ClassVar[bool] = True
    name: str = "tuned"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.texts_per_call = 1  # one text per continuation

    def settings(self) -> dict[str, Any]:
        return {"format": f"label{SEPARATOR}text"}

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt:
        # The label id, not the display name: the tuned model learned the ids.
        text = tuned_prompt(class_card.name)
        return Prompt([{"role": "user", "content": text}], text, 1, stop=["\n"])

    def parse(self, answer: str) -> ParseResult:
        text = one_line(answer.split("\n", 1)[0])
        if not text:
            return ParseResult([], "tuned", problem="empty continuation")
        return ParseResult([text], "tuned")
