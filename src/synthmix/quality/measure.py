"""Cheap quality metrics of a synthetic source, overall and per class.

Four families, all computed on a random sample of at most `sample_size` synthetic and real
texts (stratified by class), each text embedded once:

- diversity: `distinct_1..3`, `self_bleu`, `compression_ratio`, `mean_pairwise_cosine`,
  `vendi_score`;
- fidelity (synthetic vs real): `mauve`, `frechet_distance`, `c2st_auc`;
- label consistency: `real_to_synth_*` (a classifier trained on real data, scored on the
  synthetic labels) and `synth_to_real_*` (trained on synthetic, scored on real);
- novelty / memorisation: `nn_real_similarity` (max cosine of each synthetic text to any
  real text), `leak_share`, `exact_copy_share`.

Direction: higher is more diverse for distinct-n, compression ratio and Vendi; lower is more
diverse for self-BLEU and mean pairwise cosine. Higher is closer to real for MAUVE; lower is
closer for the Fréchet distance; a C2ST AUC of 0.5 means a classifier cannot tell the two
apart (1.0: trivially separable).

Every metric is a dict with `value`, `low`, `high` (a `confidence` interval), `n` (texts it
was computed on; `n_real` / `n_train` where a second sample is involved), `n_boot` and `ci`,
which says how the interval was obtained:

- "percentile bootstrap": resample the texts with replacement, recompute, take percentiles.
  Expensive fits (k-means of MAUVE, the C2ST and consistency classifiers) are done once and
  the bootstrap resamples their per-text outputs, so those intervals cover the sampling of
  the texts, not the refitting.
- "half-sample, re-centred": a with-replacement resample repeats texts, and metrics that
  count repeats (distinct-n, compression ratio, Vendi score) or estimate a distribution
  (MAUVE histograms, Fréchet covariances) are biased by that far beyond their noise (on 400
  CEDR sentences the bootstrap interval of the Fréchet distance did not contain the
  estimate). Half-samples drawn without replacement have, for smooth functions of means,
  the spread of the full-sample estimate (McCarthy 1969); their percentiles, shifted so
  their median sits on the estimate, give the interval.

A value that cannot be computed (too few texts, one class) is `None` with a `reason`.

This module puts the families together; the metrics themselves live in `diversity`, `fidelity`
and `consistency`, intervals in `bootstrap`, the JSON in `files`. The names they define are
re-exported here for callers that import them from `synthmix.quality.measure`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from synthmix.data.labeled import LABEL, LabeledData, sample_per_class
from synthmix.embeddings.encoder import Encoder, build_encoder
from synthmix.quality.bootstrap import HALF_SAMPLE, Bootstrap, Measured, undefined
from synthmix.quality.config import (
    CONSISTENCY,
    DIVERSITY,
    FIDELITY,
    NOVELTY,
    QualityConfig,
)
from synthmix.quality.consistency import (
    Runs,
    consistency_runs,
    macro_f1,
    nn_similarity,
    normalised,
)
from synthmix.quality.diversity import (
    NgramIndex,
    compression_ratio,
    self_bleu_per_text,
    tokens,
    vendi_score,
    weighted_mean_pairwise_cosine,
)
from synthmix.quality.fidelity import (
    auc,
    c2st_scores,
    frechet_from_samples,
    histogram,
    mauve_from_histograms,
    quantise,
)


@dataclass(frozen=True)
class Side:
    """One sample (synthetic or real) with its embeddings and labels."""

    data: LabeledData
    vectors: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.data.frame[LABEL].to_numpy()

    def of_class(self, label: str) -> Side:
        keep = np.flatnonzero(self.labels == label)
        return Side(self.data.subset(keep), self.vectors[keep])


def _sample(data: LabeledData, size: int, seed: int) -> LabeledData:
    """At most `size` rows, each class in proportion (at least one row per class)."""
    if len(data) <= size:
        return data
    counts = {
        label: max(1, round(size * n / len(data))) for label, n in data.class_counts().items()
    }
    return sample_per_class(data, counts, seed)


def embed_all(encoder: Encoder, groups: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Embed the union of several text lists once, whatever encoder (cached or not)."""
    unique = list(dict.fromkeys(t for group in groups for t in group))
    vectors = encoder.encode(unique) if unique else np.zeros((0, 1), dtype=np.float32)
    row = {t: i for i, t in enumerate(unique)}
    return [vectors[[row[t] for t in group]] for group in groups]


