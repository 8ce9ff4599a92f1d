"""Paired comparison of two training setups that share seeds and a test set.

For one seed, a mix and its baseline train on the same real sample and are scored on the same
test texts, so their difference is measured with far less noise than two independent scores
would be. Two sources of chance move that difference, and both are counted:

- the test texts: a paired bootstrap over test texts (Koehn 2004; Dror et al. 2018, "The
  Hitchhiker's Guide to Testing Statistical Significance in NLP") rescores both models on the
  same resampled texts, recomputing F1-macro each time (for multi-label predictions,
  `MultiLabelResampler`: a resampled text brings all its label decisions along). One set of
  resampled texts is shared by every model and seed, because every fit of a run predicts the
  same test set; the part of that variance common to all seeds (the covariance of their
  resampled differences) is what seeds alone cannot reveal;
- the seeds (real sample, synthetic sample, classifier initialisation): the spread of the
  per-seed differences, as a paired t over seeds (Bouthillier et al. 2021, "Accounting for
  Variance in Machine Learning Benchmarks").

The standard error of the mean difference adds the two variances, and the test keeps the
seeds' n - 1 degrees of freedom: it is never less strict than the paired t over seeds, which is
what it falls back to without per-text predictions. (A bootstrap over 3 seeds has 10 distinct
resamples and understates their spread; Welch-Satterthwaite degrees of freedom, estimated from
a seed variance that is small by chance, are optimistic in the far tail that Holm uses: on
simulated pure-noise grids of 10 comparisons both exceed the nominal 5% family-wise rate,
the latter at 9%. Keeping n - 1 costs power when the test set's noise dominates.)

Across the comparisons of one report, `correct` controls the family-wise error rate with
Holm's step-down method (statsmodels' `multipletests`); a verdict of "helped" or "hurt" needs
the corrected p-value to be below alpha.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
RESAMPLES = 1000
CORRECTION = "holm"
# More seeds than this are not worth suggesting: the test set's own noise dominates long before.
MAX_SUGGESTED_SEEDS = 50


class Verdict(Enum):
    HELPED = "helped"
    HURT = "hurt"
    NO_EFFECT = "no detectable effect"


class TextResampler:
    """Bootstrap resamples of one test set, as per-text weights (how often each text is
    drawn) shared by every model scored on it: two models are always compared on the same
    resampled texts. Scoring a model is one matrix product, so a report with dozens of cells
    and thousands of test texts resamples in well under a second per cell."""

    def __init__(
        self,
        gold: Sequence[int] | np.ndarray,
        classes: int,
        resamples: int = RESAMPLES,
        seed: int = 0,
    ) -> None:
        self.gold = np.asarray(gold, dtype=np.int64)
        self.classes = classes
        self.weights = bootstrap_weights(len(self.gold), resamples, seed)
        self._eye = np.eye(classes, dtype=np.float32)
        self._support = self.weights @ self._eye[self.gold]

    @property
    def texts(self) -> int:
        return len(self.gold)

    def observed_f1_macro(self, predictions: Sequence[int] | np.ndarray) -> float:
        """F1-macro on the test set itself (every text once), by the same definition."""
        return float(
            _f1_per_class(
                self._eye,
                self.gold,
                np.ones((1, self.texts), np.float32),
                self._eye[self.gold].sum(axis=0, keepdims=True),
                predictions,
            )[0].mean()
        )

    def f1_macro(self, predictions: Sequence[int] | np.ndarray) -> np.ndarray:
        """F1-macro of `predictions` (class indices, one per test text; or one row per fit)
        on every resample (shape: resamples, or fits x resamples), over all `classes` with F1 0
        for a class neither present nor predicted, as scikit-learn's
        `f1_score(labels=classes, zero_division=0)`."""
        return self.f1_per_class(predictions).mean(axis=-1)

    def f1_per_class(self, predictions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Each class's F1 on every resample: shape (resamples, classes), or (fits,
        resamples, classes) for one row of predictions per fit."""
        return _f1_per_class(self._eye, self.gold, self.weights, self._support, predictions)


