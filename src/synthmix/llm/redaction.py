"""Redact personal data from real texts before they leave this machine.

Real examples go verbatim into prompts (few-shot lists, paraphrase sources, completion
shots), and they are often sensitive: mental-health posts, bank complaints. When the
backend runs elsewhere, every e-mail, phone, card or name in them would be sent to a
third party. A `Redactor` replaces such values with typed placeholders ("[PHONE]") that
keep the text natural enough for the model to imitate its style.

Two layers:

- patterns (any language): e-mails, phones, URLs and bare domains, @handles, card numbers
  (Luhn-checked, so order numbers stay), 20-digit Russian account numbers and IBANs,
  passport numbers written after "паспорт"/"серия";
- NER for Russian: natasha's slovnet news tagger (offline, ships in the wheel) finds
  person names and places (PER, LOC; ORG on request). English has no NER here; a crude
  capitalised-name heuristic (`english_names=True`, off by default) catches "John Smith"
  and "Mr Brown" but also "New York", so it is opt-in.

Redaction is best effort, not a guarantee: lower-case nicknames ("серега из питера"),
names spelled in Latin inside Russian text or addresses without a recognised place name
can pass. `counts` records how many values of each type were replaced, never the values.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.core.text import is_russian
from synthmix.llm.hosts import is_loopback

# Placeholder types; the text inserted is "[TYPE]". Russian templates keep them too: the
# model copies the bracketed token, which no real name or number looks like.
PATTERN_TYPES = ("EMAIL", "URL", "USER", "ACCOUNT", "CARD", "PASSPORT", "PHONE")
NER_TYPES = {"PER": "PERSON", "LOC": "LOCATION", "ORG": "ORG"}
PLACEHOLDER = re.compile(r"\[(?:[A-Z]+)\]")

# NER tags the whole batch padded to its longest text; sorting by length and batches of
# 32 make 1,000 sentences ~10x faster than natasha's default of one Doc at a time.
NER_BATCH = 32


@dataclass(frozen=True)
class RedactionConfig:
    """`enabled=None` redacts only for backends off this machine (see `should_redact`).
    `entity_types` are natasha tags: PER, LOC, ORG. `english_names` turns on the
    capitalised-name heuristic for non-Russian texts."""

    enabled: bool | None = None
    patterns: bool = True
    ner: bool = True
    entity_types: tuple[str, ...] = ("PER", "LOC")
    english_names: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.entity_types) - set(NER_TYPES))
        if unknown:
            raise ConfigError(
                f"unknown entity type {unknown[0]!r} for redaction (use {', '.join(NER_TYPES)})"
            )


def should_redact(config: RedactionConfig, backend_is_remote: bool) -> bool:
    """An explicit `enabled` wins; by default only texts sent off this machine are
    redacted, so local runs keep the exact examples."""
    if config.enabled is not None:
        return config.enabled
    return backend_is_remote


def backend_is_remote(backend: Any) -> bool:
    """Whether a backend's calls leave this machine. `is_remote` on the HTTP backend is
    True even for a llama.cpp server on 127.0.0.1 (it answers "does this cost calls"), so
    a loopback `base_url` counts as local; wrappers (`CachedBackend`) are looked through."""
    inner = getattr(backend, "backend", None)
    if inner is not None and inner is not backend:
        return backend_is_remote(inner)
    base_url = getattr(backend, "base_url", None)
    if isinstance(base_url, str) and is_loopback(base_url):
        return False
    return bool(getattr(backend, "is_remote", True))


# ---------------------------------------------------------------------------- patterns


def luhn_valid(digits: str) -> bool:
    """The card checksum: one wrong digit or a random number fails it 9 times in 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}", re.UNICODE)

# Bare domains only with TLDs that are not words: "конец.It was" or "т.е." must stay.
# TLDs that are also short words (me, be, ly, to, co) count only with a path: t.me/x.
_SAFE_TLD = (
    r"(?:com|ru|su|org|net|info|biz|io|ua|by|kz|uz|de|uk|fr|pro|online|site|app|dev|tv|рф|рус)"
)
_PATH_TLD = r"(?:me|be|ly|to|co|gl|cc|ms)"
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>«»\"]+"
    r"|(?<![\w@.-])(?:[a-zа-яё0-9-]+\.)+" + _SAFE_TLD + r"(?![\w-])(?:/[^\s<>«»\"]*)?"
    r"|(?<![\w@.-])(?:[a-z0-9-]+\.)+" + _PATH_TLD + r"/[^\s<>«»\"]+",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?)»\"'…"

