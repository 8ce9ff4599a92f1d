"""What happens to each generated text: an ordered chain of filters, each counting its drops.

In the spirit of datatrove's pipeline steps: a `Filter` has a `name` and a
`keep(candidate)` that answers True (keep), False (drop, counted under the filter's name)
or a string (drop, counted under that reason: the near-duplicate filter tells a near-copy
of a real text from a near-duplicate of an earlier output). `FilterChain` runs them in
order and stops at the first drop, so a text is counted once, by the first filter that
drops it; a filter later in the chain (a classifier, a language check) plugs in by being
appended.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

from synthmix.core.text import normalize
from synthmix.dedup import EmbeddingDedup, IncrementalDedup

Verdict = bool | str


@dataclass
class Candidate:
    """One text read from an answer. `truncated`: it is the last text of an answer cut at
    max_tokens, so it ends mid-text."""

    text: str
    label: str | None = None
    truncated: bool = False

    @cached_property
    def key(self) -> str:
        """The normal form (`core.text.normalize`) texts are compared in."""
        return normalize(self.text)


@runtime_checkable
class Filter(Protocol):
    name: str

    def keep(self, candidate: Candidate) -> Verdict: ...


@dataclass
class FilterChain:
    """Filters in order; `dropped` counts, by reason, what each dropped."""

    filters: list[Filter]
    dropped: Counter[str] = field(default_factory=Counter)

    def run(self, candidate: Candidate) -> str | None:
        """None when every filter keeps the candidate, else the reason it was dropped."""
        for step in self.filters:
            verdict = step.keep(candidate)
            if verdict is True:
                continue
            reason = step.name if verdict is False else str(verdict)
            self.dropped[reason] += 1
            return reason
        return None

    def append(self, *filters: Filter) -> None:
        self.filters.extend(filters)


# ------------------------------------------------------------------------------ filters


class TruncatedFilter:
    """The last text of an answer stopped by max_tokens is a fragment."""

    name = "truncated"

    def keep(self, candidate: Candidate) -> Verdict:
        return not candidate.truncated


_WORDS = re.compile(r"[^\W\d_]{2,}")


def is_degenerate(text: str, min_words: int = 2, max_repeat_share: float = 0.4) -> bool:
    """Cheap guards against what small models emit: bare numbering ("1."), one-word
    fragments, and loops ("не побоищем, не побоищем, ..."). Such texts are counted as
    rejected, never kept, so they cannot pass as unique examples."""
    words = [w.casefold() for w in _WORDS.findall(text)]
    if len(words) < min_words:
        return True
    if len(words) >= 6:
        most = max(words.count(w) for w in set(words))
        if most / len(words) > max_repeat_share:
            return True
    return bool(re.search(r"(.{1,4})\1{5,}", text))


@dataclass
class DegenerateFilter:
    """Fragments and loops (see `is_degenerate`)."""

    min_words: int = 2
    name: str = "degenerate"

    def keep(self, candidate: Candidate) -> Verdict:
        return not is_degenerate(candidate.text, min_words=self.min_words)


class RealCopyFilter:
    """A copy of a real text (same normal form) is a leak, not a new example."""

    name = "real-copy"

    def __init__(self, real_texts: Iterable[str]) -> None:
        self.keys = {normalize(t) for t in real_texts}

    def keep(self, candidate: Candidate) -> Verdict:
        return candidate.key not in self.keys


class ExactFilter:
    """A repeat of an earlier text (same normal form), or a text with no words at all."""

    name = "exact"

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def keep(self, candidate: Candidate) -> Verdict:
        if not candidate.key or candidate.key in self.seen:
            return False
        self.seen.add(candidate.key)
        return True


class DedupFilter:
    """The stages of an `IncrementalDedup` (MinHash, embeddings, near-copies of real
    texts, and exact repeats where the dedup has that stage). A drop is counted under
    `leak_reason` when the real-leak stage made it, else under the filter's name;
    `removed` counts drops by the stage that made them."""

    name = "near-duplicate"
    leak_reason = "real-leak"

    def __init__(self, dedup: IncrementalDedup) -> None:
        self.dedup = dedup
        self.removed: Counter[str] = Counter()

    def seed(self, texts: Iterable[str]) -> None:
        """Texts that count as already accepted (not counted as drops of this run)."""
        for text in texts:
            self.dedup.add(text)
        self.removed.clear()

    def keep(self, candidate: Candidate) -> Verdict:
        before = dict(self.dedup.stats.removed)
        if self.dedup.add(candidate.text, candidate.label):
            return True
        stage = next(
            (s for s, n in self.dedup.stats.removed.items() if n > before.get(s, 0)), self.name
        )
        self.removed[stage] += 1
        return self.leak_reason if stage == self.leak_reason else False

    def warm(self, texts: Sequence[str]) -> None:
        """Embed a batch's texts in one encoder call before the embedding stage asks for
        them one by one: the encoder caches vectors per text, and USE spends about 0.5 s
        per call on 2 cores whatever its size (one call for 28 texts: 0.8 s, 28 calls:
        14 s)."""
        forms = [form for form in (normalize(t) for t in texts) if form]
        for stage in self.dedup.stages:
            if isinstance(stage, EmbeddingDedup) and forms:
                stage.encoder.encode(forms)
