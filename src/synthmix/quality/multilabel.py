"""Cheap quality metrics of a multi-label synthetic source, overall and per label.

The single-label metrics (`measure`), computed on label sets: a text counts for every label it
carries, so a label's section is measured on the synthetic texts that carry it against the
real texts that carry it (a text with joy and surprise is in both sections; a text with no
label is only in the overall one). Each text is embedded once; the overall section measures
every sampled text once, whatever its labels.

Label consistency (a classifier trained on one side, scored on the other's labels) needs a
multi-label classifier and is not measured here: its entries are undefined, with the reason.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from synthmix.data.labeled import LabeledData
from synthmix.data.multilabel import MultiLabelData
from synthmix.data.pairs import join_pairs
from synthmix.embeddings.encoder import Encoder, build_encoder
from synthmix.quality.bootstrap import Bootstrap, undefined
from synthmix.quality.config import CONSISTENCY, PER_CLASS_SKIP, QualityConfig
from synthmix.quality.consistency import nn_similarity, normalised
from synthmix.quality.diversity import self_bleu_per_text
from synthmix.quality.measure import PerText, Side, _Measurer, embed_all

TASK = "multi_label"
ALL_TEXTS = "(all texts)"  # the one class of the overall section's samples
NO_CONSISTENCY = "label consistency is not measured for multi-label sources"


def measure_multilabel_quality(
    synthetic: MultiLabelData,
    real: MultiLabelData,
    config: QualityConfig | None = None,
    encoder: Encoder | None = None,
) -> dict[str, Any]:
    """Quality metrics of `synthetic` against `real`, shaped like `measure_quality`'s
    result (`overall`, `per_class` keyed by label) plus `task` and, per label, the texts
    each side contributed (`label_counts`). Text pairs are measured as joined pairs."""
    config = config or QualityConfig()
    selected = [m for m in config.selected() if m not in CONSISTENCY]
    encoder = encoder or build_encoder()
    synth_sample = _sample(synthetic, config.sample_size, config.seed)
    real_sample = _sample(real, config.sample_size, config.seed + 1)
    reference = real if config.novelty_against_all_real else real_sample
    synth_texts, real_texts, reference_texts = (
        _texts(d) for d in (synth_sample, real_sample, reference)
    )
    synth_vectors, real_vectors, reference_vectors = embed_all(
        encoder, [synth_texts, real_texts, reference_texts]
    )
    known = {normalised(t) for t in reference_texts}
    similarity = nn_similarity(synth_vectors, reference_vectors)
    copies = np.array([normalised(t) in known for t in synth_texts], dtype=bool)
    measurer = _Measurer(config, Bootstrap(config.n_boot, config.confidence, config.seed), selected)

    def measure(synth_rows: np.ndarray, real_rows: np.ndarray, label: str) -> dict[str, Any]:
        synth = _side([synth_texts[i] for i in synth_rows], synth_vectors[synth_rows], label)
        real_side = _side([real_texts[i] for i in real_rows], real_vectors[real_rows], label)
        bleu = np.full(len(synth_rows), np.nan)
        if "self_bleu" in selected:
            bleu = self_bleu_per_text(synth.data, config.self_bleu_sample, config.seed)
        per_text = PerText(similarity[synth_rows], copies[synth_rows], bleu, {})
        return measurer.run(synth, real_side, per_text, per_class=label != ALL_TEXTS)

    overall = measure(np.arange(len(synth_sample)), np.arange(len(real_sample)), ALL_TEXTS)
    result: dict[str, Any] = {
        "task": TASK,
        "synthetic": {
            "source": synthetic.source,
            "rows": len(synthetic),
            "sample": len(synth_sample),
        },
        "real": {"source": real.source, "rows": len(real), "sample": len(real_sample)},
        "encoder": getattr(encoder, "name", type(encoder).__name__),
        "config": asdict(config),
        "overall": _with_consistency(overall, config, per_class=False),
        "per_class": {},
        "label_counts": {},
    }
    if config.per_class:
        synth_sets, real_sets = synth_sample.label_sets, real_sample.label_sets
        for label in sorted(set(synth_sample.classes) | set(real_sample.classes)):
            synth_rows = np.array([i for i, s in enumerate(synth_sets) if label in s], dtype=int)
            real_rows = np.array([i for i, s in enumerate(real_sets) if label in s], dtype=int)
            result["label_counts"][label] = {
                "synthetic": len(synth_rows),
                "real": len(real_rows),
            }
            section = measure(synth_rows, real_rows, label)
            result["per_class"][label] = _with_consistency(section, config, per_class=True)
    return result


def _texts(data: MultiLabelData) -> list[str]:
    pairs = data.pairs
    return data.texts if pairs is None else join_pairs(data.texts, pairs)


def _side(texts: list[str], vectors: np.ndarray, label: str) -> Side:
    frame = pd.DataFrame({"text": texts, "label": [label] * len(texts)}, dtype=object)
    return Side(LabeledData(frame.reset_index(drop=True), label), vectors)


def _sample(data: MultiLabelData, size: int, seed: int) -> MultiLabelData:
    """At most `size` texts, drawn at random (each label's share stays close to the
    source's in expectation)."""
    if len(data) <= size:
        return data
    rows = np.sort(np.random.default_rng(seed).choice(len(data), size=size, replace=False))
    return data.subset(rows)


def _with_consistency(
    section: dict[str, Any], config: QualityConfig, per_class: bool
) -> dict[str, Any]:
    """The consistency metrics the config asked for, as undefined with the reason."""
    wanted = [
        m for m in config.selected() if m in CONSISTENCY and not (per_class and m in PER_CLASS_SKIP)
    ]
    return {**section, **{m: undefined(NO_CONSISTENCY).to_dict() for m in wanted}}


__all__ = ["measure_multilabel_quality"]