# Telegram/Twitter/Instagram handles; an e-mail is replaced before this runs.
_HANDLE = re.compile(r"(?<![\w.@/])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")

_SEP = r"[ \-]"
# 20-digit Russian account, bare or grouped 5-3-1-4-7 or 4x5.
_ACCOUNT = re.compile(
    r"(?<![\d\w])(?:\d{20}"
    rf"|\d{{5}}{_SEP}\d{{3}}{_SEP}\d{_SEP}\d{{4}}{_SEP}\d{{7}}"
    rf"|\d{{4}}(?:{_SEP}\d{{4}}){{4}})(?![\d\w])"
)
# IBAN-like: country, check digits, 11-30 letters/digits; at least 8 digits after the
# country so product codes ("RU12 ABCD...") stay.
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{2,4}){3,8}(?![\w])")
# Cards: 13-19 digits, bare or in groups of four (Amex 4-6-5); Luhn decides.
# A masked number ("4276 **** **** 1234") names the card's bank and last digits.
_MASKED_CARD = re.compile(rf"(?<![\d\w])\d{{4}}{_SEP}(?:[*xX•]{{4}}{_SEP}){{2}}\d{{4}}(?![\d\w])")
_CARD = re.compile(
    r"(?<![\d\w])(?:\d{13,19}"
    rf"|\d{{4}}(?:{_SEP}\d{{4}}){{2}}{_SEP}\d{{1,4}}(?:{_SEP}\d{{1,3}})?"
    rf"|\d{{4}}{_SEP}\d{{6}}{_SEP}\d{{5}})(?![\d\w])"
)
# Only after "паспорт"/"серия", which stay in the text: "серия [PASSPORT]".
_PASSPORT = re.compile(
    r"(?P<kw>(?:паспорт\w*|серии|серия)\s*(?:серии|серия)?\s*:?\s*)\d{2}\s?\d{2}"
    r"\s*(?:,?\s*(?:№|номер|номера|n)\s*:?)?\s*\d{6}(?!\d)",
    re.IGNORECASE,
)
_PH = r"[\s\-.]*"
_PHONE = re.compile(
    # +7 / 8 / 7 (Russia), then 10 digits in any grouping with brackets, spaces, dashes.
    rf"(?<![\w+])(?:\+\s?7|8|7){_PH}\(?{_PH}\d{{3}}{_PH}\)?{_PH}\d{{3}}{_PH}\d{{2}}{_PH}\d{{2}}(?!\d)"
    # any other "+CC ..." number; the digit count is checked in _phone_ok.
    r"|(?<![\w+])\+\d[\d\s\-().]{6,20}\d(?!\d)"
    # "(495) 123-45-67", "916 123-45-67" without a country prefix.
    rf"|(?<![\w(])\(\d{{3,5}}\){_PH}\d{{1,3}}[\s\-]?\d{{2}}[\s\-]?\d{{2}}(?!\d)"
    r"|(?<![\w\-])9\d{2}[\s\-]\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?![\d\-])"
    # city numbers "123-45-67"; the dashes keep years and scores out.
    r"|(?<![\d\-])\d{3}-\d{2}-\d{2}(?![\d\-])"
)


# A decision: None keeps the match; (head, type, tail) replaces it by head + "[TYPE]" +
# tail, where head and tail are parts of the match that are not personal data.
Verdict = tuple[str, str, str] | None
Decide = Callable[[re.Match[str]], Verdict]


def _url_match(match: re.Match[str]) -> Verdict:
    # A URL at the end of a sentence swallows the full stop; give it back.
    value = match.group(0)
    stripped = value.rstrip(_URL_TRAILING)
    return "", "URL", value[len(stripped) :]


def _card_match(match: re.Match[str]) -> Verdict:
    """Card-shaped groups (4-4-4-4, 4-6-5) are cards whatever their checksum (a typo is still
    someone's card); an ungrouped digit run only when Luhn-valid, as such runs are as often
    parcel or order ids."""
    value = match.group(0)
    digits = _digits(value)
    if not 13 <= len(digits) <= 19:
        return None
    card_shaped = value != digits  # written in groups, as people write card numbers
    return ("", "CARD", "") if card_shaped or luhn_valid(digits) else None


def _iban_match(match: re.Match[str]) -> Verdict:
    body = match.group(0).replace(" ", "")
    ok = 15 <= len(body) <= 34 and len(_digits(body[2:])) >= 8
    return ("", "ACCOUNT", "") if ok else None


