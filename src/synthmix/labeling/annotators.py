"""Several LLM annotators, a moderator for their disagreements, agreement statistics and
exports for human review.

Annotators label the same texts (different backends or prompt templates); only texts
where they disagree go to the moderator, who sees the annotators' answers and picks one
with a short rationale, by criteria written out as for a human moderator. Agreement is
reported as Cohen's kappa (each pair), Fleiss' kappa and Krippendorff's alpha (nominal;
all annotators, missing answers allowed), and per annotator against human gold.

Multi-label (`multi_label=True`): annotators and the moderator answer with label sets (JSON
lists, as the multi-label LLM stage asks), cells hold sorted tuples, and agreement is per
label (Cohen's and Fleiss' kappa of the yes/no decisions), Krippendorff's alpha with the
MASI and Jaccard set distances, and exact-set agreement (`stats.set_agreement`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from synthmix.cards.card import TaskCard
from synthmix.core.text import is_russian
from synthmix.labeling.llm_stage import (
    Examples,
    LLMStage,
    label_aliases,
    parse_label,
    parse_label_set,
)
from synthmix.llm.backend import (
    Backend,
    CompletionRequest,
    gather_settled,
    gather_with_progress,
)
from synthmix.stats.agreement import (
    cohen_kappa,
    count_table,
    fleiss_kappa,
    krippendorff_alpha_nominal,
)
from synthmix.stats.classification import evaluate
from synthmix.stats.multilabel import evaluate_multilabel
from synthmix.stats.set_agreement import (
    exact_set_agreement,
    krippendorff_alpha_sets,
    per_label_fleiss,
    per_label_kappa,
)

# A cell of the annotation table: a label, or (multi-label) a sorted tuple of labels.
Answer = str | tuple[str, ...]


def missing(value: Any) -> bool:
    """None or NaN (pandas' missing value); a tuple of labels, even empty, is an answer."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def agreement_report(
    table: pd.DataFrame,
    annotators: Sequence[str],
    classes: Sequence[str],
    gold: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Pairwise Cohen, Fleiss (on items every annotator answered), Krippendorff (all
    items) and, with gold, each annotator's metrics and confusion matrix (an
    unparseable answer counts as wrong: it needs a human just the same)."""
    answers = table[list(annotators)].astype(object).where(table[list(annotators)].notna(), None)
    rows = [list(r) for r in answers.itertuples(index=False)]
    complete = [r for r in rows if all(v is not None for v in r)]
    report: dict[str, Any] = {
        "items": len(rows),
        "cohen_kappa": {
            f"{a}~{b}": cohen_kappa(list(answers[a]), list(answers[b]))
            for a, b in combinations(annotators, 2)
        },
        "fleiss_kappa": fleiss_kappa(count_table(complete, classes)) if complete else None,
        "fleiss_items": len(complete),
        "krippendorff_alpha": krippendorff_alpha_nominal(rows),
    }
    if gold is not None:
        report["vs_gold"] = {
            name: evaluate(list(gold), [v or "<none>" for v in answers[name]], list(classes))
            for name in annotators
        }
    return report


def _sets(values: Sequence[Any]) -> list[tuple[str, ...] | None]:
    return [None if missing(v) else tuple(v) for v in values]


def _matrix(sets: Sequence[tuple[str, ...] | None], classes: Sequence[str]) -> np.ndarray:
    column = {c: j for j, c in enumerate(classes)}
    out = np.zeros((len(sets), len(classes)), dtype=int)
    for i, labels in enumerate(sets):
        for label in labels or ():
            out[i, column[label]] = 1
    return out


def _nanmean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else None


def set_agreement_report(
    table: pd.DataFrame,
    annotators: Sequence[str],
    classes: Sequence[str],
    gold: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Multi-label agreement: per label, Cohen's kappa of each pair and Fleiss' kappa of
    all (items every annotator answered); Krippendorff's alpha with MASI and Jaccard set
    distances (all items with two answers or more); exact-set agreement, of all annotators
    and of each pair; with gold sets, each annotator's multi-label metrics, per-label kappa
    against gold and exact-set share (an unparseable answer counts as the empty set)."""
    columns = {name: _sets(list(table[name])) for name in annotators}
    units = [list(unit) for unit in zip(*columns.values(), strict=True)]
    pairwise = {
        f"{a}~{b}": per_label_kappa(columns[a], columns[b], classes)
        for a, b in combinations(annotators, 2)
    }
    agree, pairable = exact_set_agreement(units)
    exact_pairs = {}
    for a, b in combinations(annotators, 2):
        both = [
            (x, y)
            for x, y in zip(columns[a], columns[b], strict=True)
            if x is not None and y is not None
        ]
        exact_pairs[f"{a}~{b}"] = sum(x == y for x, y in both) / len(both) if both else None
    report: dict[str, Any] = {
        "task": "multi_label",
        "items": len(units),
        "per_label_cohen_kappa": pairwise,
        "per_label_cohen_kappa_mean": {
            label: _nanmean([pair[label] for pair in pairwise.values()]) for label in classes
        },
        "per_label_fleiss_kappa": per_label_fleiss(units, classes),
        "krippendorff_alpha_masi": krippendorff_alpha_sets(units, "masi"),
        "krippendorff_alpha_jaccard": krippendorff_alpha_sets(units, "jaccard"),
        "exact_set_agreement": {
            "agree": agree,
            "items": pairable,
            "share": agree / pairable if pairable else None,
        },
        "exact_set_agreement_pairs": exact_pairs,
    }
    if gold is not None:
        truth = [tuple(g) for g in gold]
        report["vs_gold"] = {}
        for name in annotators:
            given = [s if s is not None else () for s in columns[name]]
            metrics = evaluate_multilabel(_matrix(truth, classes), _matrix(given, classes), classes)
            metrics["per_label_kappa_vs_gold"] = per_label_kappa(given, truth, classes)
            metrics["exact_set"] = sum(
                set(x) == set(y) for x, y in zip(given, truth, strict=True)
            ) / max(1, len(truth))
            report["vs_gold"][name] = metrics
    return report


