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
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import linalg

from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LABEL, LabeledData, sample_per_class
from synthmix.embeddings.encoder import Encoder, build_encoder

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
PERCENTILE = "percentile bootstrap"
HALF_SAMPLE = "half-sample, re-centred"
_WORD = re.compile(r"\w+")


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


# --- one measured value ------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    value: float | None
    low: float | None
    high: float | None
    n: int
    n_boot: int
    ci: str
    sizes: dict[str, int] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        sizes = out.pop("sizes")
        if out["reason"] is None:
            del out["reason"]
        return {**out, **sizes}


def undefined(reason: str, n: int = 0, **sizes: int) -> Measured:
    return Measured(None, None, None, n, 0, "none", dict(sizes), reason)


Statistic = Callable[..., float]


@dataclass(frozen=True)
class Bootstrap:
    """Draws index samples and turns a statistic's draws into an interval."""

    n_boot: int
    confidence: float
    seed: int

    def measure(
        self,
        statistic: Statistic,
        sizes: Sequence[int],
        how: str = PERCENTILE,
        bounds: tuple[float, float] = (-np.inf, np.inf),
        **extra: int,
    ) -> Measured:
        """`statistic(*index_arrays)` gets one index array per sample (sizes[i] long for
        the point estimate). `bounds`: the metric's range, which a re-centred interval could
        otherwise leave (MAUVE above 1)."""
        point = float(statistic(*(np.arange(n) for n in sizes)))
        draws = self._draws(statistic, sizes, how)
        low, high = self._interval(point, draws, how)
        if low is not None and high is not None:
            low, high = float(np.clip(low, *bounds)), float(np.clip(high, *bounds))
        n = int(sizes[0])
        return Measured(_clean(point), low, high, n, self.n_boot, how, dict(extra))

    def _draws(self, statistic: Statistic, sizes: Sequence[int], how: str) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        draws = np.full(self.n_boot, np.nan)
        for b in range(self.n_boot):
            if how == HALF_SAMPLE:
                index = [np.sort(rng.choice(n, size=max(1, n // 2), replace=False)) for n in sizes]
            else:
                index = [rng.integers(0, n, size=n) for n in sizes]
            draws[b] = statistic(*index)
        return draws

    def _interval(self, point: float, draws: np.ndarray, how: str) -> tuple[float | None, ...]:
        finite = draws[np.isfinite(draws)]
        if len(finite) < 2 or not np.isfinite(point):
            return None, None
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.percentile(finite, [tail, 100 - tail])
        if how == HALF_SAMPLE:
            shift = point - float(np.median(finite))
            low, high = low + shift, high + shift
        return float(low), float(high)


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# --- diversity ---------------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class NgramIndex:
    """All n-grams of a corpus as integer ids, text by text, so distinct-n of any subset of
    texts is a vectorised count."""

    ids: np.ndarray
    lengths: np.ndarray
    vocabulary: int

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]], n: int) -> NgramIndex:
        codes: dict[tuple[str, ...], int] = {}
        ids: list[int] = []
        lengths = []
        for words in token_lists:
            grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            ids.extend(codes.setdefault(g, len(codes)) for g in grams)
            lengths.append(len(grams))
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(lengths), len(codes))

    def distinct(self, texts: np.ndarray) -> float:
        counts = np.bincount(texts, minlength=len(self.lengths))
        per_gram = np.repeat(counts, self.lengths)
        total = float(per_gram.sum())
        if total == 0:
            return float("nan")
        seen = np.zeros(self.vocabulary, dtype=bool)
        seen[self.ids[per_gram > 0]] = True
        return float(seen.sum()) / total


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over lowercased word tokens; n-grams do not cross texts.
    NaN when no text has n words."""
    index = NgramIndex.build([tokens(t) for t in texts], n)
    return index.distinct(np.arange(len(texts)))


def compression_ratio(texts: Sequence[str]) -> float:
    """gzip-compressed size / raw UTF-8 size of the texts joined by newlines.

    Higher = less compressible = less repetitive (more diverse); repeated phrasing drives it
    down. Note Shaib et al. (2024) report the inverse (raw / compressed). gzip only sees
    repeats within its 32 KB window (about 150 Russian sentences), so on large samples
    per-class values are the more sensitive ones.
    """
    raw = "\n".join(texts).encode("utf-8")
    if not raw:
        return float("nan")
    return len(gzip.compress(raw, compresslevel=9, mtime=0)) / len(raw)


def weighted_mean_pairwise_cosine(vectors: np.ndarray, weights: np.ndarray) -> float:
    """Mean cosine over pairs of distinct texts, each text counted `weights[i]` times; the
    weights let the bootstrap repeat a text without pairing it with itself."""
    weights = weights.astype(float)
    total = weights @ vectors
    self_terms = float((weights**2) @ np.einsum("ij,ij->i", vectors, vectors))
    pairs = weights.sum() ** 2 - float((weights**2).sum())
    if pairs <= 0:
        return float("nan")
    return (float(total @ total) - self_terms) / pairs


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    return weighted_mean_pairwise_cosine(vectors, np.ones(len(vectors)))


def vendi_score(vectors: np.ndarray) -> float:
    """exp(Shannon entropy of the eigenvalues of K/n), K the cosine-similarity matrix
    (Friedman & Dieng 2023): the effective number of distinct texts, 1 for identical texts
    and n for mutually orthogonal ones.

    K = X Xᵀ for unit rows shares its non-zero eigenvalues with Xᵀ X, so the smaller of the
    two Gram matrices is decomposed.
    """
    n = len(vectors)
    if n == 0:
        return float("nan")
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    gram = x @ x.T if n <= x.shape[1] else x.T @ x
    eigenvalues = np.clip(np.linalg.eigvalsh(gram / n), 0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def self_bleu_scores(texts: Sequence[str]) -> np.ndarray:
    """Sentence BLEU (sacrebleu, 0-100, effective order) of each text with all the others as
    references; high = texts repeat each other's phrasing."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    texts = list(texts)
    if len(texts) < 2:
        return np.array([])
    return np.array(
        [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    )


# --- fidelity ----------------------------------------------------------------------------


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) between two Gaussians (the FID formula)."""
    root = linalg.sqrtm(np.asarray(cov1) @ np.asarray(cov2))
    root = np.real(root)  # rounding leaves tiny imaginary parts on singular covariances
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def _covariance_factor(x: np.ndarray) -> np.ndarray:
    """A with AᵀA = Σ (the sample covariance), with at most min(n, d) rows."""
    centred = x - x.mean(axis=0)
    n, d = x.shape
    if n <= d:
        return centred / np.sqrt(n - 1)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / (n - 1))
    return (vectors * np.sqrt(np.clip(eigenvalues, 0, None))).T


def frechet_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two samples (rows = observations).

    Equals `frechet_distance` on their means and covariances, but gets tr(Σ₁Σ₂)^½ as the
    nuclear norm of A₁A₂ᵀ (Σᵢ = AᵢᵀAᵢ): with fewer texts than dimensions that is a small
    symmetric eigenproblem instead of a d×d matrix square root, fast enough to bootstrap.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    a, b = _covariance_factor(x), _covariance_factor(y)
    cross = a @ b.T
    small = cross @ cross.T if len(a) <= len(b) else cross.T @ cross
    trace_root = float(np.sqrt(np.clip(np.linalg.eigvalsh(small), 0, None)).sum())
    diff = x.mean(axis=0) - y.mean(axis=0)
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * trace_root)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def mauve_from_histograms(p: np.ndarray, q: np.ndarray, scaling: float = 5.0) -> float:
    """Area under the divergence frontier of p (real) and q (synthetic) (Pillutla et al.
    2021): for mixtures R = λp + (1−λ)q the points (exp(−c·KL(q‖R)), exp(−c·KL(p‖R))),
    closed by (0, 1) and (1, 0); 1 when p = q, towards 0 as they separate."""
    points = [(0.0, 1.0)]
    for weight in np.linspace(1e-6, 1 - 1e-6, 25):
        mixture = weight * p + (1 - weight) * q
        points.append((np.exp(-scaling * _kl(q, mixture)), np.exp(-scaling * _kl(p, mixture))))
    points.append((1.0, 0.0))
    x, y = np.asarray(points).T
    # The reference implementation averages the area taken along either axis. Ties (p = q
    # puts every mixture at (1, 1)) are ordered along the frontier, which falls as it goes
    # right, so the endpoints (1, 0) and (0, 1) do not cut the corner.
    by_x, by_y = np.lexsort((-y, x)), np.lexsort((-x, y))
    return 0.5 * (_trapezoid(y[by_x], x[by_x]) + _trapezoid(x[by_y], y[by_y]))


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    # np.trapz was renamed in NumPy 2; the rule itself is one line.
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def quantise(
    real: np.ndarray, synthetic: np.ndarray, max_clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Joint k-means codes of both samples after PCA to at most 32 dimensions; k is a tenth
    of the smaller sample (at least 2, at most `max_clusters`), as in MAUVE."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    joint = np.vstack([real, synthetic]).astype(np.float64)
    joint /= np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-12)
    dims = min(32, joint.shape[1], len(joint) - 1)
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(joint)
    k = int(min(max_clusters, max(2, round(min(len(real), len(synthetic)) / 10))))
    codes = KMeans(n_clusters=k, n_init=5, max_iter=500, random_state=seed).fit_predict(reduced)
    return codes[: len(real)], codes[len(real) :], k


def histogram(codes: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(codes, minlength=k) / max(len(codes), 1)


def mauve(
    real: np.ndarray,
    synthetic: np.ndarray,
    scaling: float = 5.0,
    max_clusters: int = 200,
    seed: int = 0,
) -> float:
    real_codes, synth_codes, k = quantise(real, synthetic, max_clusters, seed)
    return mauve_from_histograms(histogram(real_codes, k), histogram(synth_codes, k), scaling)


def c2st_scores(real: np.ndarray, synthetic: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold P(synthetic) from 5-fold cross-validated logistic regression on the
    embeddings, real rows first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([real, synthetic])
    y = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=1000)
    return np.asarray(cross_val_predict(model, x, y, cv=folds, method="predict_proba"))[:, 1]


def auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC = P(score of a positive > score of a negative), ties counting half."""
    from scipy.stats import rankdata

    if len(negative) == 0 or len(positive) == 0:
        return float("nan")
    ranks = rankdata(np.r_[negative, positive])
    positive_ranks = ranks[len(negative) :].sum()
    n_pos = len(positive)
    return float((positive_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative)))