def _passport_match(match: re.Match[str]) -> Verdict:
    return match.group("kw"), "PASSPORT", ""


def _phone_match(match: re.Match[str]) -> Verdict:
    return ("", "PHONE", "") if 7 <= len(_digits(match.group(0))) <= 15 else None


def _always(kind: str) -> Decide:
    return lambda match: ("", kind, "")


# Order matters: an e-mail contains a domain and an "@", an account contains card-length
# digit runs, and a card number contains phone-length ones. Each pass sees the earlier
# placeholders, which no later pattern matches.
_PASSES: tuple[tuple[re.Pattern[str], Decide], ...] = (
    (_EMAIL, _always("EMAIL")),
    (_URL, _url_match),
    (_HANDLE, _always("USER")),
    (_IBAN, _iban_match),
    (_ACCOUNT, _always("ACCOUNT")),
    (_MASKED_CARD, lambda _: ("", "CARD", "")),
    (_CARD, _card_match),
    (_PASSPORT, _passport_match),
    (_PHONE, _phone_match),
)


def redact_patterns(text: str, counts: Counter[str]) -> str:
    """Replace pattern-found values; `counts` gets one per replacement."""
    for pattern, decide in _PASSES:
        text = pattern.sub(_replacer(decide, counts), text)
    return text


