"""Per-label quality metrics of a multi-label source, against hand computations."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from synthmix.data.multilabel import MultiLabelData
from synthmix.quality.config import QualityConfig
from synthmix.quality.multilabel import NO_CONSISTENCY, measure_multilabel_quality


class HashEncoder:
    """Random unit vector per distinct text: copies embed identically."""

    name = "hash-32"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=32))
        vectors = np.asarray(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def data(rows: list[tuple[str, tuple[str, ...]]], source: str) -> MultiLabelData:
    frame = pd.DataFrame({"text": [t for t, _ in rows], "labels": [ls for _, ls in rows]})
    return MultiLabelData(frame, source)


SYNTH = data(
    [
        ("мама мыла раму", ("joy",)),
        ("мама мыла окно", ("joy", "surprise")),
        ("кот спал", ("surprise",)),
        ("я рад", ()),
    ],
    "synth",
)
REAL = data([("кот спал", ("surprise",)), ("папа мыл пол", ("joy",))], "real")


def test_per_label_metrics_count_a_text_for_every_label_it_has() -> None:
    config = QualityConfig(metrics=("distinct_1", "distinct_2", "exact_copy_share"), n_boot=20)
    result = measure_multilabel_quality(SYNTH, REAL, config, encoder=HashEncoder())
    assert result["task"] == "multi_label"
    joy, surprise = result["per_class"]["joy"], result["per_class"]["surprise"]
    assert result["label_counts"] == {
        "joy": {"synthetic": 2, "real": 1},
        "surprise": {"synthetic": 2, "real": 1},
    }
    # joy: "мама мыла раму", "мама мыла окно": unigrams 6, distinct 4; bigrams 4, distinct 3.
    assert joy["distinct_1"]["value"] == pytest.approx(4 / 6)
    assert joy["distinct_2"]["value"] == pytest.approx(3 / 4)
    # surprise: "мама мыла окно", "кот спал" (a copy of a real text): 5 unigrams, all distinct.
    assert surprise["distinct_1"]["value"] == pytest.approx(1.0)
    assert surprise["exact_copy_share"]["value"] == pytest.approx(1 / 2)
    assert joy["exact_copy_share"]["value"] == 0
    # Overall: every text once, the unlabelled one included: 10 unigrams, 8 distinct.
    assert result["overall"]["distinct_1"]["value"] == pytest.approx(8 / 10)
    assert result["overall"]["exact_copy_share"]["value"] == pytest.approx(1 / 4)


def test_consistency_is_undefined_with_its_reason() -> None:
    config = QualityConfig(metrics=("distinct_1", "consistency"), n_boot=10)
    result = measure_multilabel_quality(SYNTH, REAL, config, encoder=HashEncoder())
    assert result["overall"]["real_to_synth_f1_macro"]["reason"] == NO_CONSISTENCY
    assert "real_to_synth_f1_macro" not in result["per_class"]["joy"]
    assert result["per_class"]["joy"]["real_to_synth_accuracy"]["value"] is None
