"""Persona prompt templates (Russian and English), relations, and their lookup."""

from __future__ import annotations

from typing import Literal

from synthmix.core.errors import ConfigError
from synthmix.core.text import is_russian

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