def _replacer(decide: Decide, counts: Counter[str]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        verdict = decide(match)
        if verdict is None:
            return match.group(0)
        head, kind, tail = verdict
        counts[kind] += 1
        return f"{head}[{kind}]{tail}"

    return replace


# ------------------------------------------------------------------------------- names

_EN_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?")
_EN_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
# Capitalised words that start sentences or name days and months, not people.
_EN_NOT_NAMES_TEXT = (
    "I The A An This That These Those My Your His Her Our Their We You He She It They "
    "Yesterday Today Tomorrow Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August September October November December "
    "Dear Hi Hello Thanks Please When If But And So Then After Before"
)
_EN_NOT_NAMES = frozenset(_EN_NOT_NAMES_TEXT.split())


def redact_english_names(text: str, counts: Counter[str]) -> str:
    """Crude: "Mr Brown" and runs of two or more capitalised words ("John Smith"); a
    leading sentence word ("Yesterday John Smith") is kept. Also hits "New York"."""
    text = _EN_TITLE.sub(_replacer(_always("PERSON"), counts), text)
    return _EN_RUN.sub(_replacer(_english_run, counts), text)


def _english_run(match: re.Match[str]) -> Verdict:
    words = match.group(0).split()
    lead = 0
    while lead < len(words) and words[lead] in _EN_NOT_NAMES:
        lead += 1
    if len(words) - lead < 2:
        return None  # "The Bank", "Yesterday John": one capitalised word is no name
    return "".join(w + " " for w in words[:lead]), "PERSON", ""


@functools.lru_cache(maxsize=1)
def _ner_tagger() -> Any:
    """natasha's news NER, loaded once per process (~1.5 s, ~100 MB): the first Russian
    text pays, English-only or pattern-only runs never do."""
    from natasha import NewsEmbedding, NewsNERTagger

    tagger = NewsNERTagger(NewsEmbedding())
    tagger.batch_size = NER_BATCH
    tagger.infer.encoder.batch_size = NER_BATCH  # the encoder chops batches again
    return tagger


def ner_spans(texts: list[str]) -> list[list[tuple[int, int, str]]]:
    """(start, stop, tag) per text, tagged in length-sorted batches."""
    # slovnet fails on a text with no tokens (natasha's Doc guards the same way).
    tagged = [i for i, text in enumerate(texts) if text.strip()]
    order = sorted(tagged, key=lambda i: len(texts[i]))
    markups = _ner_tagger().map([texts[i] for i in order])
    spans: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    for index, markup in zip(order, markups, strict=True):
        spans[index] = [(s.start, s.stop, s.type) for s in markup.spans]
    return spans


@functools.lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


# The news tagger reads many capitalised sentence starts in social posts as names ("Но
# все наладится", "Скучаю", "Мда"). A one-word PER span that pymorphy3 knows as a
# non-noun (verb, conjunction, pronoun, interjection ...) with no name reading is
# dropped; capitalised nouns stay, since surnames like "Сотников" parse as nouns.
_NOT_NAME_POS = frozenset(
    {"VERB", "INFN", "CONJ", "PRCL", "INTJ", "PREP", "NPRO", "ADVB", "PRED", "GRND"}
    | {"PRTF", "PRTS", "COMP", "ADJS", "NUMR"}
)
_NAME_TAGS = ("Name", "Surn", "Patr")


@functools.lru_cache(maxsize=65536)
def _not_a_name(word: str) -> bool:
    parses = _morph().parse(word.strip("-.").lower())
    if any(tag in p.tag for p in parses for tag in _NAME_TAGS):
        return False
    first = parses[0].tag
    return first.POS in _NOT_NAME_POS or "Abbr" in first


# Countries and world regions are not personal data, and news-like texts name them all
# the time; cities, streets and villages are still redacted.
_COUNTRIES_TEXT = (
    "россия рф сша америка украина европа евросоюз ес запад восток азия африка китай "
    "германия франция великобритания англия япония ссср беларусь белоруссия казахстан "
    "кндр сирия турция израиль италия испания польша канада индия"
)
_COUNTRIES = frozenset(_COUNTRIES_TEXT.split())


@functools.lru_cache(maxsize=65536)
def _is_country(place: str) -> bool:
    if " " in place:
        return False
    return _morph().parse(place.lower())[0].normal_form in _COUNTRIES


def _keep_span(text: str, tag: str) -> bool:
    """True for tagger spans that are not personal data (see above)."""
    if tag == "PER":
        return " " not in text and _not_a_name(text)
    return tag == "LOC" and _is_country(text)


def apply_spans(
    text: str, spans: Iterable[tuple[int, int, str]], types: tuple[str, ...], counts: Counter[str]
) -> str:
    """Replace the chosen entity spans, right to left so earlier offsets stay valid."""
    placeholders = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    for start, stop, tag in sorted(spans, reverse=True):
        if tag not in types or any(start < e and s < stop for s, e in placeholders):
            continue  # a tagger reading "[USER]" as a name must not eat the placeholder
        if _keep_span(text[start:stop], tag):
            continue
        kind = NER_TYPES[tag]
        counts[kind] += 1
        text = f"{text[:start]}[{kind}]{text[stop:]}"
    return text


# ---------------------------------------------------------------------------- redactor


class Redactor:
    """Redacts texts by `config`; Russian (`language` starting with "ru") gets NER.

    Results are cached per unique text, so a real example sampled into many prompts is
    tagged once. `counts` adds up every replacement of every `redact` call (a cached text
    counts again); redact each real example once to count values, not uses.
    """

    def __init__(self, config: RedactionConfig | None = None, language: str = "ru") -> None:
        self.config = config or RedactionConfig()
        self.language = language
        self.counts: Counter[str] = Counter()
        self.texts = 0
        self.changed = 0
        self._cache: dict[str, tuple[str, Counter[str]]] = {}

    @property
    def uses_ner(self) -> bool:
        russian = is_russian(self.language)
        return self.config.ner and russian and bool(self.config.entity_types)

    def redact(self, text: str) -> str:
        return self.redact_many([text])[0]

    def redact_many(self, texts: Iterable[str]) -> list[str]:
        """Redact a list at once: the NER batches over its unique uncached texts."""
        texts = list(texts)
        self._fill_cache([t for t in dict.fromkeys(texts) if t not in self._cache])
        out = []
        for text in texts:
            redacted, found = self._cache[text]
            self.counts.update(found)
            self.texts += 1
            self.changed += int(redacted != text)
            out.append(redacted)
        return out

    def summary(self) -> dict[str, int]:
        """Replacements per placeholder type, zero for types this redactor can produce
        but did not; never the replaced values."""
        kinds = list(PATTERN_TYPES) if self.config.patterns else []
        if self.uses_ner:
            kinds += [NER_TYPES[t] for t in self.config.entity_types]
        elif self.config.english_names:
            kinds.append("PERSON")
        summary = dict.fromkeys(kinds, 0)
        summary.update(self.counts)
        return summary

    def _fill_cache(self, new: list[str]) -> None:
        if not new:
            return
        found = [Counter[str]() for _ in new]
        redacted = list(new)
        if self.config.patterns:
            redacted = [redact_patterns(t, c) for t, c in zip(redacted, found, strict=True)]
        if self.uses_ner:
            spans = ner_spans(redacted)
            types = self.config.entity_types
            redacted = [
                apply_spans(t, s, types, c) for t, s, c in zip(redacted, spans, found, strict=True)
            ]
        elif self.config.english_names:
            redacted = [redact_english_names(t, c) for t, c in zip(redacted, found, strict=True)]
        for text, result, counts in zip(new, redacted, found, strict=True):
            self._cache[text] = (result, counts)
