"""A generator tuned inside each cell: LoRA fine-tuning (generation.tuning) on the real texts
the cell may see, then class-conditional generation with the `tuned` strategy.

A generator tuned once on the whole training set has read the other 90% of the real data, and
a "10% real + tuned" cell would profit from texts it may not train on. So, like the EDA
source, this one is derived per cell. Training is the expensive part (meant for a GPU), so
what a (real sample, seed, settings) made is kept in RUN_DIR/tuned/<source>/<key>/ — the
adapter, the texts and `made.json` (written last: a folder without it is unfinished) — and a
killed or resumed run, or another cell with the same real sample, reads it back instead of
training again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from synthmix.cards.card import ClassCard, TaskCard
from synthmix.data.labeled import LABEL, TEXT, LabeledData
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.sources import DerivedSource, TunedSourceConfig
from synthmix.generation.generate import GenerationConfig, generate_until_unique
from synthmix.generation.tuning import ADAPTER_DIR, INFO_FILE, tune_generator

log = logging.getLogger("synthmix")

MADE_FILE = "made.json"
TEXTS_FILE = "texts.jsonl"
MODEL_DIR = "model"
ANSWERS_FILE = "answers.sqlite"
# What the engine's filter chain dropped: repeats, near-repeats, copies (and near-copies) of
# the cell's real texts, fragments and loops, texts cut by max_tokens; and unreadable answers.
DROPS = ("duplicates", "near_duplicates", "leaks", "rejected", "truncated", "parse_failures")


class TunedSource(DerivedSource):
    """`tune:` source. `folder` (set by `attach_run_dir`) keeps what each real sample made;
    without one, a scratch folder of this process does."""

    def __init__(self, name: str, config: TunedSourceConfig) -> None:
        config.check()  # a missing package or bad value fails before any training
        self.name = name
        self.tune = config
        # run.json describes a derived source by its settings.
        self.settings = {"tune": asdict(config)}
        self.folder: Path | None = None
        self.trained = 0  # trainings this process ran (a reused sample trains none)
        self.reused = 0

    def __call__(
        self, visible: LabeledData, per_class: int | Mapping[str, int], seed: int
    ) -> LabeledData:
        wanted = (
            dict(per_class)
            if isinstance(per_class, Mapping)
            else dict.fromkeys(visible.classes, per_class)
        )
        if self.tune.per_class is not None:
            wanted = {label: min(n, self.tune.per_class) for label, n in wanted.items()}
        count = max(wanted.values(), default=0)
        # Sorted: the key and the training do not depend on the order the cell drew its sample.
        real = visible.subset(
            visible.frame.sort_values([LABEL, TEXT], kind="stable").index.to_numpy()
        )
        folder = self._root() / self.key(real, seed)
        made = read_made(folder)
        if made is not None and made["per_class"] >= count:
            self.reused += 1
            return _read_texts(folder, self.name)
        return self._make(real, count, seed, folder)

    def key(self, real: LabeledData, seed: int) -> str:
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode())
        digest.update(f"seed {seed}\n".encode())
        for text, label in zip(real.texts, real.labels, strict=True):
            digest.update(f"{label}\t{text}\n".encode())
        return digest.hexdigest()[:24]

    def _root(self) -> Path:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix=f"synthmix-{self.name}-"))
        return self.folder

    def _make(self, real: LabeledData, count: int, seed: int, folder: Path) -> LabeledData:
        model_dir = folder / MODEL_DIR
        info_file = model_dir / INFO_FILE
        trained_now = not (info_file.is_file() and (model_dir / "config.json").is_file())
        if trained_now:
            shutil.rmtree(model_dir, ignore_errors=True)  # an unfinished training
            tune = replace(self.tune, seed=seed)
            log.info(
                "%s: tuning %s on %d real texts (seed %d)", self.name, tune.model, len(real), seed
            )
            tune_generator(real, tune, model_dir, progress=False)
            self.trained += 1
        info = json.loads(info_file.read_text(encoding="utf-8"))
        started = time.perf_counter()
        result = asyncio.run(self._generate(model_dir, real, count, seed, str(info["device"])))
        generate_s = time.perf_counter() - started
        frame = result.data.frame.assign(generator=f"tuned:{self.name}", seed=seed)
        tmp = folder / (TEXTS_FILE + ".tmp")
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        tmp.replace(folder / TEXTS_FILE)
        reports = result.classes.values()
        record = {
            "source": self.name,
            "seed": seed,
            "real_texts": len(real),
            "real_counts": real.class_counts(),
            "per_class": count,
            "steps": info["steps"],
            "train_s": info["train_s"],
            "train_loss": info["train_loss"],
            "device": info["device"],
            "adapter_digest": _digest_folder(model_dir / ADAPTER_DIR),
            "generate_s": round(generate_s, 3),
            "calls": sum(r.calls for r in reports),
            "texts_returned": sum(r.texts_returned for r in reports),
            "texts_made": len(frame),
            "made": result.data.class_counts(),
            "dropped": {drop: sum(getattr(r, drop) for r in reports) for drop in DROPS},
        }
        if not self.tune.keep_model:
            # The merged model is the base model's size; the adapter is kept (and digested).
            for path in model_dir.iterdir():
                if path.name not in (ADAPTER_DIR, INFO_FILE):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        tmp = folder / (MADE_FILE + ".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(folder / MADE_FILE)
        return _read_texts(folder, self.name)

    async def _generate(
        self, model_dir: Path, real: LabeledData, count: int, seed: int, device: str
    ) -> Any:
        from synthmix.llm.cache import AnswerCache, CachedBackend
        from synthmix.llm.transformers_local import TransformersBackend

        local = TransformersBackend(
            str(model_dir),
            device=device,
            chat=False,
            max_new_tokens=self.tune.max_tokens,
            seed=seed,
        )
        # Every answer persisted before use, as for any generator: a run killed while
        # generating reads back what it had (the sample's folder keeps the cache).
        cache = AnswerCache(model_dir.parent / ANSWERS_FILE)
        backend = CachedBackend(local, cache)
        # The tuned strategy prompts with the label id alone; the card only names classes.
        card = TaskCard("", "", [ClassCard(name=label, description="") for label in real.classes])
        config = GenerationConfig(
            strategy="tuned",
            per_class=count,
            temperature=self.tune.temperature,
            top_p=self.tune.top_p,
            texts_per_call=1,
            seed=seed,
            max_tokens=self.tune.max_tokens,
            concurrency=1,
            max_calls_per_class=self.tune.calls_per_text * count,
        )
        # `real` = the cell's real texts: copies of them are leaks and are dropped.
        try:
            return await generate_until_unique(backend, "tuned", card, real, config, progress=False)
        finally:
            cache.close()


def read_made(folder: Path) -> dict[str, Any] | None:
    path = folder / MADE_FILE
    if not path.is_file():
        return None
    made: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return made


def _read_texts(folder: Path, name: str) -> LabeledData:
    frame = pd.read_json(folder / TEXTS_FILE, orient="records", lines=True, dtype=False)
    if frame.empty:
        frame = pd.DataFrame({TEXT: pd.Series(dtype=str), LABEL: pd.Series(dtype=str)})
    frame[TEXT] = frame[TEXT].astype(str)
    frame[LABEL] = frame[LABEL].astype(str)
    return LabeledData(frame.reset_index(drop=True), f"tuned source {name}")


def _digest_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def attach_run_dir(sources: Mapping[str, object], run: RunDir) -> None:
    """Keep what every tuned source makes inside `run`, so a resumed run reuses it."""
    for source in sources.values():
        if isinstance(source, TunedSource):
            source.folder = run.tuned_dir / source.name


def tuned_stats(run: RunDir, names: list[str]) -> dict[str, dict[str, Any]]:
    """Per tuned source, what its trainings did: one entry per (real sample, seed), and sums."""
    stats: dict[str, dict[str, Any]] = {}
    for name in names:
        made = [
            record
            for folder in sorted((run.tuned_dir / name).glob("*"))
            if (record := read_made(folder)) is not None
        ]
        if not made:
            continue
        stats[name] = {
            "trainings": len(made),
            "steps": sum(m["steps"] for m in made),
            "train_s": round(sum(m["train_s"] for m in made), 3),
            "texts_made": sum(m["texts_made"] for m in made),
            "dropped": {drop: sum(m["dropped"][drop] for m in made) for drop in DROPS},
            "samples": made,
        }
    return stats


def add_tuned_stats(run: RunDir, sources: Mapping[str, object]) -> None:
    """sources.json gains, per tuned source, what was trained and made (`tuned`)."""
    from synthmix.experiment.source_stats import read_source_stats, write_source_stats

    names = [name for name, source in sources.items() if isinstance(source, TunedSource)]
    found = tuned_stats(run, names)
    if not found:
        return
    stats = read_source_stats(run)
    for name, tuned in found.items():
        stats.setdefault(name, {})["tuned"] = tuned
    write_source_stats(run, stats)
