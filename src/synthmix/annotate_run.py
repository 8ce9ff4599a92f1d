"""File-level glue for `synthmix annotate`: LLM annotators, a moderator for their
disagreements and an optional expert explanation per label, from a small YAML:

    annotators:                 # two or more; each a backend and a prompt
      - name: gemma-a
        backend: llama-cpp      # openai | llama-cpp | transformers
        backend_params: {}      # e.g. {base_url: ..., model: ...} for openai
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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.annotators import (
    Annotator,
    Moderator,
    agreement_report,
    annotate,
    export_label_studio,
    export_review_csv,
    gather_with_progress,
    label_studio_tasks,
    resolve,
)
from synthmix.cards import TaskCard
from synthmix.config import read_yaml
from synthmix.data import LabeledData
from synthmix.errors import ConfigError, DataError
from synthmix.experiment import package_versions
from synthmix.labeling.config import DEFAULT_CACHE
from synthmix.llm.backend import Backend

_ANNOTATOR_KEYS = {"name", "backend", "backend_params", "k", "seed", "templates"}
_MODERATOR_KEYS = {"backend", "backend_params", "max_tokens"}


@dataclass
class BackendSpec:
    kind: str = "llama-cpp"
    params: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps([self.kind.lower(), self.params], sort_keys=True, default=str)


@dataclass
class AnnotatorSpec:
    name: str
    backend: BackendSpec = field(default_factory=BackendSpec)
    k: int = 2
    seed: int = 0
    templates: dict[str, str] | None = None


@dataclass
class AnnotationConfig:
    annotators: list[AnnotatorSpec]
    moderator: BackendSpec | None = None
    moderator_max_tokens: int = 200
    cache: str = DEFAULT_CACHE


def default_annotation_config() -> AnnotationConfig:
    """Offline: the bundled Gemma twice, with different real examples in the prompt, and
    Gemma again as moderator. It shows the workflow; for labels worth keeping, use
    stronger models (a 270M base model labels CEDR emotions near chance)."""
    return AnnotationConfig(
        annotators=[AnnotatorSpec("gemma-a", seed=0), AnnotatorSpec("gemma-b", seed=1)],
        moderator=BackendSpec(),
    )


def load_annotation_config(path: str | Path) -> AnnotationConfig:
    path = Path(path)
    return parse_annotation_config(read_yaml(path), str(path))


def parse_annotation_config(raw: Any, source: str) -> AnnotationConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("annotators"), list):
        raise ConfigError(f"{source}: expected a mapping with an 'annotators' list")
    unknown = sorted(set(raw) - {"annotators", "moderator", "cache"})
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}")
    annotators = [_annotator(item, i, source) for i, item in enumerate(raw["annotators"], 1)]
    if len(annotators) < 2:
        raise ConfigError(f"{source}: agreement needs at least two annotators")
    names = [a.name for a in annotators]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{source}: annotator name {repeated[0]!r} is used twice")
    config = AnnotationConfig(annotators, cache=str(raw.get("cache") or DEFAULT_CACHE))
    moderator = raw.get("moderator")
    if moderator is not None:
        where = f"{source}: moderator"
        _check_keys(moderator, _MODERATOR_KEYS, where)
        config.moderator = _backend_spec(moderator, where)
        config.moderator_max_tokens = _int(moderator, "max_tokens", 200, where)
    return config


def _check_keys(item: Any, allowed: set[str], where: str) -> None:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")


def _int(item: dict[str, Any], key: str, default: int, where: str) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key} must be a whole number >= 0, got {value!r}")
    return value


def _backend_spec(item: dict[str, Any], where: str) -> BackendSpec:
    params = item.get("backend_params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: backend_params must be a mapping")
    return BackendSpec(str(item.get("backend", "llama-cpp")), dict(params))


def _annotator(item: Any, index: int, source: str) -> AnnotatorSpec:
    where = f"{source}: annotator {index}"
    _check_keys(item, _ANNOTATOR_KEYS, where)
    if not str(item.get("name") or "").strip():
        raise ConfigError(f"{where}: every annotator needs a 'name'")
    templates = item.get("templates")
    if templates is not None and not isinstance(templates, dict):
        raise ConfigError(f"{where}: templates must be a mapping")
    return AnnotatorSpec(
        name=str(item["name"]),
        backend=_backend_spec(item, where),
        k=_int(item, "k", 2, where),
        seed=_int(item, "seed", 0, where),
        templates={str(k): str(v) for k, v in templates.items()} if templates else None,
    )


# ---------------------------------------------------------------------------- running


@dataclass
class AnnotationRun:
    table: pd.DataFrame  # text, one column per annotator, label, source, rationale, ...
    annotators: list[str]
    report: dict[str, Any]


def build_backends(config: AnnotationConfig) -> dict[str, Backend]:
    """One cached backend per distinct backend setting."""
    from synthmix.llm.cache import AnswerCache, CachedBackend
    from synthmix.llm.factory import build_backend

    specs = [a.backend for a in config.annotators]
    specs += [config.moderator] if config.moderator is not None else []
    cache = AnswerCache(config.cache)
    backends: dict[str, Backend] = {}
    for spec in specs:
        if spec.key() not in backends:
            backends[spec.key()] = CachedBackend(build_backend(spec.kind, **spec.params), cache)
    return backends


def run_annotation(
    texts: Sequence[str],
    card: TaskCard,
    config: AnnotationConfig,
    examples: LabeledData | None = None,
    gold: Sequence[str] | None = None,
    explain: bool = False,
    backends: dict[str, Backend] | None = None,
    progress: bool = False,
) -> AnnotationRun:
    """Every annotator labels every text; the moderator settles the disagreements; with
    `explain`, the moderator's model explains each final label (expert mode)."""
    if explain and config.moderator is None:
        raise ConfigError("--explain needs a moderator model in the annotators config")
    backends = backends if backends is not None else build_backends(config)
    annotators = [
        Annotator(
            a.name,
            card,
            backends[a.backend.key()],
            examples,
            k=a.k,
            templates=a.templates,
            seed=a.seed,
        )
        for a in config.annotators
    ]
    names = [a.name for a in annotators]
    table = annotate(annotators, texts, progress)
    moderator = None
    if config.moderator is not None:
        moderator_backend = backends[config.moderator.key()]
        moderator = Moderator(card, moderator_backend, config.moderator_max_tokens)
    table = resolve(table, names, moderator, progress)
    if explain and moderator is not None:
        pairs = zip(table["text"], table["label"], strict=True)
        calls = [_explanation(moderator, str(text), label) for text, label in pairs]
        table["explanation"] = asyncio.run(gather_with_progress(calls, "explanations", progress))
    if gold is not None:
        table["gold"] = list(gold)
    report = agreement_report(table, names, card.class_names, gold)
    report["final"] = {
        "by_source": {str(k): int(v) for k, v in table["source"].value_counts().items()},
        "unlabelled": int(table["label"].isna().sum()),
    }
    if gold is not None:
        decided = table["label"].notna()
        right = (table.loc[decided, "label"] == table.loc[decided, "gold"]).sum()
        report["final"]["accuracy_on_decided"] = (
            float(right / decided.sum()) if decided.any() else None
        )
    # Backend params name servers, models and the key's environment variable, never a key.
    report["config"] = {
        **asdict(config),
        "explain": explain,
        "examples_given": examples is not None,
    }
    report["backends"] = [b.cache_identity() for b in backends.values()]
    report["package_versions"] = package_versions()
    return AnnotationRun(table, names, report)


async def _explanation(moderator: Moderator, text: str, label: str | None) -> str:
    return "" if label is None else await moderator.aexplain(text, label)


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
    report_path = out.with_name(out.stem + ".agreement.json")
    report_path.write_text(
        json.dumps(run.report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if label_studio is not None:
        predictions = {name: list(run.table[name]) for name in run.annotators}
        predictions["final"] = list(run.table["label"])
        export_label_studio(label_studio_tasks(list(run.table["text"]), predictions), label_studio)
    return report_path


def summary_lines(run: AnnotationRun) -> list[str]:
    report = run.report
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
