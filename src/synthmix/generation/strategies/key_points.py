"""Key points: once per class, typical topics read from real examples; then texts about them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.core.errors import ConfigError
from synthmix.generation.strategies.base import (
    ListStrategy,
    Prompt,
    bullets,
    require_examples,
    sample,
)
from synthmix.generation.strategies.parsing import ParseResult, parse_list


@dataclass
class KeyPointsStrategy(ListStrategy):
    """Two steps: once per class, ask for typical topics ("key points") from real
    examples; then every call writes texts about a sample of those points.

    The engine runs `preparation_prompt` for each class and hands the answer to
    `accept_preparation` before `build`."""

    needs_examples: ClassVar[bool] = True

    k: int = 8
    n_points: int = 10
    points_per_call: int = 3
    name: str = "key-points"
    key_points: dict[str, list[str]] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {
            "texts_per_call": self.texts_per_call,
            "k": self.k,
            "n_points": self.n_points,
            "points_per_call": self.points_per_call,
        }

    def preparation_prompt(
        self, class_card: ClassCard, task_card: TaskCard, real_examples: list[str]
    ) -> Prompt | None:
        require_examples(real_examples, self.name)
        fields = {**self._fields(class_card, task_card), "n": self.n_points}
        t = self._use(task_card)
        # A fixed sample per class: the key points are computed once and reused.
        rng = random.Random(f"key-points:{class_card.name}")
        examples = bullets(sample(real_examples, self.k, rng))
        body = t["key_points_extract"].format(**fields, examples=examples)
        return self._list_prompt(t, fields, body)

    def accept_preparation(self, class_name: str, answer: str) -> ParseResult:
        parsed = parse_list(answer, self.n_points)
        self.key_points[class_name] = parsed.texts
        return parsed

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        points = self.key_points.get(fields["class_id"])
        if not points:
            raise ConfigError(f"key-points: no key points for class '{fields['class_id']}'")
        chosen = bullets(sample(points, self.points_per_call, rng))
        return self._t["key_points_write"].format(**fields, points=chosen)
