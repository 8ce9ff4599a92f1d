"""Rule-based augmentation: the baseline every LLM generator has to beat.

EDA (Wei & Zou 2019) without synonym replacement: random swap, random deletion and random
insertion of an in-class word. Synonyms are left out on purpose: a thesaurus would bring
knowledge from outside the labeled data, and the baseline should show what reshuffling the
real data alone buys. For Russian, an inserted word has the same part of speech as the word
it lands next to (pymorphy3), so "noun noun" stays plausible instead of "noun preposition".

The output is a synthetic *source* with the same provenance columns an LLM generator
writes, so it goes through mixing and evaluation unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from synthmix.core.errors import ConfigError, SynthmixError
from synthmix.core.text import is_russian, normalize
from synthmix.data.labeled import LABEL, TEXT, LabeledData

log = logging.getLogger("synthmix")

OPERATIONS = ("swap", "delete", "insert")
GENERATOR = "rule-based"
STRATEGY = "eda"

# A word is letters/digits, optionally joined by hyphens or apostrophes ("кто-то", "don't");
# anything else that is not space is punctuation, kept in runs so ")))" and "..." survive.
_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]+")
_WORD = re.compile(r"\w")
# Punctuation that attaches to the token before it (closing) or after it (opening) when
# tokens are joined back, so the output keeps ordinary typography.
_CLOSING = tuple(",.!?:;)]»…")
_OPENING = frozenset("([«")


@dataclass(frozen=True)
class AugmentConfig:
    """How many texts to make per class and how hard to change each one.

    `alpha` is the fraction of a text's words each operation touches (at least one word);
    `max_attempts_factor` bounds the work for a class whose texts cannot yield `per_class`
    distinct variants (per_class * factor attempts, then the class stops with a warning).
    """

    per_class: int
    alpha: float = 0.1
    operations: tuple[str, ...] = OPERATIONS
    language: str = "ru"
    seed: int = 0
    max_attempts_factor: int = 20

    def __post_init__(self) -> None:
        if self.per_class < 0:
            raise ConfigError(f"per_class must be >= 0, got {self.per_class}")
        if not 0 < self.alpha <= 1:
            raise ConfigError(f"alpha must be in (0, 1], got {self.alpha}")
        if not self.operations:
            raise ConfigError("operations must name at least one of " + ", ".join(OPERATIONS))
        unknown = [op for op in self.operations if op not in OPERATIONS]
        if unknown:
            raise ConfigError(f"unknown operation {unknown[0]!r} (use {', '.join(OPERATIONS)})")
        if self.max_attempts_factor < 1:
            raise ConfigError(f"max_attempts_factor must be >= 1, got {self.max_attempts_factor}")


# ----------------------------------------------------------------------------- text helpers


def tokenize(text: str) -> list[str]:
    """Split into word and punctuation tokens."""
    return _TOKEN.findall(text)


def is_word(token: str) -> bool:
    return _WORD.match(token) is not None


def detokenize(tokens: list[str]) -> str:
    """Join with spaces, but glue closing punctuation to the token before it and an opening
    bracket or quote to the token after it, so "слово , слово" reads "слово, слово"."""
    parts: list[str] = []
    glue_next = False
    for token in tokens:
        if parts and not glue_next and not token.startswith(_CLOSING):
            parts.append(" ")
        parts.append(token)
        glue_next = token in _OPENING
    return "".join(parts)


# ------------------------------------------------------------------------ part of speech


class _PosTagger:
    """Part of speech of the most probable pymorphy3 parse, cached per lowercased token.

    The analyzer is created on first use: loading its dictionaries takes about half a
    second, which non-Russian runs and imports of this module should not pay.
    """

    def __init__(self, language: str) -> None:
        self._enabled = is_russian(language)
        self._analyzer: Any = None
        self._cache: dict[str, str] = {}

    def pos(self, word: str) -> str:
        if not self._enabled:
            return ""  # one group: no grammatical matching outside Russian
        key = word.lower()
        tag = self._cache.get(key)
        if tag is None:
            if self._analyzer is None:
                import pymorphy3  # deferred: slow to import and to set up

                self._analyzer = pymorphy3.MorphAnalyzer()
            tag = str(self._analyzer.parse(key)[0].tag.POS or "")
            self._cache[key] = tag
        return tag


@dataclass
class _ClassVocab:
    """Words of one class's real texts, grouped by part of speech.

    `texts_with` counts the texts a word occurs in, so a draw can skip a word that occurs
    only in the text being changed (an insertion must come from *other* texts).
    """

    by_pos: dict[str, list[str]]
    all_words: list[str]
    texts_with: dict[str, int]


def _vocab_form(token: str, position: int) -> str:
    # A capital at the start of a text is positional ("Суровый медведь"); inserted mid-text
    # it would look like a name, so the first word is stored lowercased unless all caps.
    if position == 0 and not token.isupper():
        return token.lower()
    return token


def build_vocab(texts: Iterable[list[str]], tagger: _PosTagger) -> _ClassVocab:
    """Vocabulary of one class from its tokenised texts; order follows the data, so draws
    are reproducible without sorting."""
    by_pos: dict[str, list[str]] = {}
    texts_with: dict[str, int] = {}
    for tokens in texts:
        words = {_vocab_form(t, i) for i, t in enumerate(tokens) if is_word(t)}
        for word in sorted(words):  # sorted: set order varies with PYTHONHASHSEED
            if word not in texts_with:
                by_pos.setdefault(tagger.pos(word), []).append(word)
            texts_with[word] = texts_with.get(word, 0) + 1
    all_words = [w for group in by_pos.values() for w in group]
    return _ClassVocab(by_pos=by_pos, all_words=all_words, texts_with=texts_with)


# ---------------------------------------------------------------------------- operations


def _word_positions(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if is_word(t)]


def _how_many(n_words: int, alpha: float) -> int:
    return max(1, round(alpha * n_words))


def random_swap(tokens: list[str], alpha: float, rng: random.Random) -> list[str]:
    """Swap two random words, alpha * n_words times (at least once)."""
    out = list(tokens)
    positions = _word_positions(out)
    if len(positions) < 2:
        return out
    for _ in range(_how_many(len(positions), alpha)):
        a, b = rng.sample(positions, 2)
        out[a], out[b] = out[b], out[a]
    return out


def random_delete(tokens: list[str], alpha: float, rng: random.Random) -> list[str]:
    """Drop each word with probability alpha; at least one word goes and one stays, so the
    operation always changes the text and never empties it."""
    positions = _word_positions(tokens)
    if len(positions) < 2:
        return list(tokens)
    dropped = {i for i in positions if rng.random() < alpha}
    if not dropped:
        dropped = {rng.choice(positions)}
    if len(dropped) == len(positions):
        dropped.discard(rng.choice(positions))
    return [t for i, t in enumerate(tokens) if i not in dropped]


def random_insert(
    tokens: list[str],
    alpha: float,
    rng: random.Random,
    vocab: _ClassVocab,
    tagger: _PosTagger,
) -> list[str]:
    """Insert in-class words next to random words of the same part of speech."""
    out = list(tokens)
    own = {_vocab_form(t, i) for i, t in enumerate(tokens) if is_word(t)}
    for _ in range(_how_many(len(_word_positions(out)), alpha)):
        positions = _word_positions(out)
        if not positions:  # a text of punctuation or emoji only: append a class word
            word = _draw_word(vocab.all_words, vocab, own, rng)
            if word is not None:
                out.append(word)
            continue
        anchor = rng.choice(positions)
        pool = vocab.by_pos.get(tagger.pos(out[anchor]), [])
        # Fall back to any class word when the anchor's part of speech has no word from
        # another text (e.g. an interjection seen once): a small class should still grow.
        word = _draw_word(pool, vocab, own, rng) or _draw_word(vocab.all_words, vocab, own, rng)
        if word is not None:
            out.insert(anchor + rng.randint(0, 1), word)  # before or after the anchor
    return out


def _draw_word(
    pool: list[str], vocab: _ClassVocab, own: set[str], rng: random.Random, tries: int = 8
) -> str | None:
    # Rejection sampling is cheap here: few words occur only in the source text.
    for _ in range(tries):
        word = rng.choice(pool) if pool else None
        if word is None:
            return None
        if vocab.texts_with.get(word, 0) > 1 or word not in own:
            return word
    return None


# ------------------------------------------------------------------------------- augment


def _choose_ops(n_words: int, operations: tuple[str, ...], rng: random.Random) -> list[str]:
    # Swap and delete need two words; a one-word text can only grow.
    allowed = list(operations) if n_words >= 2 else [op for op in operations if op == "insert"]
    if not allowed:
        return []
    return rng.sample(allowed, rng.randint(1, min(2, len(allowed))))


def _apply(
    tokens: list[str],
    ops: list[str],
    config: AugmentConfig,
    rng: random.Random,
    vocab: _ClassVocab,
    tagger: _PosTagger,
) -> list[str]:
    for op in ops:
        if op == "swap":
            tokens = random_swap(tokens, config.alpha, rng)
        elif op == "delete":
            tokens = random_delete(tokens, config.alpha, rng)
        else:
            tokens = random_insert(tokens, config.alpha, rng, vocab, tagger)
    return tokens


def _recipe_hash(config: AugmentConfig) -> str:
    # Fills the prompt_hash provenance column: sources made with different settings split
    # apart the way LLM sources with different prompts do.
    recipe = f"eda|alpha={config.alpha}|ops={'+'.join(config.operations)}|{config.language}"
    return hashlib.sha256(recipe.encode("utf-8")).hexdigest()[:12]


def _augment_class(
    label: str,
    rows: list[int],
    tokenized: list[list[str]],
    seen: set[str],
    config: AugmentConfig,
    tagger: _PosTagger,
    progress: bool,
) -> list[dict[str, Any]]:
    """Variants of one class's texts; `seen` holds normalised real and already-made texts
    and is updated, so no output repeats a real text or another output."""
    # A string seed is hashed with SHA-512, so it is stable across processes; per-class
    # streams keep one class's output independent of how many rows other classes needed.
    rng = random.Random(f"{config.seed}:{label}")
    vocab = build_vocab((tokenized[r] for r in rows), tagger)
    order = list(rows)
    rng.shuffle(order)
    made: list[dict[str, Any]] = []
    limit = config.per_class * config.max_attempts_factor
    bar = tqdm(total=config.per_class, desc=f"eda {label}", disable=not progress)
    attempts = 0
    while len(made) < config.per_class and attempts < limit:
        row = order[attempts % len(order)]
        attempts += 1
        tokens = tokenized[row]
        ops = _choose_ops(len(_word_positions(tokens)), config.operations, rng)
        if not ops:
            continue
        text = detokenize(_apply(tokens, ops, config, rng, vocab, tagger))
        key = normalize(text)
        if not key or key in seen:
            continue
        seen.add(key)
        made.append(_record(text, label, row, ops, len(made), config))
        bar.update(1)
    bar.close()
    if len(made) < config.per_class:
        log.warning(
            "eda augmentation: class '%s' got %d of %d texts after %d attempts "
            "(too few distinct variants of its %d real texts)",
            label,
            len(made),
            config.per_class,
            attempts,
            len(rows),
        )
    return made


def _record(
    text: str, label: str, row: int, ops: list[str], index: int, config: AugmentConfig
) -> dict[str, Any]:
    return {
        TEXT: text,
        LABEL: label,
        "generator": GENERATOR,
        "strategy": STRATEGY,
        "temperature": float("nan"),
        "prompt_hash": _recipe_hash(config),
        "seed": config.seed,
        "call_id": f"eda-{label}-{index}",
        "parent_row": row + 1,  # 1-based, like row numbers in error messages
        "operations": "+".join(ops),
    }


_COLUMNS = [
    TEXT,
    LABEL,
    "generator",
    "strategy",
    "temperature",
    "prompt_hash",
    "seed",
    "call_id",
    "parent_row",
    "operations",
]


def augment(
    data: LabeledData,
    config: AugmentConfig,
    progress: bool = False,
    counts: Mapping[str, int] | None = None,
) -> LabeledData:
    """Make `config.per_class` new texts per class (or `counts[label]`, where given) from
    the real texts of that class.

    Outputs are distinct from each other and from every real text of `data` after
    normalisation (case, spacing, punctuation). A class whose texts cannot give enough
    variants stops early with a warning and has fewer rows. Same seed, same output.
    """
    tokenized = [tokenize(t) for t in data.texts]
    seen = {normalize(t) for t in data.texts}
    tagger = _PosTagger(config.language)
    labels = data.frame[LABEL].to_numpy()
    records: list[dict[str, Any]] = []
    for label in data.classes:
        rows = [i for i in range(len(labels)) if labels[i] == label]
        wanted = config if counts is None else replace(config, per_class=counts.get(label, 0))
        records.extend(_augment_class(label, rows, tokenized, seen, wanted, tagger, progress))
    frame = pd.DataFrame.from_records(records, columns=_COLUMNS)
    frame = frame.astype({"temperature": float, "seed": int, "parent_row": int})
    return LabeledData(frame=frame, source=f"eda augmentation of {data.source}")


# --------------------------------------------------------------------------------- write

_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    ".csv": lambda frame, path: frame.to_csv(path, index=False, encoding="utf-8"),
    ".jsonl": lambda frame, path: frame.to_json(
        path, orient="records", lines=True, force_ascii=False
    ),
    ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
}


def write_source(data: LabeledData, path: Path) -> None:
    """Write a synthetic source as .csv, .jsonl or .parquet (UTF-8), chosen by suffix."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise SynthmixError(
            f"{path}: cannot write '{path.suffix}' files (use {', '.join(_WRITERS)})"
        )
    writer(data.frame, path)