# ---------------------------------------------------------------------------- annotators


class Annotator:
    """One LLM annotator: a few-shot prompt (the LLM stage's, with its own templates) on
    one backend, one answer per text at temperature 0."""

    def __init__(
        self,
        name: str,
        card: TaskCard,
        backend: Backend,
        examples: Examples = None,
        k: int = 2,
        templates: Mapping[str, str] | None = None,
        seed: int = 0,
        multi_label: bool = False,
    ) -> None:
        self.name = name
        self.multi_label = multi_label
        # Only the answer's label is used: no log-probabilities (llama.cpp computes them
        # for every prompt token, about 5x the time of a plain answer).
        self._stage = LLMStage(
            card,
            backend,
            examples,
            k=k,
            n_samples=1,
            templates=templates,
            seed=seed,
            name=name,
            logprobs=None,
            multi_label=multi_label,
        )

    @property
    def parsing(self) -> Any:
        """Multi-label: counts of answers without a JSON list or naming unknown labels."""
        return self._stage.parsing

    async def alabel(
        self, texts: Sequence[str], progress: tqdm | None = None
    ) -> list[Answer | None]:
        # In chunks, so the progress bar moves while a local model works through them.
        chunk = 2 * self._stage.max_concurrency
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            await self._stage.ascore(part)
            if progress is not None:
                progress.update(len(part))
        if self.multi_label:
            return [self._stage.last_answers[t].sets[0] for t in texts]
        return [self._stage.last_answers[t].labels[0] for t in texts]


async def _annotate(
    annotators: Sequence[Annotator], texts: Sequence[str], progress: bool
) -> list[list[Answer | None]]:
    total = len(texts) * len(annotators)
    with tqdm(total=total, desc="annotations", disable=not progress) as bar:
        return await gather_settled(a.alabel(texts, bar) for a in annotators)


def annotate(
    annotators: Sequence[Annotator], texts: Sequence[str], progress: bool = False
) -> pd.DataFrame:
    """A frame with `text` and one column of labels (None: unparseable) per annotator."""
    names = [a.name for a in annotators]
    if len(set(names)) != len(names):
        raise ValueError(f"annotator names must differ: {names}")
    labels = asyncio.run(_annotate(annotators, texts, progress))
    frame = pd.DataFrame({"text": list(texts)})
    for name, column in zip(names, labels, strict=True):
        frame[name] = pd.Series(column, dtype=object)
    return frame