# --- label consistency -------------------------------------------------------------------


def _codes(values: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[v] for v in values], dtype=np.int64)


def macro_f1(true: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Macro F1 over the classes present in `true` (classes only ever predicted count
    against precision of nobody, as in scikit-learn with labels=true classes)."""
    confusion = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    denominator = support + predicted_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    present = support > 0
    return float(f1[present].mean()) if present.any() else float("nan")


def cross_predict(
    train: LabeledData, test: LabeledData, seed: int
) -> tuple[np.ndarray | None, str | None]:
    """Predictions of a TF-IDF + LR classifier trained on `train` for `test`'s texts."""
    from synthmix.classifiers.tfidf import TfidfLogReg

    if len(train.classes) < 2:
        return None, f"{train.source}: one class only, no classifier can be trained"
    model = TfidfLogReg(random_state=seed).fit(train.texts, train.labels)
    return np.asarray(model.predict(test.texts), dtype=object), None


# --- putting it together -----------------------------------------------------------------


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


def _normalised(text: str) -> str:
    return " ".join(tokens(text))


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


def self_bleu_per_text(data: LabeledData, per_class: int, seed: int) -> np.ndarray:
    """Self-BLEU of up to `per_class` sampled texts of each class, each scored against the
    other sampled texts of its own class (repeats that matter come from one prompt, one
    label); NaN for texts not sampled."""
    scores = np.full(len(data), np.nan)
    labels = data.frame[LABEL].to_numpy()
    rng = np.random.default_rng(seed)
    texts = data.texts
    for label in data.classes:
        pool = np.flatnonzero(labels == label)
        chosen = np.sort(rng.choice(pool, size=min(per_class, len(pool)), replace=False))
        if len(chosen) >= 2:
            scores[chosen] = self_bleu_scores([texts[i] for i in chosen])
    return scores


Runs = dict[str, tuple[np.ndarray, np.ndarray] | str]


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


def _nn_similarity(synthetic: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each synthetic row's max cosine to any reference row (rows are unit vectors)."""
    if len(reference) == 0:
        return np.full(len(synthetic), np.nan)
    best = np.full(len(synthetic), -np.inf)
    for start in range(0, len(reference), 4096):
        block = synthetic @ reference[start : start + 4096].T
        best = np.maximum(best, block.max(axis=1))
    return best


def _consistency_runs(synth: LabeledData, real: LabeledData, seed: int, classes: list[str]) -> Runs:
    runs: Runs = {}
    for direction, train, test in (("real_to_synth", real, synth), ("synth_to_real", synth, real)):
        predicted, problem = cross_predict(train, test, seed)
        if predicted is None:
            runs[direction] = problem or "no classifier"
            continue
        runs[direction] = (_codes(test.labels, classes), _codes(list(predicted), classes))
    return runs


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
    known = {_normalised(t) for t in reference.texts}
    runs: Runs = {}
    if wanted & set(CONSISTENCY):
        classes = sorted(set(synth.classes) | set(real.classes))
        runs = _consistency_runs(synth, real, config.seed, classes)
    bleu = np.full(len(synth), np.nan)
    if "self_bleu" in wanted:
        bleu = self_bleu_per_text(synth, config.self_bleu_sample, config.seed)
    return PerText(
        similarity=_nn_similarity(synth_vectors, reference_vectors),
        copies=np.array([_normalised(t) in known for t in synth.texts], dtype=bool),
        self_bleu=bleu,
        consistency=runs,
    )


def write_quality(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Write the metrics as UTF-8 JSON (class names stay readable); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def read_quality(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def flat_values(section: Mapping[str, Any]) -> dict[str, float]:
    """Point values of one section (`overall` or a class), nested distributions flattened as
    `nn_real_similarity.p90`; undefined metrics are left out."""
    return {name: float(entry["value"]) for name, entry in _defined_entries(section)}


def _defined_entries(section: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, entry in section.items():
        if not isinstance(entry, Mapping):
            continue
        if "value" in entry:
            if entry["value"] is not None:
                yield name, entry
            continue
        for part, sub in entry.items():
            if isinstance(sub, Mapping) and sub.get("value") is not None:
                yield f"{name}.{part}", sub


def summary_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The overall metrics with their intervals, one aligned line each (for a terminal);
    metrics undefined for this data are listed with the reason."""
    overall = metrics["overall"]
    width = max((len(name) for name in overall), default=0) + 6
    lines = [f"{'metric':<{width}} {'value':>9}  {metrics['config']['confidence']:.0%} interval"]
    for name, entry in _defined_entries(overall):
        low, high = entry.get("low"), entry.get("high")
        interval = "" if low is None or high is None else f"  [{low:.3f}, {high:.3f}]"
        lines.append(f"{name:<{width}} {entry['value']:9.3f}{interval}")
    for name, entry in overall.items():
        if isinstance(entry, Mapping) and entry.get("value", 0) is None:
            lines.append(f"{name:<{width}} {'-':>9}  {entry.get('reason', 'undefined')}")
    return lines
