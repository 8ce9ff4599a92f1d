"""File-level glue for `synthmix annotate`: LLM annotators, a moderator for their
disagreements and an optional expert explanation per label, from a small YAML:

    annotators:                 # two or more; each a backend and a prompt
      - name: gemma-a
        backend: {kind: llama-cpp}  # a backend spec (synthmix.llm.spec): kind, model,
                                    # base_url, api_key_env, chat, options
        k: 2                    # real examples per class in the prompt
        seed: 0                 # which examples
      - name: gemma-b
        backend: llama-cpp
        k: 2
        seed: 1
        templates: {field: "Эмоция"}
    moderator:                  # optional; without one, disputed texts stay unlabelled
      backend: llama-cpp
    cache: .synthmix/llm-cache.sqlite

Annotators and the moderator with the same backend settings share one backend (one
model load), and every answer goes through the answer cache, so a rerun pays nothing.

`multi_label=True` (the command's --multi-label): every answer is a label set, agreement is
`set_agreement_report`'s, gold is a column of label lists, and the review CSV shows JSON
lists.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.cards.card import TaskCard
from synthmix.core.config import build_dataclass, read_yaml
from synthmix.core.errors import ConfigError, DataError
from synthmix.core.files import sidecar
from synthmix.core.provenance import package_versions
from synthmix.data.labeled import LabeledData
from synthmix.data.multilabel import MultiLabelData, parse_label_list
from synthmix.labeling.annotators import (
    Annotator,
    Moderator,
    agreement_report,
    annotate,
    export_label_studio,
    export_review_csv,
    label_studio_tasks,
    resolve,
    set_agreement_report,
)
from synthmix.labeling.config import DEFAULT_CACHE
from synthmix.llm.backend import Backend, gather_with_progress
from synthmix.llm.spec import BackendSpec


@dataclass
class _UsesBackend:
    """An annotator's or moderator's backend: a `BackendSpec` mapping under `backend:`, or the
    older shape, a kind name there with its options in `backend_params`."""

    backend: BackendSpec | str = "llama-cpp"
    backend_params: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> BackendSpec:
        if isinstance(self.backend, BackendSpec):
            return self.backend
        return BackendSpec.from_legacy(self.backend, self.backend_params)


@dataclass
class AnnotatorSpec(_UsesBackend):
    name: str = ""
    k: int = 2
    seed: int = 0
    templates: dict[str, str] | None = None


@dataclass
class ModeratorSpec(_UsesBackend):
    max_tokens: int = 200


@dataclass
class AnnotationConfig:
    annotators: list[AnnotatorSpec]
    moderator: ModeratorSpec | None = None
    cache: str = DEFAULT_CACHE


def default_annotation_config() -> AnnotationConfig:
    """Offline: the bundled Gemma twice, with different real examples in the prompt, and
    Gemma again as moderator. It shows the workflow; for labels worth keeping, use
    stronger models (a 270M base model labels CEDR emotions near chance)."""
    return AnnotationConfig(
        annotators=[AnnotatorSpec(name="gemma-a", seed=0), AnnotatorSpec(name="gemma-b", seed=1)],
        moderator=ModeratorSpec(),
    )


def load_annotation_config(path: str | Path) -> AnnotationConfig:
    path = Path(path)
    return parse_annotation_config(read_yaml(path), str(path))


def parse_annotation_config(raw: Any, source: str) -> AnnotationConfig:
    """Keys and types as the dataclasses declare them (`build_dataclass`), then what
    agreement needs: two or more annotators with distinct names, counts >= 0."""
    config: AnnotationConfig = build_dataclass(AnnotationConfig, raw, source)
    if len(config.annotators) < 2:
        raise ConfigError(f"{source}: agreement needs at least two annotators")
    for index, annotator in enumerate(config.annotators):
        where = f"{source}: annotators[{index}]"
        if not annotator.name.strip():
            raise ConfigError(f"{where}: every annotator needs a 'name'")
        for key in ("k", "seed"):
            if getattr(annotator, key) < 0:
                raise ConfigError(f"{where}: {key} must be a whole number >= 0")
    names = [a.name for a in config.annotators]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{source}: annotator name {repeated[0]!r} is used twice")
    if config.moderator is not None and config.moderator.max_tokens < 1:
        raise ConfigError(f"{source}: moderator: max_tokens must be >= 1")
    return config


# ---------------------------------------------------------------------------- running


@dataclass
class AnnotationRun:
    table: pd.DataFrame  # text, one column per annotator, label, source, rationale, ...
    annotators: list[str]
    report: dict[str, Any]


def build_backends(config: AnnotationConfig) -> dict[str, Backend]:
    """One cached backend per distinct backend setting."""
    from synthmix.llm.cache import AnswerCache

    users: list[_UsesBackend] = list(config.annotators)
    users += [config.moderator] if config.moderator is not None else []
    cache = AnswerCache(config.cache)
    backends: dict[str, Backend] = {}
    for user in users:
        spec = user.spec()
        if spec.key() not in backends:
            backends[spec.key()] = spec.open(cache)
    return backends


def run_annotation(
    texts: Sequence[str],
    card: TaskCard,
    config: AnnotationConfig,
    examples: LabeledData | MultiLabelData | None = None,
    gold: Sequence[str] | Sequence[tuple[str, ...]] | None = None,
    explain: bool = False,
    backends: dict[str, Backend] | None = None,
    progress: bool = False,
    multi_label: bool = False,
) -> AnnotationRun:
    """Every annotator labels every text; the moderator settles the disagreements; with
    `explain`, the moderator's model explains each final label (expert mode).
    `multi_label`: label sets throughout (gold: one tuple of labels per text)."""
    if explain and config.moderator is None:
        raise ConfigError("--explain needs a moderator model in the annotators config")
    backends = backends if backends is not None else build_backends(config)
    annotators = [
        Annotator(
            a.name,
            card,
            backends[a.spec().key()],
            examples,
            k=a.k,
            templates=a.templates,
            seed=a.seed,
            multi_label=multi_label,
        )
        for a in config.annotators
    ]
    names = [a.name for a in annotators]
    table = annotate(annotators, texts, progress)
    moderator = None
    if config.moderator is not None:
        moderator_backend = backends[config.moderator.spec().key()]
        moderator = Moderator(
            card, moderator_backend, config.moderator.max_tokens, multi_label=multi_label
        )
    table = resolve(table, names, moderator, progress)
    if explain and moderator is not None:
        pairs = zip(table["text"], table["label"], strict=True)
        calls = [_explanation(moderator, str(text), label) for text, label in pairs]
        table["explanation"] = asyncio.run(gather_with_progress(calls, "explanations", progress))
    if gold is not None:
        table["gold"] = pd.Series(list(gold), dtype=object)
    if multi_label:
        sets = None if gold is None else [tuple(g) for g in gold]
        report = set_agreement_report(table, names, card.class_names, sets)
    else:
        report = agreement_report(table, names, card.class_names, gold)  # type: ignore[arg-type]
    report["final"] = {
        "by_source": {str(k): int(v) for k, v in table["source"].value_counts().items()},
        "unlabelled": int(table["label"].isna().sum()),
    }
    if gold is not None:
        decided = table["label"].notna()
        # Multi-label: the share of decided texts whose set is exactly the gold set.
        right = sum(
            _same(x, y)
            for x, y in zip(table.loc[decided, "label"], table.loc[decided, "gold"], strict=True)
        )
        report["final"]["accuracy_on_decided"] = (
            float(right / decided.sum()) if decided.any() else None
        )
    problems = [line for a in annotators if multi_label for line in a.parsing.lines(a.name)]
    if problems:
        report["answer_problems"] = problems
    # Backend params name servers, models and the key's environment variable, never a key.
    report["config"] = {
        **asdict(config),
        "explain": explain,
        "examples_given": examples is not None,
    }
    report["backends"] = [b.cache_identity() for b in backends.values()]
    report["package_versions"] = package_versions()
    return AnnotationRun(table, names, report)


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, tuple) or isinstance(y, tuple):
        return set(x) == set(y)
    return bool(x == y)


async def _explanation(moderator: Moderator, text: str, label: Any) -> str:
    return "" if label is None else await moderator.aexplain(text, label)


def gold_label_sets(
    frame: pd.DataFrame,
    path: str | Path,
    column: str,
    card: TaskCard,
    delimiter: str | None = None,
) -> list[tuple[str, ...]]:
    """Human label sets from `column` (JSON lists, or labels joined by `delimiter`); a
    malformed list or a label the card does not know is one line naming the file and row."""
    if column not in frame.columns:
        raise DataError(str(path), f"no gold column '{column}'")
    known = set(card.class_names)
    sets = []
    for row, value in enumerate(frame[column], start=1):
        try:
            labels = parse_label_list(value, delimiter)
        except ValueError as exc:
            raise DataError(str(path), f"column '{column}': {exc}", row=row) from None
        unknown = sorted(set(labels) - known)
        if unknown:
            raise DataError(str(path), f"gold label {unknown[0]!r} is not a class of the card", row)
        sets.append(labels)
    return sets


def gold_labels(frame: pd.DataFrame, path: str | Path, column: str, card: TaskCard) -> list[str]:
    """Human labels from `column` of the input file; a missing column, an empty label or a
    label the card does not know is a one-line error naming the file and row."""
    if column not in frame.columns:
        raise DataError(str(path), f"no gold column '{column}'")
    labels = frame[column].fillna("").astype(str).str.strip()
    known = set(card.class_names)
    for row, value in enumerate(labels, start=1):
        if not value:
            raise DataError(str(path), f"empty gold label in column '{column}'", row=row)
        if value not in known:
            raise DataError(str(path), f"gold label {value!r} is not a class of the card", row)
    return labels.tolist()


def write_annotation(
    run: AnnotationRun, out: str | Path, label_studio: str | Path | None = None
) -> Path:
    """The review CSV (with an empty `human_label` column), `<out>.agreement.json` beside
    it and, if asked, Label Studio tasks with each annotator's and the final label."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_review_csv(run.table, out)
    report_path = sidecar(out, "agreement")
    report_path.write_text(
        json.dumps(run.report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if label_studio is not None:
        predictions = {name: list(run.table[name]) for name in run.annotators}
        predictions["final"] = list(run.table["label"])
        # The input row travels with each task, so reviewed labels trace back to the file.
        rows = {"row": list(range(1, len(run.table) + 1))}
        tasks = label_studio_tasks(list(run.table["text"]), predictions, data=rows)
        export_label_studio(tasks, label_studio)
    return report_path


def summary_lines(run: AnnotationRun) -> list[str]:
    report = run.report
    if report.get("task") == "multi_label":
        return _set_summary_lines(run)
    final = report["final"]
    lines = [
        f"{report['items']} texts, annotators: {', '.join(run.annotators)}",
        "Cohen's kappa: "
        + ", ".join(f"{pair} {_fmt(v)}" for pair, v in report["cohen_kappa"].items()),
        f"Fleiss' kappa {_fmt(report['fleiss_kappa'])} ({report['fleiss_items']} texts every "
        f"annotator answered); Krippendorff's alpha {_fmt(report['krippendorff_alpha'])}",
        "final labels: "
        + ", ".join(f"{k} {v}" for k, v in final["by_source"].items())
        + f"; unlabelled {final['unlabelled']}",
    ]
    for name, metrics in (report.get("vs_gold") or {}).items():
        lines.append(
            f"{name} vs gold: accuracy {metrics['accuracy']:.3f}, "
            f"F1-macro {metrics['f1_macro']:.3f}"
        )
    if final.get("accuracy_on_decided") is not None:
        lines.append(f"final labels vs gold: accuracy {final['accuracy_on_decided']:.3f}")
    return lines


def _fmt(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.3f}"


def _set_summary_lines(run: AnnotationRun) -> list[str]:
    report = run.report
    final = report["final"]
    exact = report["exact_set_agreement"]
    kappas = {k: v for k, v in report["per_label_cohen_kappa_mean"].items() if v is not None}
    shown = sorted(kappas.items(), key=lambda item: item[1])
    lines = [
        f"{report['items']} texts, annotators: {', '.join(run.annotators)} (multi-label)",
        f"Krippendorff's alpha: MASI {_fmt(report['krippendorff_alpha_masi'])}, Jaccard "
        f"{_fmt(report['krippendorff_alpha_jaccard'])}; exact-set agreement "
        f"{exact['agree']} of {exact['items']} texts",
        "per-label Cohen's kappa (mean over pairs), lowest first: "
        + (", ".join(f"{label} {_fmt(v)}" for label, v in shown[:8]) or "—"),
        "final label sets: "
        + ", ".join(f"{k} {v}" for k, v in final["by_source"].items())
        + f"; unlabelled {final['unlabelled']}",
    ]
    for name, metrics in (report.get("vs_gold") or {}).items():
        lines.append(
            f"{name} vs gold: micro-F1 {metrics['f1_micro']:.3f}, macro-F1 "
            f"{metrics['f1_macro']:.3f}, exact set {metrics['exact_set']:.3f}"
        )
    if final.get("accuracy_on_decided") is not None:
        lines.append(f"final label sets vs gold: exact set {final['accuracy_on_decided']:.3f}")
    lines += report.get("answer_problems", [])
    return lines