def disagreements(table: pd.DataFrame, annotators: Sequence[str]) -> list[int]:
    """Rows where the annotators' answers differ, or where fewer than two answered."""
    rows = []
    for position, values in enumerate(table[list(annotators)].itertuples(index=False)):
        given = {v for v in values if not missing(v)}
        answered = sum(not missing(v) for v in values)
        if len(given) > 1 or answered < 2:
            rows.append(position)
    return rows


# ---------------------------------------------------------------------------- moderator

MODERATOR_RU = {
    "intro": (
        "Ты модератор разметки. Несколько разметчиков разошлись во мнениях о метке текста. "
        "Реши, какая метка верна.\nЗадача: {task}. {task_description}\nМетки:\n{classes}"
    ),
    "criteria": (
        "Критерии модератора:\n"
        "1. Сверяйся с определениями меток выше, а не с общим впечатлением от текста.\n"
        "2. Учитывай только то, что написано в тексте; не додумывай контекст.\n"
        "3. Если в тексте несколько эмоций или тем, выбирай ту, что выражена явнее всего.\n"
        "4. Число голосов не довод: разметчики могли ошибиться одинаково.\n"
        "5. Выбирай метку из ответов разметчиков; другую метку из списка — только если "
        "все ответы явно противоречат определениям."
    ),
    "case": "Текст: {text}\nОтветы разметчиков:\n{answers}",
    "format": "Ответь ровно в две строки:\nМетка: <метка>\nОбоснование: <одно-два предложения>",
    "label": "Метка",
    "rationale": "Обоснование",
    "explain": (
        "Ты эксперт по разметке.\nЗадача: {task}. {task_description}\nМетки:\n{classes}\n\n"
        "Текст: {text}\nМетка: {label}\n"
        "Объясни в двух-трёх предложениях, какие слова и признаки текста соответствуют "
        "определению этой метки, и что могло бы говорить против неё.\nОбъяснение:"
    ),
}
MODERATOR_EN = {
    "intro": (
        "You are an annotation moderator. Annotators disagree about a text's label. "
        "Decide which label is right.\nTask: {task}. {task_description}\nLabels:\n{classes}"
    ),
    "criteria": (
        "Moderator criteria:\n"
        "1. Check against the label definitions above, not the overall impression.\n"
        "2. Use only what the text says; do not invent context.\n"
        "3. If the text shows several emotions or topics, pick the most explicit one.\n"
        "4. A majority is no argument: annotators can make the same mistake.\n"
        "5. Pick one of the annotators' labels; another label from the list only if all "
        "answers clearly contradict the definitions."
    ),
    "case": "Text: {text}\nAnnotators' answers:\n{answers}",
    "format": "Answer in exactly two lines:\nLabel: <label>\nRationale: <one or two sentences>",
    "label": "Label",
    "rationale": "Rationale",
    "explain": (
        "You are an annotation expert.\nTask: {task}. {task_description}\nLabels:\n{classes}\n\n"
        "Text: {text}\nLabel: {label}\n"
        "Explain in two or three sentences which words and features of the text match this "
        "label's definition, and what could speak against it.\nExplanation:"
    ),
}


