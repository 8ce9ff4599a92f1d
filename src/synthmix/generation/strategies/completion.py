"""Few-shot for base (non-chat) models: a document of "class/text" pairs to continue."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.text import one_line
from synthmix.generation.strategies.base import ListStrategy, Prompt, require_examples, sample
from synthmix.generation.strategies.parsing import ParseResult, parse_completion


@dataclass
class CompletionFewShotStrategy(ListStrategy):
    """For base (non-chat) models: k "class/text" pairs, then an open one; the model's
    continuation up to the next blank line or class line is one new text."""

    needs_examples: ClassVar[bool] = True
    completion: ClassVar[bool] = True

    k: int = 8
    name: str = "completion-few-shot"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.texts_per_call = 1  # one text per continuation
        self.structured = False  # a continuation is the text itself: nothing to structure

    def settings(self) -> dict[str, Any]:
        return {"k": self.k}

    def build(
        self,
        class_card: ClassCard,
        task_card: TaskCard,
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> Prompt:
        require_examples(real_examples, self.name)
        t = self._use(task_card)
        item = t["completion_item"]
        shots = [
            item.format(name=class_card.shown_name, text=one_line(text))
            for text in sample(real_examples, self.k, rng)
        ]
        opening = item.format(name=class_card.shown_name, text="").rstrip()
        text = "\n\n".join([*shots, opening])
        stop = ["\n\n", t["completion_stop"]]
        return Prompt([{"role": "user", "content": text}], text, 1, stop=stop)

    def parse(self, answer: str) -> ParseResult:
        return parse_completion(answer, self._t["completion_stop"])
