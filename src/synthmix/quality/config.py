"""Which quality metrics exist, their groups, and what a run measures (`QualityConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from synthmix.core.errors import ConfigError

DIVERSITY = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "self_bleu",
    "compression_ratio",
    "mean_pairwise_cosine",
    "vendi_score",
)
FIDELITY = ("mauve", "frechet_distance", "c2st_auc")
CONSISTENCY = (
    "real_to_synth_accuracy",
    "real_to_synth_f1_macro",
    "synth_to_real_accuracy",
    "synth_to_real_f1_macro",
)
NOVELTY = ("nn_real_similarity", "leak_share", "exact_copy_share")
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "diversity": DIVERSITY,
    "fidelity": FIDELITY,
    "consistency": CONSISTENCY,
    "novelty": NOVELTY,
}
ALL_METRICS = DIVERSITY + FIDELITY + CONSISTENCY + NOVELTY
# Per class there is one class, so macro F1 would be the class's F1 over a one-class test
# set; the per-class section reports the class's recall (accuracy on its texts) instead.
PER_CLASS_SKIP = frozenset({"real_to_synth_f1_macro", "synth_to_real_f1_macro"})
NN_STATS = ("mean", "p50", "p90", "p99")


@dataclass
class QualityConfig:
    """What to measure and how hard.

    `metrics` takes metric names and/or group names (diversity, fidelity, consistency,
    novelty). Per-class fidelity needs `min_class_size` texts of the class on both sides.
    """

    sample_size: int = 2000
    n_boot: int = 200
    seed: int = 0
    leak_threshold: float = 0.95
    metrics: tuple[str, ...] = ("diversity", "fidelity", "consistency", "novelty")
    confidence: float = 0.95
    per_class: bool = True
    self_bleu_sample: int = 200
    min_class_size: int = 20
    max_clusters: int = 200
    mauve_scaling: float = 5.0
    # A copy of a real text is missed if that text is not in the real sample, so the leak
    # check compares against every real text by default.
    novelty_against_all_real: bool = True

    def selected(self) -> list[str]:
        chosen: list[str] = []
        for name in self.metrics:
            names = METRIC_GROUPS.get(name, (name,))
            for metric in names:
                if metric not in ALL_METRICS:
                    known = ", ".join((*METRIC_GROUPS, *ALL_METRICS))
                    raise ConfigError(f"unknown quality metric {metric!r} (known: {known})")
                if metric not in chosen:
                    chosen.append(metric)
        return chosen