MODERATOR_SET_RU = {
    **MODERATOR_RU,
    "intro": (
        "Ты модератор разметки. У текста может быть несколько меток. Разметчики разошлись "
        "во мнениях о его метках. Реши, какие метки верны.\nЗадача: {task}. "
        "{task_description}\nМетки:\n{classes}"
    ),
    "criteria": MODERATOR_RU["criteria"].replace(
        "3. Если в тексте несколько эмоций или тем, выбирай ту, что выражена явнее всего.",
        "3. Отмечай каждую метку, что явно выражена в тексте, и только такие.",
    ),
    "format": (
        "Ответь ровно в две строки:\nМетки: <JSON-список меток, [] если ни одна не подходит>"
        "\nОбоснование: <одно-два предложения>"
    ),
    "label": "Метки",
}
MODERATOR_SET_EN = {
    **MODERATOR_EN,
    "intro": (
        "You are an annotation moderator. A text may carry several labels. Annotators "
        "disagree about its labels. Decide which labels are right.\nTask: {task}. "
        "{task_description}\nLabels:\n{classes}"
    ),
    "criteria": MODERATOR_EN["criteria"].replace(
        "3. If the text shows several emotions or topics, pick the most explicit one.",
        "3. Mark every label the text clearly shows, and only those.",
    ),
    "format": (
        "Answer in exactly two lines:\nLabels: <a JSON list of labels, [] if none fits>\n"
        "Rationale: <one or two sentences>"
    ),
    "label": "Labels",
}


def show(answer: Answer | None) -> str:
    """An answer as prompts and the review CSV show it: the label, or a JSON list."""
    if answer is None:
        return "—"
    if isinstance(answer, tuple):
        return json.dumps(list(answer), ensure_ascii=False)
    return answer


@dataclass
class Verdict:
    label: Answer | None
    rationale: str
    answer: str


class Moderator:
    """An LLM that settles disagreements (`decide`) and, in expert mode, explains a label
    (`explain`). Wrap the backend in a CachedBackend: verdicts are paid once."""

    def __init__(
        self, card: TaskCard, backend: Backend, max_tokens: int = 200, multi_label: bool = False
    ) -> None:
        self.card = card
        self.backend = backend
        self.max_tokens = max_tokens
        self.multi_label = multi_label
        if multi_label:
            self.t = MODERATOR_SET_RU if is_russian(card.language) else MODERATOR_SET_EN
        else:
            self.t = MODERATOR_RU if is_russian(card.language) else MODERATOR_EN
        self.aliases = label_aliases(card)

    def _fields(self) -> dict[str, str]:
        classes = "\n".join(f"- {c.name}: {c.description}" for c in self.card.classes)
        return {
            "task": self.card.task,
            "task_description": self.card.description,
            "classes": classes,
        }

    def prompt(self, text: str, answers: Mapping[str, Answer | None]) -> str:
        listed = "\n".join(f"- {name}: {show(label)}" for name, label in answers.items())
        case = self.t["case"].format(text=" ".join(text.split()), answers=listed)
        intro = self.t["intro"].format(**self._fields())
        return "\n\n".join([intro, self.t["criteria"], case, self.t["format"]])

    def _request(self, prompt: str, prefix: str = "") -> CompletionRequest:
        if self.backend.chat:
            return CompletionRequest(
                messages=[{"role": "user", "content": prompt}],
                temperature=0.0,
                max_tokens=self.max_tokens,
            )
        # Base models continue text: open the answer line for them.
        return CompletionRequest(
            prompt=f"{prompt}\n{prefix}", temperature=0.0, max_tokens=self.max_tokens
        )

    def parse(self, answer: str, prefixed: bool = False) -> Verdict:
        label_key, why_key = self.t["label"], self.t["rationale"]
        text = f"{label_key}:{answer}" if prefixed else answer
        label_line = re.search(rf"{label_key}\s*:\s*(.+)", text, re.I)
        why = re.search(rf"{why_key}\s*:\s*(.+)", text, re.I | re.S)
        label: Answer | None
        if self.multi_label:
            label = parse_label_set(
                label_line.group(1) if label_line else text, self.aliases
            ).labels
        else:
            label = parse_label(label_line.group(1) if label_line else text, self.aliases)
        rationale = " ".join(why.group(1).split()) if why else ""
        return Verdict(label, rationale, answer)

    async def adecide(self, text: str, answers: Mapping[str, Answer | None]) -> Verdict:
        prefix = f"{self.t['label']}:"
        result = await self.backend.complete(self._request(self.prompt(text, answers), prefix))
        return self.parse(result.texts[0], prefixed=not self.backend.chat)

    async def aexplain(self, text: str, label: Answer) -> str:
        prompt = self.t["explain"].format(
            **self._fields(), text=" ".join(text.split()), label=show(label)
        )
        result = await self.backend.complete(self._request(prompt))
        return result.texts[0].strip()

    def explain(self, text: str, label: Answer) -> str:
        """Expert mode: why the text has this label (and what speaks against it)."""
        return asyncio.run(self.aexplain(text, label))


