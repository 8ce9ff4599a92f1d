"""Fine-tuned transformers (full or LoRA) with a multi-label head: one logit per label,
sigmoid outputs, binary cross-entropy (`problem_type="multi_label_classification"`), and the
label thresholds of `classifiers.multilabel`.

Thresholds are tuned (`multilabel.tune_thresholds`: each label's F1-best) on the validation
rows held out of the training data, with the probabilities of the model that is kept: rows it
never trained on, so the thresholds are not the over-sure ones of in-sample probabilities,
and no test row is seen. Cross-validated probabilities, as `tfidf_ovr` uses, would cost a
fine-tuning per fold. The epoch kept is the one of lowest validation loss. The validation
rows are drawn by iterative stratification (iterstrat) over groups (`fit(..., groups=...)`:
an EDA variant stays on its real text's side), and a label left with no training row gets
its validation rows back. `validation_fraction=0` keeps every threshold at 0.5. The
per-text `relative_cut` of `classifiers.multilabel` is tuned on the same rows ("tune"; 0
without validation rows).

`imbalance="class_weight"` weights each label's positives and negatives as scikit-learn's
"balanced" does for that label alone, n / (2 * n_side), as `tfidf_ovr`'s per-label logistic
regressions do; "none" is plain BCE; "oversample" is for single-label data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from sklearn.metrics import precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

from synthmix.classifiers.multilabel import (
    apply_thresholds,
    check_relative_cut,
    resolve_relative_cut,
    tune_thresholds,
)
from synthmix.classifiers.transformer import DEFAULT_MODEL, TransformerClassifier, _Split
from synthmix.core.errors import ConfigError


def multilabel_validation_split(
    targets: np.ndarray, fraction: float, seed: int, groups: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices: whole groups (default: each row its own) stratified
    on the union of their labels; every label with a row keeps one in training."""
    rows = len(targets)
    if fraction <= 0:
        return np.arange(rows), np.array([], dtype=int)
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    group_ids = (
        np.arange(rows)
        if groups is None
        else np.unique(np.asarray(list(groups), dtype=object), return_inverse=True)[1].ravel()
    )
    n_groups = int(group_ids.max()) + 1 if rows else 0
    if n_groups < 2:
        return np.arange(rows), np.array([], dtype=int)
    per_group = np.zeros((n_groups, targets.shape[1]))
    np.maximum.at(per_group, group_ids, targets)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, valid_groups = next(splitter.split(np.zeros(n_groups), per_group))
    in_valid = np.isin(group_ids, valid_groups)
    # A model cannot learn a label it never sees: a label whose rows all went to
    # validation gets them back.
    orphan = (targets[~in_valid].sum(axis=0) == 0) & (targets[in_valid].sum(axis=0) > 0)
    if orphan.any():
        back = np.unique(group_ids[in_valid & (targets[:, orphan].sum(axis=1) > 0)])
        in_valid &= ~np.isin(group_ids, back)
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)


def balanced_label_weights(targets: np.ndarray) -> np.ndarray:
    """(2, labels): the BCE weight of a negative and of a positive per label,
    n / (2 * n_side); a side with no row gets 0."""
    rows = len(targets)
    positives = targets.sum(axis=0).astype(np.float64)
    counts = np.vstack([rows - positives, positives])
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = rows / (2 * counts[present])
    return weights


