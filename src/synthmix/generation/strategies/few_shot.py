"""Strategies that show the model real texts of the class: few-shot, few-shot with keywords,
paraphrase."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from synthmix.core.text import one_line
from synthmix.generation.strategies.base import ListStrategy, bullets, require_examples, sample


@dataclass
class FewShotStrategy(ListStrategy):
    """k real examples, re-sampled on every call so the model sees varied contexts."""

    needs_examples: ClassVar[bool] = True

    k: int = 8
    name: str = "few-shot"

    def settings(self) -> dict[str, Any]:
        return {"texts_per_call": self.texts_per_call, "k": self.k}

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        require_examples(real_examples, self.name)
        examples = bullets(sample(real_examples, self.k, rng))
        return self._t["few_shot"].format(**fields, examples=examples)


@dataclass
class FewShotKeywordsStrategy(FewShotStrategy):
    """Few-shot plus a sampled subset of the class keywords ("fskw"): keywords steer
    topics apart between calls, which raises the share of unique texts."""

    n_keywords: int = 5
    name: str = "fskw"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n_keywords": self.n_keywords}

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        text = super().body(fields, rng, real_examples, keywords)
        if not keywords:
            return text
        chosen = ", ".join(sample(keywords, self.n_keywords, rng))
        return text + "\n" + self._t["keywords"].format(keywords=chosen)


@dataclass
class ParaphraseStrategy(ListStrategy):
    """Rewrite one sampled real text several ways."""

    needs_examples: ClassVar[bool] = True

    name: str = "paraphrase"

    def body(
        self,
        fields: dict[str, Any],
        rng: random.Random,
        real_examples: list[str],
        keywords: list[str],
    ) -> str:
        require_examples(real_examples, self.name)
        example = one_line(rng.choice(real_examples))
        return self._t["paraphrase"].format(**fields, example=example)
