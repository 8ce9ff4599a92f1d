"""Persona pools (Persona Hub style): who might write or read the task's texts.

Two moves build a pool. **text-to-persona** asks an LLM who might have written or would
read a given text; **persona-to-persona** asks for someone close to a persona already in
the pool (a relative, a colleague, a clinician, a neighbour, ...), which reaches people the
seed texts never show. `build_persona_pool` runs text-to-persona over the seed texts, then
expands the pool until it holds `size` personas or the call budget is spent.

The call sequence is deterministic: text-to-persona call j uses the j-th seed text of a
shuffle seeded by `seed`, and expansion step i picks its parent and relation with an rng
seeded from (seed, i). Behind a `CachedBackend` a rerun makes the same requests in the same
order, gets them all from the cache and rebuilds the same pool.

Personas are deduplicated as they arrive (`synthmix.dedup.stages.IncrementalDedup`: exact, MinHash
and, by default, embeddings), and one that near-copies a seed text is dropped by the leak
stage: seed texts may be sensitive and a persona must not carry them along. Templates are
Russian or English by the task's language and can be replaced one by one (`templates`).
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from synthmix.core.errors import ConfigError, DataError
from synthmix.core.text import is_russian, normalize, one_line
from synthmix.dedup.stages import (
    DedupConfig,
    EmbeddingDedup,
    IncrementalDedup,
    IncrementalStats,
    build_stages,
)
from synthmix.generation.engine import is_degenerate
from synthmix.generation.strategies import clean_item
from synthmix.llm.backend import Backend, CompletionRequest, CompletionResult, gather_settled
from synthmix.llm.redaction import RedactionConfig, Redactor, backend_is_remote, should_redact

Level = Literal["short", "detailed"]
LEVELS: tuple[str, ...] = ("short", "detailed")

RELATIONS_RU = [
    "родственник",
    "коллега",
    "врач",
    "сосед",
    "друг",
    "начальник",
    "преподаватель",
    "клиент",
]
RELATIONS_EN = [
    "relative",
    "colleague",
    "clinician",
    "neighbour",
    "friend",
    "boss",
    "teacher",
    "customer",
]

PERSONA_TEMPLATES_RU: dict[str, str] = {
    "system": (
        "Ты помогаешь описывать людей для исследования текстов. Описывай одного "
        "конкретного правдоподобного человека, без пояснений и комментариев."
    ),
    "detail_short": "одной строкой: возраст, занятие, откуда он, чем живёт",
    "detail_detailed": (
        "в 2–3 предложениях: возраст, занятие, откуда он, интересы и заботы, как он обычно пишет"
    ),
    "text_to_persona": (
        "Текст:\n«{text}»\n\nКто, скорее всего, написал этот текст или стал бы его читать? "
        "Опиши этого человека {detail}. Ответь только описанием человека."
    ),
    "persona_to_persona": (
        "Человек: {persona}\n\nПридумай человека из его окружения — {relation}. "
        "Опиши этого другого человека {detail}. Ответь только описанием человека."
    ),
    # Base models get the same questions as a document to continue: two worked examples,
    # then the open line; the answer ends at the line break.
    "completion_text_to_persona_short": (
        "Текст: Опять пробки на кольцевой, точно опоздаю на планёрку.\n"
        "Автор: менеджер лет тридцати пяти из Москвы, каждый день ездит на работу на машине.\n\n"
        "Текст: Дочка сегодня впервые сама прочитала сказку, я чуть не расплакалась.\n"
        "Автор: молодая мама из Екатеринбурга в декретном отпуске.\n\n"
        "Текст: {text}\n"
        "Автор:"
    ),
    "completion_text_to_persona_detailed": (
        "Текст: Опять пробки на кольцевой, точно опоздаю на планёрку.\n"
        "Автор: Менеджер лет тридцати пяти из Москвы. Каждый день ездит в офис на машине и "
        "злится на пробки. Пишет коротко и по делу, часто с телефона.\n\n"
        "Текст: Дочка сегодня впервые сама прочитала сказку, я чуть не расплакалась.\n"
        "Автор: Молодая мама из Екатеринбурга, сейчас в декретном отпуске. Ведёт страничку "
        "о детях в соцсети и делится там радостями. Пишет эмоционально и искренне.\n\n"
        "Текст: {text}\n"
        "Автор:"
    ),
    "completion_persona_to_persona_short": (
        "Человек: учительница начальных классов из Казани, любит вязать.\n"
        "Человек из окружения (коллега): молодой учитель физкультуры из той же школы, "
        "по выходным играет в футбол.\n\n"
        "Человек: пенсионер из Твери, выращивает помидоры на даче.\n"
        "Человек из окружения (врач): участковый терапевт районной поликлиники, "
        "женщина лет пятидесяти.\n\n"
        "Человек: {persona}\n"
        "Человек из окружения ({relation}):"
    ),
    "completion_persona_to_persona_detailed": (
        "Человек: учительница начальных классов из Казани, любит вязать.\n"
        "Человек из окружения (коллега): Молодой учитель физкультуры из той же школы. По "
        "выходным играет в футбол с друзьями. Пишет коротко, с шутками.\n\n"
        "Человек: пенсионер из Твери, выращивает помидоры на даче.\n"
        "Человек из окружения (врач): Участковый терапевт районной поликлиники, женщина "
        "лет пятидесяти. Устаёт от очередей и бумаг. Пишет сдержанно и вежливо.\n\n"
        "Человек: {persona}\n"
        "Человек из окружения ({relation}):"
    ),
}

PERSONA_TEMPLATES_EN: dict[str, str] = {
    "system": (
        "You help describe people for a study of texts. Describe one specific, plausible "
        "person, with no explanations or comments."
    ),
    "detail_short": "in one line: age, occupation, where they live, what their life is about",
    "detail_detailed": (
        "in 2-3 sentences: age, occupation, where they live, interests and worries, how "
        "they usually write"
    ),
    "text_to_persona": (
        'Text:\n"{text}"\n\nWho most likely wrote this text or would read it? Describe this '
        "person {detail}. Answer with the description only."
    ),
    "persona_to_persona": (
        "Person: {persona}\n\nImagine someone from this person's circle: their {relation}. "
        "Describe that other person {detail}. Answer with the description only."
    ),
    "completion_text_to_persona_short": (
        "Text: Stuck in traffic on the ring road again, I'll be late for the stand-up.\n"
        "Author: a manager in his mid-thirties from Chicago who drives to the office every "
        "day.\n\n"
        "Text: My daughter read a whole story by herself today, I almost cried.\n"
        "Author: a young mother from Leeds on parental leave.\n\n"
        "Text: {text}\n"
        "Author:"
    ),
    "completion_text_to_persona_detailed": (
        "Text: Stuck in traffic on the ring road again, I'll be late for the stand-up.\n"
        "Author: A manager in his mid-thirties from Chicago. He drives to the office every "
        "day and hates the traffic. He writes briefly, mostly from his phone.\n\n"
        "Text: My daughter read a whole story by herself today, I almost cried.\n"
        "Author: A young mother from Leeds on parental leave. She keeps a small blog about "
        "her kids. She writes warmly and with lots of feeling.\n\n"
        "Text: {text}\n"
        "Author:"
    ),
    "completion_persona_to_persona_short": (
        "Person: a primary school teacher from Bristol who loves knitting.\n"
        "Someone close (colleague): a young PE teacher at the same school who plays "
        "football at weekends.\n\n"
        "Person: a retired engineer from Ohio who grows tomatoes in his garden.\n"
        "Someone close (clinician): his family doctor, a woman in her fifties at the local "
        "practice.\n\n"
        "Person: {persona}\n"
        "Someone close ({relation}):"
    ),
    "completion_persona_to_persona_detailed": (
        "Person: a primary school teacher from Bristol who loves knitting.\n"
        "Someone close (colleague): A young PE teacher at the same school. He plays football "
        "with friends at weekends. He writes briefly and jokes a lot.\n\n"
        "Person: a retired engineer from Ohio who grows tomatoes in his garden.\n"
        "Someone close (clinician): His family doctor, a woman in her fifties. She is tired "
        "of queues and paperwork. She writes politely and to the point.\n\n"
        "Person: {persona}\n"
        "Someone close ({relation}):"
    ),
}


def persona_templates(language: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The persona templates for a language, with single templates replaced; an unknown
    template name is a ConfigError (a typo would otherwise be ignored silently)."""
    base = PERSONA_TEMPLATES_RU if is_russian(language) else PERSONA_TEMPLATES_EN
    unknown = sorted(set(overrides or {}) - set(base))
    if unknown:
        raise ConfigError(f"unknown persona template {unknown[0]!r} (known: {', '.join(base)})")
    return {**base, **(overrides or {})}