def label_metrics(targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Trainer's per-epoch metrics of a multi-label head: per-label precision/recall/F1/
    support at thresholds tuned on these rows (the F1 each label can reach, which is what
    early stopping should compare: thresholds are tuned afterwards), F1-macro over the labels
    present and subset accuracy."""
    gold = (targets > 0.5).astype(int)
    thresholds = tune_thresholds(gold, scores)
    predicted = (scores >= thresholds[None, :]).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, average=None, zero_division=0
    )
    present = support > 0
    metrics = {
        "f1_macro": float(np.mean(f1[present])) if present.any() else 0.0,
        "accuracy": float(np.mean((gold == predicted).all(axis=1))) if len(gold) else 0.0,
    }
    for cid in range(gold.shape[1]):
        metrics[f"c{cid}_precision"] = float(precision[cid])
        metrics[f"c{cid}_recall"] = float(recall[cid])
        metrics[f"c{cid}_f1"] = float(f1[cid])
        metrics[f"c{cid}_support"] = float(support[cid])
    return metrics


class MultiLabelTransformerClassifier(TransformerClassifier):
    """TransformerClassifier with a multi-label head (see the module docstring).

    `fit(texts, label_sets, groups=None)` takes one label list per text (empty: no label);
    `predict` returns one sorted tuple of labels per text, `predict_indicator` the 0/1 matrix
    in `classes_` order, `predict_proba` the per-label sigmoid probabilities. With
    `at_least_one`, a text passing no threshold gets the label closest to passing.
    Learned, besides the transformer's: `thresholds_`, `relative_cut_`, `validation_rows_`
    (the training rows the thresholds were tuned on, never trained on)."""

    multi_label = True
    # Validation loss, not F1: with thresholds tuned per epoch, F1 reaches its best as soon
    # as the labels rank apart, long before the probabilities settle (on toy data it kept
    # an early epoch whose thresholds failed on new texts).
    selection = ("loss", False)

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        lr: float | None = None,
        epochs: int = 5,
        batch_size: int = 8,
        warmup_steps: int = 100,
        weight_decay: float = 0.01,
        max_length: int = 128,
        early_stopping_patience: int = 2,
        validation_fraction: float = 0.1,
        imbalance: str = "class_weight",
        lora: dict[str, Any] | None = None,
        output_dir: str | None = None,
        device: str | None = None,
        at_least_one: bool = True,
        relative_cut: float | str = "tune",
        random_state: int = 0,
    ) -> None:
        super().__init__(
            model=model,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            warmup_steps=warmup_steps,
            weight_decay=weight_decay,
            max_length=max_length,
            early_stopping_patience=early_stopping_patience,
            validation_fraction=validation_fraction,
            imbalance=imbalance,
            lora=lora,
            output_dir=output_dir,
            device=device,
            random_state=random_state,
        )
        self.at_least_one = at_least_one
        self.relative_cut = relative_cut

    def fit(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        groups: Sequence[str] | None = None,
    ) -> Self:
        self._check_params()
        check_relative_cut(self.relative_cut)
        if self.imbalance == "oversample":
            raise ConfigError(
                "imbalance 'oversample' is for single-label data; a multi-label head takes "
                "'class_weight' (per-label balanced BCE) or 'none'"
            )
        texts_list = list(texts)
        self.binarizer_ = MultiLabelBinarizer()
        targets = self.binarizer_.fit_transform([tuple(labels) for labels in label_sets])
        targets = np.asarray(targets, dtype=np.float32)
        self.classes_ = np.asarray(self.binarizer_.classes_)
        if len(self.classes_) < 2:
            raise ConfigError("a multi-label classifier needs at least two labels in training")
        train, valid = multilabel_validation_split(
            targets, self.validation_fraction, self.random_state, groups
        )
        self.validation_rows_ = valid
        self._train(
            _Split(
                train_texts=[texts_list[i] for i in train],
                train_ids=targets[train],
                valid_texts=[texts_list[i] for i in valid],
                valid_ids=targets[valid],
            )
        )
        if len(valid):
            gold = targets[valid].astype(int)
            scores = self.predict_proba([texts_list[i] for i in valid])
            self.thresholds_ = tune_thresholds(gold, scores)
            self.relative_cut_ = resolve_relative_cut(
                self.relative_cut, gold, scores, self.thresholds_, self.at_least_one
            )
        else:
            self.thresholds_ = np.full(len(self.classes_), 0.5)
            self.relative_cut_ = 0.0 if self.relative_cut == "tune" else float(self.relative_cut)
        return self

    def _head_options(self) -> dict[str, Any]:
        return {"problem_type": "multi_label_classification"}

    def _loss_weights(self, split: _Split) -> np.ndarray | None:
        if self.imbalance != "class_weight":
            return None
        return balanced_label_weights(split.train_ids)

    def _metrics(self, label_ids: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        return label_metrics(label_ids, 1 / (1 + np.exp(-logits)))

    def _label_value(self, row: Any) -> Any:
        return [float(v) for v in row]

    def _probabilities(self, logits: Any) -> Any:
        import torch

        return torch.sigmoid(logits)

    def predict_indicator(self, texts: Sequence[str]) -> np.ndarray:
        return apply_thresholds(
            self.predict_proba(texts), self.thresholds_, self.at_least_one, self.relative_cut_
        )

    def predict(self, texts: Sequence[str]) -> list[tuple[str, ...]]:  # type: ignore[override]
        indicator = self.predict_indicator(texts)
        return [tuple(self.classes_[row.astype(bool)].tolist()) for row in indicator]


class MultiLabelLoraClassifier(MultiLabelTransformerClassifier):
    """The multi-label head on LoRA adapters: LoraClassifier's defaults (r=8, alpha=16,
    dropout 0.1 on query/value; lr 1e-4)."""

    adapters = True