def _answer(value: Any) -> Answer | None:
    if missing(value):
        return None
    return tuple(value) if isinstance(value, (tuple, list)) else str(value)


def _row_answers(
    table: pd.DataFrame, position: int, annotators: Sequence[str]
) -> dict[str, Answer | None]:
    return {a: _answer(table.iloc[position][a]) for a in annotators}


def resolve(
    table: pd.DataFrame,
    annotators: Sequence[str],
    moderator: Moderator | None,
    progress: bool = False,
) -> pd.DataFrame:
    """Final labels: the shared answer where annotators agree; the moderator's verdict
    (with rationale) only where they disagree (without a moderator, or when its verdict
    names no label: no label, source "disputed", for a human)."""
    out = table.reset_index(drop=True).copy()
    answers = [_row_answers(out, i, annotators) for i in range(len(out))]
    first = [next((v for v in a.values() if v is not None), None) for a in answers]
    out["label"] = pd.Series(first, dtype=object)  # object: a missing label stays None
    out["source"], out["rationale"] = "agreement", ""
    disputed = disagreements(out, annotators)
    for i in disputed:  # .at keeps None; a multi-column .loc write would turn it into NaN
        out.at[i, "label"], out.at[i, "source"] = None, "disputed"
    if moderator is None or not disputed:
        return out
    cases = [(str(out.at[i, "text"]), answers[i]) for i in disputed]
    calls = [moderator.adecide(text, given) for text, given in cases]
    verdicts = asyncio.run(gather_with_progress(calls, "moderator", progress))
    for i, verdict in zip(disputed, verdicts, strict=True):
        if verdict.label is None:  # no label in the verdict: still a case for a human
            out.at[i, "rationale"] = "moderator gave no label"
            continue
        out.at[i, "label"], out.at[i, "source"] = verdict.label, "moderator"  # type: ignore[assignment]
        out.at[i, "rationale"] = verdict.rationale
    return out


# ---------------------------------------------------------------------------- exports


def export_review_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """A CSV for reviewers (UTF-8 with BOM, so Excel shows Cyrillic), plus an empty
    `human_label` column to fill in."""
    review = frame.copy()
    for column in review.columns:  # multi-label cells: JSON lists, as the data files hold
        if review[column].map(lambda v: isinstance(v, tuple)).any():
            review[column] = review[column].map(lambda v: v if missing(v) else show(v))
    if "human_label" not in review.columns:
        review["human_label"] = ""
    review.to_csv(path, index=False, encoding="utf-8-sig")


def label_studio_tasks(
    texts: Sequence[str],
    predictions: Mapping[str, Sequence[Answer | None]],
    scores: Mapping[str, Sequence[float]] | None = None,
    from_name: str = "label",
    to_name: str = "text",
    data: Mapping[str, Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """Label Studio tasks (`data.text`, plus per task the values of `data`, such as the
    input row) with one prediction per model/annotator, in the Choices format of a
    `<Choices name="label" toName="text">` labeling config. `synthmix review-import` reads
    the export back; the prediction named "final" is the label before review."""
    tasks = []
    for i, text in enumerate(texts):
        preds = []
        for model, labels in predictions.items():
            answer = labels[i]
            if answer is None:
                continue
            value = {"choices": list(answer) if isinstance(answer, tuple) else [answer]}
            result = [
                {"from_name": from_name, "to_name": to_name, "type": "choices", "value": value}
            ]
            pred: dict[str, Any] = {"model_version": model, "result": result}
            if scores is not None and model in scores:
                pred["score"] = float(scores[model][i])
            preds.append(pred)
        task_data: dict[str, Any] = {"text": text}
        task_data.update({key: values[i] for key, values in (data or {}).items()})
        tasks.append({"data": task_data, "predictions": preds})
    return tasks


def export_label_studio(tasks: list[dict[str, Any]], path: str | Path) -> None:
    Path(path).write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
