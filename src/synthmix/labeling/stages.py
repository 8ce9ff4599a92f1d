"""Labeling stages: each scores texts against the task card's classes.

A stage returns an (n_texts x n_classes) array of class confidences in the card's class
order; the cascade lets a stage decide a text when the row's maximum reaches the stage's
`threshold`, and passes the rest on. Stages are cheap to build: models load on first use.

With `multi_label=True` each column is a confidence of its own (a text may carry several
labels or none), not a share of one distribution: keywords score every label they match,
embeddings each label's cosine to its prototype, NLI each label's entailment on its own;
the multi-label cascade (`labeling.multilabel`) keeps every label above its threshold.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.special import softmax

from synthmix.cards.card import TaskCard
from synthmix.cards.keywords import make_lemmatizer
from synthmix.core.text import is_russian
from synthmix.data.labeled import LabeledData
from synthmix.embeddings.encoder import Encoder, build_encoder

_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")


@runtime_checkable
class LabelingStage(Protocol):
    """`score` gives class confidences (rows in [0, 1], columns in `classes` order); a
    text is decided by the stage when its row maximum is >= `threshold`.

    A stage that learns from labeled texts (prototypes, shots, mined keywords) also offers
    `without(texts) -> stage`: a copy that does not use those texts, so cross-validation
    can score each labeled text with a stage that never saw it."""

    name: str
    threshold: float
    classes: list[str]

    def score(self, texts: Sequence[str]) -> np.ndarray: ...


# ---------------------------------------------------------------------------- keywords

Keywords = Mapping[str, Sequence[str] | Sequence[tuple[str, float]]]


class KeywordStage:
    """Weighted keyword/lemma matches per class.

    Keywords come from the card (weight 1 each) and, optionally, from
    `synthmix.cards.keywords.mine_keywords` (`mined`: class -> [(lemma, z)]; weight z / the
    class's largest z, so a class's best mined word weighs as much as a card keyword).
    Texts and keywords are lemmatised (pymorphy3 for Russian), so "бесит" in the card
    matches "бесило"; multi-word keywords ("надо же") match as consecutive lemmas.

    Confidence (per class c, with s_c the summed weight of c's matches and S = sum_c s_c):

        conf_c = max(0, s_c - max_{d != c} s_d) / (S + prior)

    i.e. the margin between c and its strongest rival, shrunk by a pseudo-count `prior`
    of "no evidence". With prior = 1 one card keyword alone gives 0.5, two give 0.67,
    three 0.75; one match for a rival class halves the margin's worth, and a tie gives
    0 (a tie is not evidence for either class). Texts with no match score 0 everywhere.
    """

    def __init__(
        self,
        card: TaskCard,
        mined: Keywords | None = None,
        threshold: float = 0.5,
        prior: float = 1.0,
        name: str = "keywords",
        lemmatizer: Callable[[str], str] | None = None,
        multi_label: bool = False,
    ) -> None:
        self.name = name
        self.multi_label = multi_label
        self.threshold = threshold
        self.prior = prior
        self.card = card
        self.classes = card.class_names
        self._lemma = lemmatizer or make_lemmatizer(card.language)
        self.patterns = self._patterns(card, mined or {})
        self._mined_from: tuple[LabeledData, int] | None = None

    def mine_from(self, examples: LabeledData, top_k: int = 20) -> KeywordStage:
        """Add keywords mined from labeled `examples` (remembered, so `without` mines again
        on the rest)."""
        from synthmix.cards.keywords import mine_keywords

        mined = mine_keywords(examples, self.card.language, top_k=top_k)
        self.patterns = self._patterns(self.card, mined)
        self._mined_from = (examples, top_k)
        return self

    def without(self, texts: AbstractSet[str]) -> KeywordStage:
        """Card keywords stay (written by a person, not learned); mined ones are mined
        again without `texts`."""
        if self._mined_from is None:
            return self
        examples, top_k = self._mined_from
        keep = np.flatnonzero([t not in texts for t in examples.texts])
        return copy.copy(self).mine_from(examples.subset(keep), top_k)

    def _lemmas(self, text: str) -> list[str]:
        return [self._lemma(w).replace("ё", "е") for w in _WORD.findall(text)]

    def _patterns(
        self, card: TaskCard, mined: Keywords
    ) -> list[tuple[tuple[str, ...], int, float]]:
        """(lemma sequence, class index, weight); the largest weight wins a duplicate."""
        best: dict[tuple[tuple[str, ...], int], float] = {}
        for index, class_card in enumerate(card.classes):
            entries: list[tuple[str, float]] = [(k, 1.0) for k in class_card.keywords]
            entries += _mined_entries(mined.get(class_card.name, []))
            for word, weight in entries:
                lemmas = tuple(self._lemmas(word))
                if lemmas:
                    key = (lemmas, index)
                    best[key] = max(best.get(key, 0.0), weight)
        return [(lemmas, index, weight) for (lemmas, index), weight in best.items()]

    def evidence(self, text: str) -> np.ndarray:
        """Summed keyword weight per class (each keyword counted once per text, so a
        repeated word does not outvote two different ones)."""
        lemmas = self._lemmas(text)
        joined = f" {' '.join(lemmas)} "
        totals = np.zeros(len(self.classes))
        for pattern, index, weight in self.patterns:
            if f" {' '.join(pattern)} " in joined:
                totals[index] += weight
        return totals

    def score(self, texts: Sequence[str]) -> np.ndarray:
        evidence = np.array([self.evidence(t) for t in texts]).reshape(len(texts), -1)
        if self.multi_label:
            # Labels do not compete: each label's own evidence, shrunk by the same prior
            # (one card keyword 0.5, two 0.67), so every matching label can pass.
            return evidence / (evidence + self.prior)
        return margin_confidence(evidence, self.prior)


def margin_confidence(evidence: np.ndarray, prior: float) -> np.ndarray:
    """conf_c = max(0, s_c - max_{d != c} s_d) / (S + prior), row-wise (see KeywordStage)."""
    out = np.zeros_like(evidence, dtype=float)
    if evidence.shape[1] == 0:
        return out
    for c in range(evidence.shape[1]):
        rivals = np.delete(evidence, c, axis=1)
        strongest = rivals.max(axis=1) if rivals.shape[1] else np.zeros(len(evidence))
        out[:, c] = np.maximum(0.0, evidence[:, c] - strongest)
    return out / (evidence.sum(axis=1, keepdims=True) + prior)


def _mined_entries(items: Sequence[str] | Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    pairs = [(it, 1.0) if isinstance(it, str) else (str(it[0]), float(it[1])) for it in items]
    top = max((w for _, w in pairs), default=1.0)
    scale = top if top > 0 else 1.0
    return [(word, max(0.0, weight) / scale) for word, weight in pairs]


# ---------------------------------------------------------------------------- embeddings


class EmbeddingStage:
    """Cosine similarity between a text and each class prototype, softmax with a
    temperature.

    A prototype is the renormalised mean of the embeddings of the class description,
    its keywords (one string) and its examples (card examples plus `examples`, e.g. the
    few labeled texts a team has; a seeded sample of `max_examples` per class where
    there are more: the mean of a few hundred is as good as that of thousands, and the
    offline encoder takes ~20 ms a text). Temperature 0.05 turns a cosine lead of 0.05
    into a probability ratio of e; sentence encoders put unrelated sentences at cosine
    0.1-0.3 and paraphrases at 0.7+, so the useful differences are a few hundredths.
    """

    def __init__(
        self,
        card: TaskCard,
        encoder: Encoder | None = None,
        temperature: float = 0.05,
        threshold: float = 0.5,
        examples: Mapping[str, Sequence[str]] | None = None,
        name: str = "embedding",
        max_examples: int = 200,
        seed: int = 0,
        multi_label: bool = False,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if max_examples < 1:
            raise ValueError(f"max_examples must be >= 1, got {max_examples}")
        self.name = name
        self.multi_label = multi_label
        self.threshold = threshold
        self.temperature = temperature
        self.card = card
        self.classes = card.class_names
        self.encoder = encoder if encoder is not None else build_encoder()
        rng = random.Random(seed)
        self.examples = {
            label: list(texts)
            if len(texts) <= max_examples
            else rng.sample(list(texts), max_examples)
            for label, texts in sorted((examples or {}).items())
        }
        self._prototypes: np.ndarray | None = None
        self._excluded: AbstractSet[str] = frozenset()

    def without(self, texts: AbstractSet[str]) -> EmbeddingStage:
        """A copy whose prototypes leave out `texts` (card examples included); the
        description and keywords stay."""
        other = copy.copy(self)
        other._excluded = frozenset(self._excluded | texts)
        other._prototypes = None
        return other

    def class_texts(self, name: str) -> list[str]:
        class_card = self.card.get(name)
        texts = [class_card.description]
        if class_card.keywords:
            texts.append(", ".join(class_card.keywords))
        learned = class_card.examples + self.examples.get(name, [])
        return texts + [t for t in learned if t not in self._excluded]

    def prototypes(self) -> np.ndarray:
        if self._prototypes is None:
            rows = []
            for name in self.classes:
                vectors = self.encoder.encode(self.class_texts(name))
                mean = vectors.mean(axis=0)
                rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            self._prototypes = np.vstack(rows)
        return self._prototypes

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.classes)))
        cosine = np.asarray(self.encoder.encode(list(texts)) @ self.prototypes().T, dtype=float)
        if self.multi_label:
            # A softmax would make labels share one unit of mass; each label's cosine is
            # its own evidence, and calibration finds each label's threshold on it.
            return np.clip(cosine, 0.0, 1.0)
        return softmax(cosine / self.temperature, axis=1)


# ---------------------------------------------------------------------------- NLI

NLI_DEFAULT_MODEL = "MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7"
HYPOTHESIS_TEMPLATES = {"ru": "Этот текст выражает {}.", "en": "This text is about {}."}


def verbalize(description: str, name: str) -> str:
    """The short head of a description ("Гнев: злость, ..." -> "гнев"); the class name
    where the description has no short head."""
    head = description.split(":", 1)[0].strip()
    if ":" in description and 0 < len(head.split()) <= 3:
        return head[:1].lower() + head[1:]
    return name.replace("_", " ")


class NLIStage:
    """Zero-shot classification with an NLI model (transformers' zero-shot pipeline):
    each class verbalisation fills the hypothesis template, the entailment logits are
    softmaxed across classes. Loaded on first use; `model` is a hub name or a local path.
    """

    def __init__(
        self,
        card: TaskCard,
        model: str = NLI_DEFAULT_MODEL,
        hypothesis_template: str | None = None,
        verbalizations: Mapping[str, str] | None = None,
        threshold: float = 0.7,
        batch_size: int = 8,
        device: str | int | None = None,
        name: str = "nli",
        multi_label: bool = False,
    ) -> None:
        self.name = name
        self.multi_label = multi_label
        self.threshold = threshold
        self.model = model
        self.classes = card.class_names
        language = "ru" if is_russian(card.language) else "en"
        self.hypothesis_template = hypothesis_template or HYPOTHESIS_TEMPLATES[language]
        given = dict(verbalizations or {})
        self.verbalizations = [
            given.get(c.name) or verbalize(c.description, c.name) for c in card.classes
        ]
        if len(set(self.verbalizations)) < len(self.verbalizations):
            # Two classes with one wording could not be told apart by the model.
            self.verbalizations = [c.replace("_", " ") for c in self.classes]
        self.batch_size = batch_size
        self.device = device
        self._pipeline: Any = None

    def _load(self) -> Any:
        if self._pipeline is None:
            from transformers import pipeline  # deferred: imports torch

            self._pipeline = pipeline(
                "zero-shot-classification", model=self.model, device=self.device
            )
        return self._pipeline

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.classes)))
        outputs = self._load()(
            list(texts),
            candidate_labels=self.verbalizations,
            hypothesis_template=self.hypothesis_template,
            # multi_label: entailment against contradiction per label, not across labels.
            multi_label=self.multi_label,
            batch_size=self.batch_size,
        )
        if isinstance(outputs, dict):
            outputs = [outputs]
        column = {v: i for i, v in enumerate(self.verbalizations)}
        result = np.zeros((len(texts), len(self.classes)))
        for row, output in enumerate(outputs):
            for label, value in zip(output["labels"], output["scores"], strict=True):
                result[row, column[label]] = float(value)
        return result
