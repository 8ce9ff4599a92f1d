"""Cheap metrics of synthetic data: diversity, fidelity, consistency, novelty.

Modules: `config` (metric names and groups, `QualityConfig`), `bootstrap` (a measured value
and its interval), one per metric family (`diversity`, `fidelity`, `consistency`: label
consistency and novelty), `measure` (`measure_quality`: samples, embeds once, runs the
families overall and per class) and `files` (the metrics JSON and its terminal summary).
"""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

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
    ".files": ("flat_values", "read_quality", "summary_lines", "write_quality"),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