def default_relations(language: str) -> list[str]:
    return list(RELATIONS_RU if is_russian(language) else RELATIONS_EN)


# --------------------------------------------------------------------------- config


def _persona_dedup() -> DedupConfig:
    # Embeddings on by default: "учительница из Казани" and "преподаватель начальной школы
    # в Казани" share few words but are one persona for generation purposes.
    return DedupConfig(embedding=True)


@dataclass
class PersonaConfig:
    """How a pool is built. `text_share` of the target comes from text-to-persona (each
    seed text used at most once), the rest from persona-to-persona. `max_calls=None`
    allows four calls per wanted persona. `max_tokens=None` picks 60 (short) or 150
    (detailed). `chat=None` follows the backend."""

    level: str = "short"
    language: str = "ru"
    relations: list[str] | None = None
    text_share: float = 0.5
    max_calls: int | None = None
    temperature: float = 0.9
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int = 0
    concurrency: int = 4
    max_text_chars: int = 500
    chat: bool | None = None
    templates: dict[str, str] = field(default_factory=dict)
    dedup: DedupConfig = field(default_factory=_persona_dedup)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)

    def __post_init__(self) -> None:
        if isinstance(self.dedup, dict):  # from a report read back
            self.dedup = DedupConfig(**self.dedup)
        if isinstance(self.redaction, dict):
            raw = dict(self.redaction)
            if "entity_types" in raw:
                raw["entity_types"] = tuple(raw["entity_types"])
            self.redaction = RedactionConfig(**raw)
        if self.level not in LEVELS:
            raise ConfigError(
                f"persona level must be one of {', '.join(LEVELS)}, got {self.level!r}"
            )
        if not 0.0 <= self.text_share <= 1.0:
            raise ConfigError(f"text_share must be between 0 and 1, got {self.text_share}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_calls is not None and self.max_calls < 1:
            raise ConfigError(f"max_calls must be >= 1, got {self.max_calls}")
        if self.relations is not None and not [r for r in self.relations if r.strip()]:
            raise ConfigError("relations must name at least one relation")
        persona_templates(self.language, self.templates)

    @property
    def relation_list(self) -> list[str]:
        if self.relations is None:
            return default_relations(self.language)
        return [r.strip() for r in self.relations if r.strip()]

    def token_limit(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return 60 if self.level == "short" else 150

    def call_limit(self, size: int) -> int:
        return self.max_calls if self.max_calls is not None else 4 * size


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PersonaPrompt:
    messages: list[dict[str, str]]
    text: str
    stop: list[str]

    def request(self, chat: bool, config: PersonaConfig, sample_index: int) -> CompletionRequest:
        return CompletionRequest(
            messages=self.messages if chat else None,
            prompt=None if chat else self.text,
            temperature=config.temperature,
            max_tokens=config.token_limit(),
            top_p=config.top_p,
            stop=None if chat else self.stop,
            sample_index=sample_index,
        )


def _clip(text: str, limit: int) -> str:
    text = one_line(text)
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def text_to_persona_prompt(text: str, config: PersonaConfig) -> PersonaPrompt:
    """Who might write or read `text`, at `config.level` of detail."""
    t = persona_templates(config.language, config.templates)
    seed = _clip(text, config.max_text_chars)
    user = t["text_to_persona"].format(text=seed, detail=t[f"detail_{config.level}"])
    completion = t[f"completion_text_to_persona_{config.level}"].format(text=seed)
    return _prompt(t, user, completion)


def persona_to_persona_prompt(persona: str, relation: str, config: PersonaConfig) -> PersonaPrompt:
    """Someone close to `persona`: their `relation` (a colleague, a neighbour, ...)."""
    t = persona_templates(config.language, config.templates)
    detail = t[f"detail_{config.level}"]
    user = t["persona_to_persona"].format(persona=persona, relation=relation, detail=detail)
    completion = t[f"completion_persona_to_persona_{config.level}"].format(
        persona=persona, relation=relation
    )
    return _prompt(t, user, completion)


def _prompt(t: dict[str, str], user: str, completion: str) -> PersonaPrompt:
    messages = [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]
    # The worked examples put one persona per line, so a base model's answer ends there.
    return PersonaPrompt(messages, completion, stop=["\n"])


_EXAMPLE_LINE = re.compile(r"^[^:{}\n]{1,60}:\s*(?P<value>[^{}\n]+)$", re.MULTILINE)


def worked_examples(templates: dict[str, str]) -> list[str]:
    """The filled-in "Label: value" lines of the completion templates (their personas and
    texts), in order and without repeats."""
    found = (
        m.group("value").strip()
        for key, template in templates.items()
        if key.startswith("completion_")
        for m in _EXAMPLE_LINE.finditer(template)
    )
    return list(dict.fromkeys(v for v in found if v))


# A label the model repeats in front of its answer ("Автор:", "Описание человека:").
_ANSWER_LABEL = re.compile(
    r"^(?:автор|персона|человек|описание|ответ|author|persona|person|description|answer)"
    r"[^:\n]{0,40}:\s*",
    re.IGNORECASE,
)
_LIST_MARK = re.compile(r"^\s*(?:\d{1,2}\s*[.)]\s*|[-•*–—]\s+)")
_MAX_CHARS = {"short": 240, "detailed": 600}


def parse_persona(answer: str, level: str = "short") -> str:
    """The persona in an answer: its first paragraph (first line for "short"), without a
    repeated label, list marker or quotes, clipped at a word. Empty when nothing is left."""
    lines = [line.strip() for line in answer.strip().splitlines()]
    # A chat model's preamble ("Вот описание:") is a line ending in a colon.
    while lines and (not lines[0] or (lines[0].endswith(":") and len(lines) > 1)):
        lines = lines[1:]
    paragraph: list[str] = []
    for line in lines:
        if not line:
            break
        paragraph.append(line)
        if level == "short":
            break
    # Twice: markdown bold hides the marker and label, and the label hides the quotes.
    text = clean_item(" ".join(paragraph))
    text = clean_item(_ANSWER_LABEL.sub("", _LIST_MARK.sub("", text)))
    if text.endswith(":"):  # a heading with nothing under it, not a person
        return ""
    return _clip(text, _MAX_CHARS.get(level, 240)) if text else ""


# ------------------------------------------------------------------------------ pool


@dataclass(frozen=True)
class Persona:
    """One persona and where it came from: `source` "text" (text-to-persona; the seed text
    itself is not stored, it may be sensitive) or "persona" (expanded from `parent` as its
    `relation`)."""

    persona: str
    source: str
    parent: str | None = None
    relation: str | None = None
    call_id: str = ""
    generator: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PoolReport:
    """What building a pool took and gave. `returned` counts answers read as a persona;
    `rejected` degenerate ones (fragments, loops); `removed` what each dedup stage
    dropped ("real-leak": near-copies of a seed text)."""

    target: int
    calls: int = 0
    cached_calls: int = 0
    text_calls: int = 0
    persona_calls: int = 0
    returned: int = 0
    parse_failures: int = 0
    rejected: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    stopped_by: str = "size"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PersonaPool:
    personas: list[Persona]
    report: PoolReport
    config: PersonaConfig
    generator: str
    backend: dict[str, str]
    cache: dict[str, int] | None = None
    redaction: dict[str, Any] | None = None

    @property
    def texts(self) -> list[str]:
        return [p.persona for p in self.personas]

    def summary(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "backend": self.backend,
            "config": asdict(self.config),
            "cache": self.cache,
            "redaction": self.redaction,
            **self.report.to_dict(),
        }


@dataclass
class _State:
    backend: Backend
    config: PersonaConfig
    report: PoolReport
    dedup: IncrementalDedup
    chat: bool
    bar: tqdm
    personas: list[Persona] = field(default_factory=list)


async def build_persona_pool(
    backend: Backend,
    seed_texts: Sequence[str],
    size: int,
    config: PersonaConfig | None = None,
    progress: bool = False,
) -> PersonaPool:
    """A pool of up to `size` distinct personas: text-to-persona on the seed texts, then
    persona-to-persona over the pool until it is full, the call budget is spent
    (`stopped_by` "max_calls") or there is nothing to expand ("no_personas"). `progress`
    shows a bar of personas kept, with calls made."""
    config = config or PersonaConfig()
    if size < 1:
        raise ConfigError(f"persona pool size must be >= 1, got {size}")
    texts = list(dict.fromkeys(t for t in (one_line(s) for s in seed_texts) if t))
    if not texts:
        raise ConfigError("building personas needs at least one non-empty seed text")
    rng = random.Random(f"{config.seed}:texts")
    rng.shuffle(texts)
    limit = config.call_limit(size)
    texts = texts[:limit]  # no more could be sent: each seed text gets one call at most
    sent, redaction = _redact(backend, config, texts)
    # A persona that near-copies a seed text (as sent, or as written) carries it along.
    leak_reference = sorted(set(texts) | set(sent)) if config.dedup.leak_check else None
    report = PoolReport(target=size)
    state = _State(
        backend=backend,
        config=config,
        report=report,
        dedup=IncrementalDedup(build_stages(config.dedup, leak_reference), across_labels=True),
        chat=backend.chat if config.chat is None else config.chat,
        bar=tqdm(total=size, desc="personas", disable=not progress),
    )
    # The worked examples of the completion templates count as already in the pool: a base
    # model copying one back has not described anybody.
    examples = worked_examples(persona_templates(config.language, config.templates))
    _warm_embeddings(state, examples)
    for example in examples:
        state.dedup.add(example)
    state.dedup.stats = IncrementalStats()  # the report counts the model's answers only
    started = time.monotonic()
    text_target = min(size, max(1, math.ceil(size * config.text_share)))
    with state.bar:
        await _from_texts(state, sent, text_target, limit)
        await _expand(state, size, limit)
    report.kept = len(state.personas)
    report.removed = dict(state.dedup.stats.removed)
    report.wall_s = time.monotonic() - started
    stats = getattr(backend, "stats", None)
    cache = None
    if stats is not None and hasattr(stats, "hits"):
        cache = {"hits": stats.hits, "misses": stats.misses, "requests": stats.requests}
    return PersonaPool(
        personas=state.personas,
        report=report,
        config=config,
        generator=backend.model,
        backend=backend.cache_identity(),
        cache=cache,
        redaction=redaction,
    )


def _redact(
    backend: Backend, config: PersonaConfig, texts: list[str]
) -> tuple[list[str], dict[str, Any]]:
    if not should_redact(config.redaction, backend_is_remote(backend)):
        return texts, {"applied": False}
    redactor = Redactor(config.redaction, language=config.language)
    sent = redactor.redact_many(texts)
    return sent, {
        "applied": True,
        "texts": redactor.texts,
        "texts_changed": redactor.changed,
        "counts": redactor.summary(),
    }


async def _from_texts(state: _State, texts: list[str], target: int, limit: int) -> None:
    """Text-to-persona, one call per seed text in the shuffled order, until `target`
    personas are kept; the batch size depends only on earlier answers."""
    config = state.config
    position = 0
    while len(state.personas) < target and position < len(texts):
        if state.report.calls >= limit:
            state.report.stopped_by = "max_calls"
            return
        batch = min(
            target - len(state.personas),
            config.concurrency,
            len(texts) - position,
            limit - state.report.calls,
        )
        jobs = [
            (
                text_to_persona_prompt(texts[j], config),
                j,
                Persona("", "text", call_id=f"persona:text:{config.seed}:{j}"),
            )
            for j in range(position, position + batch)
        ]
        position += batch
        state.report.text_calls += batch
        await _run_batch(state, jobs)


async def _expand(state: _State, size: int, limit: int) -> None:
    config = state.config
    relations = config.relation_list
    step = 0
    while len(state.personas) < size:
        if not state.personas:
            state.report.stopped_by = "no_personas"
            return
        if state.report.calls >= limit:
            state.report.stopped_by = "max_calls"
            return
        batch = min(size - len(state.personas), config.concurrency, limit - state.report.calls)
        # Parents are drawn from the pool as it stands before the batch: answers arriving
        # within a batch cannot change which calls the batch makes.
        pool = list(state.personas)
        jobs = []
        for i in range(step, step + batch):
            rng = random.Random(f"{config.seed}:persona:{i}")
            parent = rng.choice(pool).persona
            relation = rng.choice(relations)
            origin = Persona(
                "",
                "persona",
                parent=parent,
                relation=relation,
                call_id=f"persona:expand:{config.seed}:{i}",
            )
            jobs.append((persona_to_persona_prompt(parent, relation, config), i, origin))
        step += batch
        state.report.persona_calls += batch
        await _run_batch(state, jobs)


async def _run_batch(state: _State, jobs: list[tuple[PersonaPrompt, int, Persona]]) -> None:
    """Calls run concurrently (see `gather_settled`); answers are taken in call order."""
    requests = [prompt.request(state.chat, state.config, index) for prompt, index, _ in jobs]
    results = await gather_settled(state.backend.complete(r) for r in requests)
    level = state.config.level
    _warm_embeddings(state, [parse_persona(r.texts[0], level) for r in results if r.texts])
    for (_, _, origin), result in zip(jobs, results, strict=True):
        _accept(state, origin, result)


def _warm_embeddings(state: _State, texts: list[str]) -> None:
    """Embed a batch's texts in one encoder call before the embedding stage asks for them
    one by one: the encoder caches vectors per text, and USE spends about 0.5 s per call
    on 2 cores whatever its size (one call for 28 texts: 0.8 s, 28 calls: 14 s)."""
    forms = [form for form in (normalize(t) for t in texts) if form]
    for stage in state.dedup.stages:
        if isinstance(stage, EmbeddingDedup) and forms:
            stage.encoder.encode(forms)


def _accept(state: _State, origin: Persona, result: CompletionResult) -> None:
    report = state.report
    report.calls += 1
    report.cached_calls += int(result.cached)
    report.prompt_tokens += result.prompt_tokens
    report.completion_tokens += result.completion_tokens
    report.cost += result.cost
    for answer in result.texts[:1]:
        text = parse_persona(answer, state.config.level)
        if not text:
            report.parse_failures += 1
            continue
        report.returned += 1
        if is_degenerate(text, min_words=3):
            report.rejected += 1
            continue
        if len(state.personas) >= report.target or not state.dedup.add(text):
            continue
        state.bar.set_postfix(calls=report.calls, refresh=False)
        state.bar.update(1)
        state.personas.append(
            Persona(
                persona=text,
                source=origin.source,
                parent=origin.parent,
                relation=origin.relation,
                call_id=origin.call_id,
                generator=state.backend.model,
            )
        )


# ------------------------------------------------------------------------------ files


def report_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".report.json")


def save_pool(pool: PersonaPool, path: str | Path) -> Path:
    """The pool as JSONL (one persona with its provenance a line) and a `.report.json`
    beside it; written to a temporary name first, so a kill never leaves half a pool."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    lines = [json.dumps(p.to_dict(), ensure_ascii=False) for p in pool.personas]
    partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    partial.replace(path)
    report = report_path(path)
    report.write_text(
        json.dumps(pool.summary(), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    return report


def load_pool(path: str | Path) -> list[Persona]:
    """Personas from a pool file; a missing file, a bad line or an empty pool is one
    clear error naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: persona pool not found (build one with `synthmix personas`)")
    personas = []
    fields = set(Persona.__dataclass_fields__)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError:
                raise DataError(str(path), "not valid JSON", row=number) from None
            if not isinstance(raw, dict) or not str(raw.get("persona") or "").strip():
                raise DataError(str(path), "expected an object with a 'persona' text", number)
            values = {k: v for k, v in raw.items() if k in fields}
            values.setdefault("source", "given")
            personas.append(Persona(**values))
    if not personas:
        raise ConfigError(f"{path}: the persona pool is empty")
    return personas


def load_personas(path: str | Path) -> list[str]:
    """Just the persona texts of a pool file, in file order."""
    return [p.persona for p in load_pool(path)]


__all__ = [
    "LEVELS",
    "PERSONA_TEMPLATES_EN",
    "PERSONA_TEMPLATES_RU",
    "Persona",
    "PersonaConfig",
    "PersonaPool",
    "PoolReport",
    "build_persona_pool",
    "default_relations",
    "load_personas",
    "load_pool",
    "parse_persona",
    "persona_templates",
    "persona_to_persona_prompt",
    "save_pool",
    "text_to_persona_prompt",
]
