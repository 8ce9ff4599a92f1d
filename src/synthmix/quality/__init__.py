"""Cheap metrics of synthetic data: diversity, fidelity, consistency, novelty.

Modules: `config` (metric names and groups, `QualityConfig`), `bootstrap` (a measured value
and its interval), one per metric family (`diversity`, `fidelity`, `consistency`: label
consistency and novelty), `measure` (`measure_quality`: samples, embeds once, runs the
families overall and per class), `multilabel` (`measure_multilabel_quality`: the same per
label, a text counting for every label it carries) and `files` (the metrics JSON and its
terminal summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthmix.core.exports import lazy_exports

if TYPE_CHECKING:
    from synthmix.quality.bootstrap import Bootstrap, Measured, undefined
    from synthmix.quality.config import ALL_METRICS, METRIC_GROUPS, QualityConfig
    from synthmix.quality.consistency import cross_predict, macro_f1
    from synthmix.quality.diversity import (
        compression_ratio,
        distinct_n,
        mean_pairwise_cosine,
        self_bleu_scores,
        vendi_score,
    )
    from synthmix.quality.fidelity import (
        auc,
        frechet_distance,
        frechet_from_samples,
        mauve,
        mauve_from_histograms,
    )
    from synthmix.quality.files import flat_values, read_quality, summary_lines, write_quality
    from synthmix.quality.measure import measure_quality
    from synthmix.quality.multilabel import measure_multilabel_quality


_EXPORTS = {
    ".bootstrap": ("Bootstrap", "Measured", "undefined"),
    ".config": ("ALL_METRICS", "METRIC_GROUPS", "QualityConfig"),
    ".diversity": (
        "compression_ratio",
        "distinct_n",
        "mean_pairwise_cosine",
        "self_bleu_scores",
        "vendi_score",
    ),
    ".fidelity": (
        "auc",
        "frechet_distance",
        "frechet_from_samples",
        "mauve",
        "mauve_from_histograms",
    ),
    ".consistency": ("cross_predict", "macro_f1"),
    ".measure": ("measure_quality",),
    ".multilabel": ("measure_multilabel_quality",),
    ".files": ("flat_values", "read_quality", "summary_lines", "write_quality"),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = [
    "ALL_METRICS",
    "METRIC_GROUPS",
    "Bootstrap",
    "Measured",
    "QualityConfig",
    "auc",
    "compression_ratio",
    "cross_predict",
    "distinct_n",
    "flat_values",
    "frechet_distance",
    "frechet_from_samples",
    "macro_f1",
    "mauve",
    "mauve_from_histograms",
    "mean_pairwise_cosine",
    "measure_multilabel_quality",
    "measure_quality",
    "read_quality",
    "self_bleu_scores",
    "summary_lines",
    "undefined",
    "vendi_score",
    "write_quality",
]