def bootstrap_weights(texts: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """How often each of `texts` test texts is drawn in each of `resamples` bootstrap
    resamples (resamples x texts, float32): the same seed gives the same resamples whatever
    the task, so single- and multi-label scores of one test set resample alike."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(texts, size=(resamples, texts)) + texts * np.arange(resamples)[:, None]
    counts = np.bincount(picks.ravel(), minlength=resamples * texts)
    return counts.reshape(resamples, texts).astype(np.float32)


class MultiLabelResampler:
    """`TextResampler` for multi-label predictions: the same per-text bootstrap weights, with
    gold and predictions as 0/1 matrices (texts x labels). A resampled text brings all its
    label decisions along, so a label's F1, macro-F1 (mean over labels) and micro-F1 (pooled
    decisions) are recomputed per resample, as scikit-learn's `f1_score(average=...,
    zero_division=0)` would on the resampled texts."""

    def __init__(self, gold: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> None:
        self.gold = np.asarray(gold, dtype=np.float32)
        if self.gold.ndim != 2:
            raise ValueError("multi-label gold must be a texts x labels matrix")
        self.classes = self.gold.shape[1]
        self.weights = bootstrap_weights(self.texts, resamples, seed)
        self._support = self.weights @ self.gold  # (resamples, labels)

    @property
    def texts(self) -> int:
        return int(self.gold.shape[0])

    def counts(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True positives and predicted positives per label on every resample: two arrays
        of shape (fits, resamples, labels), one fit per leading row of `predictions`."""
        predicted = np.asarray(predictions, dtype=np.float32)
        if predicted.shape[-2:] != self.gold.shape:
            raise ValueError(
                f"predictions of shape {predicted.shape[-2:]} for gold of shape {self.gold.shape}"
            )
        fits = predicted.reshape(-1, *self.gold.shape)
        labels = self.classes
        hits = fits * self.gold
        # (texts, fits * 2 labels): every fit on every resample in one matrix product.
        columns = np.concatenate([hits, fits], axis=2).transpose(1, 0, 2).reshape(self.texts, -1)
        both = (self.weights @ columns).reshape(self.weights.shape[0], fits.shape[0], 2 * labels)
        both = both.transpose(1, 0, 2).astype(np.float64)
        return both[..., :labels], both[..., labels:]

    def f1_per_class(self, predictions: np.ndarray) -> np.ndarray:
        """Each label's F1 per resample: (resamples, labels), or (fits, resamples, labels)."""
        true_positives, predicted = self.counts(predictions)
        denominator = self._support[None].astype(np.float64) + predicted
        f1 = np.divide(
            2 * true_positives, denominator, out=np.zeros_like(denominator), where=denominator > 0
        )
        return self._shaped(f1, predictions, keep_labels=True)

    def f1_macro(self, predictions: np.ndarray) -> np.ndarray:
        return self.f1_per_class(predictions).mean(axis=-1)

    def f1_micro(self, predictions: np.ndarray) -> np.ndarray:
        """Micro-F1 (every text-label decision pooled) per resample: (resamples,) or (fits,
        resamples)."""
        true_positives, predicted = self.counts(predictions)
        tp = true_positives.sum(axis=-1)
        denominator = self._support.sum(axis=-1)[None].astype(np.float64) + predicted.sum(axis=-1)
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)
        return self._shaped(f1, predictions, keep_labels=False)

    def _shaped(self, scores: np.ndarray, predictions: np.ndarray, keep_labels: bool) -> np.ndarray:
        lead = np.shape(predictions)[:-2]
        tail = (self.weights.shape[0], self.classes) if keep_labels else (self.weights.shape[0],)
        return scores.reshape((*lead, *tail))


def _f1_per_class(
    eye: np.ndarray,
    gold: np.ndarray,
    weights: np.ndarray,
    support: np.ndarray,
    predictions: Sequence[int] | np.ndarray,
) -> np.ndarray:
    predicted = np.asarray(predictions, dtype=np.int64)
    if predicted.shape[-1:] != gold.shape:
        raise ValueError(f"{predicted.shape[-1]} predictions for {gold.size} test texts")
    fits = predicted.reshape(-1, gold.size)
    classes = eye.shape[0]
    # Per fit, one-hot columns of its hits and of its predictions: (texts, fits * 2 classes),
    # so all fits are scored on all resamples in one matrix product.
    onehot = eye[fits]
    hits = onehot * (fits == gold)[:, :, None]
    columns = np.concatenate([hits, onehot], axis=2).transpose(1, 0, 2).reshape(gold.size, -1)
    counts = (weights @ columns).reshape(weights.shape[0], fits.shape[0], 2 * classes)
    true_positives, predicted_counts = counts[..., :classes], counts[..., classes:]
    denominator = support[:, None, :] + predicted_counts
    f1 = np.divide(
        2 * true_positives, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    scores = f1.transpose(1, 0, 2).astype(np.float64)  # (fits, resamples, classes)
    return scores.reshape((*predicted.shape[:-1], weights.shape[0], classes))


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus baseline F1-macro over the seeds both have."""

    difference: float
    low: float
    high: float
    p_value: float
    p_improvement: float  # P(candidate > baseline) for a random seed and resampled test set
    seeds: int
    texts: int  # test texts resampled; 0 when only seed-level scores were available
    std_error: float
    df: float
    seed_variance: float  # variance of one seed's difference across seeds
    text_variance: float  # test-set variance shared by every seed's difference
    p_adjusted: float = math.nan
    family: int = 1
    alpha: float = ALPHA

    @property
    def text_level(self) -> bool:
        return self.texts > 0

    @property
    def verdict(self) -> Verdict:
        if math.isnan(self.p_adjusted) or self.p_adjusted >= self.alpha:
            return Verdict.NO_EFFECT
        return Verdict.HELPED if self.difference > 0 else Verdict.HURT

    @property
    def detectable(self) -> float:
        """The smallest difference this design finds with 80% power at the strictest step of
        the correction (alpha / family): what "no detectable effect" rules out."""
        return _detectable(self.std_error, self.df, self.alpha / self.family)

    def seeds_for(self, effect: float) -> int | None:
        """Seeds that would make `effect` detectable, at this design's spread; None when more
        seeds cannot get there (the test set's noise alone is too large) or no spread is
        known."""
        if self.seeds < 2 or effect == 0 or math.isnan(self.seed_variance):
            return None
        for seeds in range(self.seeds, MAX_SUGGESTED_SEEDS + 1):
            error = math.sqrt(self.seed_variance / seeds + self.text_variance)
            if _detectable(error, seeds - 1, self.alpha / self.family) <= abs(effect):
                return seeds
        return None

    def format(self) -> str:
        """`+0.012 [+0.004, +0.020]`."""
        if math.isnan(self.low):
            return f"{self.difference:+.3f}"
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def paired_comparison(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    candidate_resampled: np.ndarray | None = None,
    baseline_resampled: np.ndarray | None = None,
    texts: int = 0,
) -> PairedComparison:
    """`candidate` and `baseline`: F1-macro per seed, in the same seed order. The resampled
    arrays (seeds x resamples, from one `TextResampler` of `texts` test texts) add the
    test-set noise; without them this is the paired t-test over seeds (`ttest_rel`)."""
    differences = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    seeds = differences.size
    if seeds == 0:
        raise ValueError("no shared seeds")
    mean = float(differences.mean())
    text_variance = 0.0
    if candidate_resampled is not None and baseline_resampled is not None:
        resampled = np.asarray(candidate_resampled) - np.asarray(baseline_resampled)
        if seeds > 1:
            text_variance = _shared_text_variance(resampled)
        # Ties (same F1 on a resample) count half, as in a probability of outperforming.
        p_improvement = float((resampled > 0).mean() + 0.5 * (resampled == 0).mean())
    else:
        texts = 0
        p_improvement = float((differences > 0).mean() + 0.5 * (differences == 0).mean())
    if seeds < 2:
        # One seed says nothing about seed noise, which usually dominates: no test.
        return PairedComparison(
            mean, math.nan, math.nan, math.nan, p_improvement, seeds, texts, math.nan,
            math.nan, math.nan, text_variance,
        )  # fmt: skip
    seed_variance = float(differences.var(ddof=1))
    error = math.sqrt(seed_variance / seeds + text_variance)
    df = float(seeds - 1)
    if error == 0:
        p_value = 1.0 if mean == 0 else 0.0
        half = 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / error, df))
        half = float(stats.t.ppf(0.975, df)) * error
    return PairedComparison(
        mean, mean - half, mean + half, p_value, p_improvement, seeds, texts, error, df,
        seed_variance, text_variance,
    )  # fmt: skip


def correct(
    comparisons: Sequence[PairedComparison], method: str = CORRECTION, alpha: float = ALPHA
) -> list[PairedComparison]:
    """The comparisons with `p_adjusted` set for the family they form (Holm by default,
    statsmodels' `multipletests`); untestable ones (one seed) keep NaN and do not count."""
    from statsmodels.stats.multitest import multipletests

    testable = [i for i, c in enumerate(comparisons) if not math.isnan(c.p_value)]
    adjusted = dict.fromkeys(range(len(comparisons)), math.nan)
    if testable:
        # statsmodels' Holm branch calls gc.collect(), which scans the whole heap: 0.3 s per
        # family in a process holding scikit-learn and pandas. Frozen objects are skipped.
        gc.freeze()
        try:
            _, corrected, _, _ = multipletests(
                [comparisons[i].p_value for i in testable], alpha=alpha, method=method
            )
        finally:
            gc.unfreeze()
        adjusted.update(zip(testable, (float(p) for p in corrected), strict=True))
    family = max(1, len(testable))
    return [
        replace(c, p_adjusted=adjusted[i], family=family, alpha=alpha)
        for i, c in enumerate(comparisons)
    ]


def _shared_text_variance(resampled: np.ndarray) -> float:
    """The test-set variance that every seed shares: the mean covariance between two seeds'
    resampled differences. What one seed's models get right or wrong on particular texts is
    already in the spread of the per-seed differences; counting it twice would only cost
    power. The shared part (texts that are hard for every seed) is what the seeds' spread
    cannot see, because every seed is scored on the same test set."""
    covariance = np.cov(resampled)
    seeds = covariance.shape[0]
    shared = (covariance.sum() - np.trace(covariance)) / (seeds * (seeds - 1))
    return max(0.0, float(shared))


def _detectable(error: float, df: float, alpha: float) -> float:
    if math.isnan(error) or math.isnan(df):
        return math.nan
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(POWER, df)) * error)