class _Measurer:
    """Computes the selected metrics for one (synthetic, real) pair of samples."""

    def __init__(self, config: QualityConfig, bootstrap: Bootstrap, selected: list[str]) -> None:
        self.config = config
        self.boot = bootstrap
        self.selected = selected

    def run(self, synth: Side, real: Side, per_text: PerText, per_class: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        wanted = set(self.selected)
        if wanted & set(DIVERSITY):
            out.update(self.diversity(synth, per_text.self_bleu))
        if wanted & set(FIDELITY):
            out.update(self.fidelity(synth, real, per_class))
        if wanted & set(CONSISTENCY):
            out.update(self.consistency(per_text.consistency, per_class))
        if wanted & set(NOVELTY):
            out.update(self.novelty(per_text.similarity, per_text.copies))
        ordered = [m for m in self.selected if m in out]
        return {m: out[m] for m in ordered}

    def diversity(self, side: Side, self_bleu: np.ndarray) -> dict[str, Any]:
        texts = side.data.texts
        n = len(texts)
        if n < 2:
            return {m: undefined("fewer than 2 texts", n).to_dict() for m in DIVERSITY}
        words = [tokens(t) for t in texts]
        out: dict[str, Any] = {}
        for order in (1, 2, 3):
            index = NgramIndex.build(words, order)
            out[f"distinct_{order}"] = self.boot.measure(index.distinct, [n], HALF_SAMPLE, (0, 1))
        out["self_bleu"] = self._self_bleu(self_bleu)
        out["compression_ratio"] = self.boot.measure(
            lambda i: compression_ratio([texts[j] for j in i]), [n], HALF_SAMPLE
        )
        vectors = side.vectors.astype(np.float64)
        out["mean_pairwise_cosine"] = self.boot.measure(
            lambda i: weighted_mean_pairwise_cosine(vectors, np.bincount(i, minlength=n)), [n]
        )
        out["vendi_score"] = self.boot.measure(
            lambda i: vendi_score(vectors[i]), [n], HALF_SAMPLE, (1, n)
        )
        return {k: v.to_dict() for k, v in out.items()}

    def _self_bleu(self, per_text: np.ndarray) -> Measured:
        scores = per_text[np.isfinite(per_text)]
        if len(scores) == 0:
            return undefined("no class has 2 texts")
        return self.boot.measure(lambda i: float(scores[i].mean()), [len(scores)])

    def fidelity(self, synth: Side, real: Side, per_class: bool) -> dict[str, Any]:
        n_s, n_r = len(synth.vectors), len(real.vectors)
        minimum = self.config.min_class_size if per_class else 2
        if min(n_s, n_r) < max(minimum, 5):
            why = f"needs {max(minimum, 5)} texts on each side (synthetic {n_s}, real {n_r})"
            return {m: undefined(why, n_s, n_real=n_r).to_dict() for m in FIDELITY}
        wanted = set(self.selected)
        out: dict[str, Any] = {}
        if "mauve" in wanted:
            out["mauve"] = self._mauve(synth.vectors, real.vectors).to_dict()
        if "frechet_distance" in wanted:
            s, r = synth.vectors.astype(np.float64), real.vectors.astype(np.float64)
            out["frechet_distance"] = self.boot.measure(
                lambda i, j: frechet_from_samples(s[i], r[j]),
                [n_s, n_r],
                HALF_SAMPLE,
                (0, np.inf),
                n_real=n_r,
            ).to_dict()
        if "c2st_auc" in wanted:
            scores = c2st_scores(real.vectors, synth.vectors, self.config.seed)
            real_scores, synth_scores = scores[:n_r], scores[n_r:]
            out["c2st_auc"] = self.boot.measure(
                lambda i, j: auc(real_scores[j], synth_scores[i]), [n_s, n_r], n_real=n_r
            ).to_dict()
        return out

    def _mauve(self, synth: np.ndarray, real: np.ndarray) -> Measured:
        cfg = self.config
        real_codes, synth_codes, k = quantise(real, synth, cfg.max_clusters, cfg.seed)

        def statistic(i: np.ndarray, j: np.ndarray) -> float:
            p, q = histogram(real_codes[j], k), histogram(synth_codes[i], k)
            return mauve_from_histograms(p, q, cfg.mauve_scaling)

        sizes = [len(synth), len(real)]
        return self.boot.measure(
            statistic, sizes, HALF_SAMPLE, (0, 1), n_real=len(real), clusters=k
        )

    def consistency(self, results: Runs, per_class: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for direction, result in results.items():
            out.update(self._direction(direction, result, per_class))
        return out

    def _direction(
        self, direction: str, result: tuple[np.ndarray, np.ndarray] | str, per_class: bool
    ) -> dict[str, Any]:
        names = [f"{direction}_accuracy"] + ([] if per_class else [f"{direction}_f1_macro"])
        if isinstance(result, str) or len(result[0]) == 0:
            reason = result if isinstance(result, str) else "no test texts"
            return {name: undefined(reason).to_dict() for name in names}
        true, predicted = result
        correct = (true == predicted).astype(float)
        n = len(true)
        out = {names[0]: self.boot.measure(lambda i: float(correct[i].mean()), [n]).to_dict()}
        if not per_class:
            k = int(max(true.max(), predicted.max())) + 1
            out[names[1]] = self.boot.measure(
                lambda i: macro_f1(true[i], predicted[i], k), [n]
            ).to_dict()
        return out

    def novelty(self, similarity: np.ndarray, exact_copy: np.ndarray) -> dict[str, Any]:
        n = len(similarity)
        if n == 0:
            return {m: undefined("no synthetic texts").to_dict() for m in NOVELTY}
        stats: dict[str, Callable[[np.ndarray], float]] = {
            "mean": np.mean,
            "p50": lambda v: float(np.percentile(v, 50)),
            "p90": lambda v: float(np.percentile(v, 90)),
            "p99": lambda v: float(np.percentile(v, 99)),
        }
        distribution = {
            name: self.boot.measure(lambda i, f=f: float(f(similarity[i])), [n]).to_dict()
            for name, f in stats.items()
        }
        leaked = (similarity >= self.config.leak_threshold).astype(float)
        copies = exact_copy.astype(float)
        return {
            "nn_real_similarity": distribution,
            "leak_share": {
                **self.boot.measure(lambda i: float(leaked[i].mean()), [n]).to_dict(),
                "threshold": self.config.leak_threshold,
            },
            "exact_copy_share": self.boot.measure(lambda i: float(copies[i].mean()), [n]).to_dict(),
        }


@dataclass(frozen=True)
class PerText:
    """Per-text results computed once and sliced per class: similarity, copy flag and
    self-BLEU per synthetic text; (true, predicted) class codes per consistency direction
    (or why it could not run)."""

    similarity: np.ndarray
    copies: np.ndarray
    self_bleu: np.ndarray
    consistency: Runs

    def of_class(self, synth_mask: np.ndarray, real_mask: np.ndarray) -> PerText:
        masks = {"real_to_synth": synth_mask, "synth_to_real": real_mask}
        runs: Runs = {
            direction: result
            if isinstance(result, str)
            else (result[0][masks[direction]], result[1][masks[direction]])
            for direction, result in self.consistency.items()
        }
        return PerText(
            self.similarity[synth_mask], self.copies[synth_mask], self.self_bleu[synth_mask], runs
        )


def measure_quality(
    synthetic: LabeledData,
    real: LabeledData,
    config: QualityConfig | None = None,
    encoder: Encoder | None = None,
) -> dict[str, Any]:
    """Quality metrics of `synthetic` against `real`: `overall` and `per_class` sections
    (see the module docstring for the metrics and how their intervals are computed)."""
    config = config or QualityConfig()
    selected = config.selected()
    encoder = encoder or build_encoder()
    synth_sample = _sample(synthetic, config.sample_size, config.seed)
    real_sample = _sample(real, config.sample_size, config.seed + 1)
    reference = real if config.novelty_against_all_real else real_sample
    synth_vectors, real_vectors, reference_vectors = embed_all(
        encoder, [synth_sample.texts, real_sample.texts, reference.texts]
    )
    synth = Side(synth_sample, synth_vectors)
    real_side = Side(real_sample, real_vectors)
    per_text = _per_text(
        synth_sample, real_sample, reference, reference_vectors, synth_vectors, config, selected
    )
    measurer = _Measurer(config, Bootstrap(config.n_boot, config.confidence, config.seed), selected)
    result: dict[str, Any] = {
        "synthetic": {
            "source": synthetic.source,
            "rows": len(synthetic),
            "sample": len(synth_sample),
        },
        "real": {"source": real.source, "rows": len(real), "sample": len(real_sample)},
        "encoder": getattr(encoder, "name", type(encoder).__name__),
        "config": asdict(config),
        "overall": measurer.run(synth, real_side, per_text, per_class=False),
        "per_class": {},
    }
    if config.per_class:
        for label in synth_sample.classes:
            synth_mask, real_mask = synth.labels == label, real_side.labels == label
            result["per_class"][label] = measurer.run(
                synth.of_class(label),
                real_side.of_class(label),
                per_text.of_class(synth_mask, real_mask),
                per_class=True,
            )
    return result


def _per_text(
    synth: LabeledData,
    real: LabeledData,
    reference: LabeledData,
    reference_vectors: np.ndarray,
    synth_vectors: np.ndarray,
    config: QualityConfig,
    selected: list[str],
) -> PerText:
    wanted = set(selected)
    known = {normalised(t) for t in reference.texts}
    runs: Runs = {}
    if wanted & set(CONSISTENCY):
        classes = sorted(set(synth.classes) | set(real.classes))
        runs = consistency_runs(synth, real, config.seed, classes)
    bleu = np.full(len(synth), np.nan)
    if "self_bleu" in wanted:
        bleu = self_bleu_per_text(synth, config.self_bleu_sample, config.seed)
    return PerText(
        similarity=nn_similarity(synth_vectors, reference_vectors),
        copies=np.array([normalised(t) in known for t in synth.texts], dtype=bool),
        self_bleu=bleu,
        consistency=runs,
    )


__all__ = ["Side", "embed_all", "measure_quality"]
