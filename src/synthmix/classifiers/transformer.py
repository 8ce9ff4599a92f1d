"""Fine-tuned transformer classifiers (full fine-tuning or LoRA) behind the TextClassifier
protocol, trained with `transformers.Trainer`.

Needs the optional packages torch, transformers (and peft for LoRA); they are imported inside
`fit`, so `import synthmix.classifiers` stays light and the sklearn classifiers work without
them. A GPU is used when torch sees one; a BERT-base model on CPU is only practical for a few
hundred texts.

Text pairs (joined strings, `data.pairs`) are fed as the tokenizer's pair encoding,
`[CLS] text [SEP] pair [SEP]` for BERT, with token type ids telling the two apart, truncated
longest-first so a long review cannot push the aspect term out of `max_length`.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import precision_recall_fscore_support

from synthmix.classifiers.base import IMBALANCE_OPTIONS, oversample_indices
from synthmix.core.errors import ConfigError
from synthmix.data.pairs import has_pairs, split_pair

log = logging.getLogger("synthmix")

DEFAULT_MODEL = "DeepPavlov/rubert-base-cased"
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "alpha": 16,
    "dropout": 0.1,
    "target_modules": ["query", "value"],
}
DEVICES = (None, "cpu", "cuda")


def validation_split(
    label_ids: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) row indices. Every class with at least two rows puts
    at least one in validation and keeps at least one for training; a class with a single
    row stays in training, since a model cannot learn a class it never sees."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    if fraction <= 0:
        return np.arange(len(label_ids)), np.array([], dtype=int)
    for label in np.unique(label_ids):
        rows = rng.permutation(np.flatnonzero(label_ids == label))
        take = 0 if len(rows) < 2 else min(len(rows) - 1, max(1, round(fraction * len(rows))))
        valid.append(rows[:take])
        train.append(rows[take:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def balanced_class_weights(label_ids: np.ndarray, n_classes: int) -> np.ndarray:
    """Cross-entropy weight per class id, n / (k * n_c) as scikit-learn's "balanced": every
    class contributes the same total loss. A class absent from `label_ids` gets weight 0."""
    counts = np.bincount(label_ids, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = len(label_ids) / (n_classes * counts[present])
    return weights


def class_metrics(label_ids: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, float]:
    """Flat float metrics for Trainer's log: F1-macro over the classes present in the
    validation set, accuracy, and precision/recall/F1/support per class id (`c{id}_f1`)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        label_ids, predicted, labels=list(range(n_classes)), zero_division=0
    )
    present = np.unique(label_ids)
    metrics = {
        "f1_macro": float(np.mean(f1[present])) if len(present) else 0.0,
        "accuracy": float(np.mean(label_ids == predicted)) if len(label_ids) else 0.0,
    }
    for cid in range(n_classes):
        metrics[f"c{cid}_precision"] = float(precision[cid])
        metrics[f"c{cid}_recall"] = float(recall[cid])
        metrics[f"c{cid}_f1"] = float(f1[cid])
        metrics[f"c{cid}_support"] = float(support[cid])
    return metrics


def history_from_log(
    log_history: list[dict[str, Any]], classes: np.ndarray
) -> list[dict[str, Any]]:
    """One dict per epoch from Trainer's log: train loss, validation loss, F1-macro,
    accuracy and per-class precision/recall/F1/support keyed by class name."""
    train_loss = {round(e["epoch"]): e["loss"] for e in log_history if "loss" in e}
    history = []
    for entry in log_history:
        if "eval_f1_macro" not in entry:
            continue
        epoch = round(entry["epoch"])
        per_class = {
            str(name): {
                metric: entry[f"eval_c{cid}_{metric}"]
                for metric in ("precision", "recall", "f1", "support")
            }
            for cid, name in enumerate(classes)
        }
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss.get(epoch),
                "eval_loss": entry.get("eval_loss"),
                "f1_macro": entry["eval_f1_macro"],
                "accuracy": entry["eval_accuracy"],
                "per_class": per_class,
            }
        )
    if not history:  # no validation split: record training loss only
        history = [{"epoch": e, "train_loss": loss} for e, loss in sorted(train_loss.items())]
    return history


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts of a torch module."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params)


@dataclass(frozen=True)
class _Split:
    """Training and validation rows: class ids (single-label) or a 0/1 float matrix of
    labels (multi-label)."""

    train_texts: list[str]
    train_ids: np.ndarray
    valid_texts: list[str]
    valid_ids: np.ndarray


class TransformerClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tunes a Hugging Face encoder (hub name or local folder) for classification.

    Training: AdamW, linear warm-up for `warmup_steps` then linear decay, evaluation on a
    stratified `validation_fraction` of the training data after every epoch, early stopping
    after `early_stopping_patience` epochs without a better validation F1-macro, and the best
    epoch's weights restored at the end. `validation_fraction=0` trains all `epochs` and keeps
    the last. `imbalance`: "class_weight" (balanced cross-entropy weights), "oversample"
    (random oversampling of the training part only, so validation rows stay unique) or "none".
    `lr`: default 1e-5, or 1e-4 with LoRA. Joined text pairs (`data.pairs`) are encoded as
    the tokenizer's sentence pairs. `lora`: a dict with any of r, alpha, dropout,
    target_modules trains LoRA adapters (peft)
    plus the classification head instead of all weights. `device`: None (GPU when present),
    "cpu" or "cuda". Checkpoints go to a temporary folder removed after `fit`, or to
    `output_dir`, which also receives the final model and tokenizer.

    Learned: `model_`, `tokenizer_`, `classes_`, `lora_` (the LoRA options used, or None),
    `lr_`, `history_` (one dict per epoch with per-class metrics), `best_epoch_`,
    `n_trainable_params_`, `n_params_`, `pairs_` (whether texts were fed as pairs).
    """

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
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.warmup_steps = warmup_steps
        self.weight_decay = weight_decay
        self.max_length = max_length
        self.early_stopping_patience = early_stopping_patience
        self.validation_fraction = validation_fraction
        self.imbalance = imbalance
        self.lora = lora
        self.output_dir = output_dir
        self.device = device
        self.random_state = random_state

    # Whether this class trains LoRA adapters even without a `lora` dict (LoraClassifier).
    adapters: ClassVar[bool] = False

    def _lora_options(self) -> dict[str, Any] | None:
        if self.lora is None and not self.adapters:
            return None
        return {**LORA_DEFAULTS, **(self.lora or {})}

    def _learning_rate(self) -> float:
        """`lr`, or by default 1e-4 for adapters and 1e-5 for full fine-tuning."""
        if self.lr is not None:
            return self.lr
        return 1e-4 if self._lora_options() is not None else 1e-5

    # ----- fit -----

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Self:
        self._check_params()
        texts_list = list(texts)
        self.classes_, label_ids = np.unique(
            np.asarray(list(labels), dtype=object), return_inverse=True
        )
        if len(self.classes_) < 2:
            raise ConfigError("a classifier needs at least two classes in the training data")
        self._train(self._split(texts_list, label_ids))
        return self

    def _train(self, split: _Split) -> None:
        """Load, fine-tune and keep the best model on `split` (`classes_` already set)."""
        from transformers import set_seed

        self.lora_ = self._lora_options()
        self.lr_ = self._learning_rate()
        self.pairs_ = has_pairs(split.train_texts) or has_pairs(split.valid_texts)
        # The classification head is initialised when the model loads, before Trainer seeds.
        set_seed(self.random_state)
        self.tokenizer_, model = self._load()
        self.n_trainable_params_, self.n_params_ = count_parameters(model)
        with self._checkpoint_dir() as folder:
            trainer = self._trainer(model, split, folder)
            trainer.train()
            self.model_ = trainer.model
            if self.output_dir is not None:
                trainer.save_model(self.output_dir)
            self.history_ = history_from_log(trainer.state.log_history, self.classes_)
        self.model_.eval()
        self.best_epoch_ = self._best_epoch()

    def _check_params(self) -> None:
        if self.imbalance not in IMBALANCE_OPTIONS:
            raise ConfigError(
                f"imbalance must be one of {', '.join(IMBALANCE_OPTIONS)}, got {self.imbalance!r}"
            )
        if self.device not in DEVICES:
            raise ConfigError(
                f"device must be None, 'cpu' or 'cuda', got {self.device!r} "
                "(pick a GPU with CUDA_VISIBLE_DEVICES)"
            )
        unknown = set(self.lora or {}) - set(LORA_DEFAULTS)
        if unknown:
            raise ConfigError(
                f"unknown lora option(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(LORA_DEFAULTS)})"
            )
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )

    def _split(self, texts: list[str], label_ids: np.ndarray) -> _Split:
        train, valid = validation_split(label_ids, self.validation_fraction, self.random_state)
        if self.imbalance == "oversample":
            train = train[oversample_indices(label_ids[train], self.random_state)]
        return _Split(
            train_texts=[texts[i] for i in train],
            train_ids=label_ids[train],
            valid_texts=[texts[i] for i in valid],
            valid_ids=label_ids[valid],
        )

    def _load(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        names = [str(c) for c in self.classes_]
        tokenizer = AutoTokenizer.from_pretrained(self.model)
        model = AutoModelForSequenceClassification.from_pretrained(
            self.model,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)},
            # A checkpoint fine-tuned on other labels has a head of another size: replace it.
            ignore_mismatched_sizes=True,
            **self._head_options(),
        )
        options = self._lora_options()
        if options is not None:
            model = _wrap_lora(model, options)
        return tokenizer, model

    # ----- what a multi-label head changes (classifiers.transformer_multilabel) -----

    multi_label: ClassVar[bool] = False
    # The validation metric that picks the epoch kept, and whether higher is better.
    selection: ClassVar[tuple[str, bool]] = ("f1_macro", True)

    def _head_options(self) -> dict[str, Any]:
        return {}

    def _loss_weights(self, split: _Split) -> np.ndarray | None:
        if self.imbalance != "class_weight":
            return None
        return balanced_class_weights(split.train_ids, len(self.classes_))

    def _metrics(self, label_ids: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        return class_metrics(label_ids, np.argmax(logits, axis=-1), len(self.classes_))

    def _label_value(self, row: Any) -> Any:
        return int(row)

    def _probabilities(self, logits: Any) -> Any:
        import torch

        return torch.softmax(logits, dim=-1)

    def _tokenize(self, texts: list[str], **options: Any) -> Any:
        """The tokenizer's encoding of texts, or of (text, pair) when fitted on pairs."""
        if not self.pairs_:
            return self.tokenizer_(texts, truncation=True, max_length=self.max_length, **options)
        split = [split_pair(t) for t in texts]
        return self.tokenizer_(
            [t for t, _ in split],
            [p for _, p in split],
            truncation="longest_first",
            max_length=self.max_length,
            **options,
        )

    @contextmanager
    def _checkpoint_dir(self) -> Iterator[str]:
        if self.output_dir is not None:
            Path(self.output_dir).mkdir(parents=True, exist_ok=True)
            yield self.output_dir
            return
        with tempfile.TemporaryDirectory(prefix="synthmix-transformer-") as folder:
            yield folder

    def _trainer(self, model: Any, split: _Split, folder: str) -> Any:
        from transformers import (
            DataCollatorWithPadding,
            EarlyStoppingCallback,
            PrinterCallback,
            ProgressCallback,
        )

        validate = len(split.valid_ids) > 0
        weighted_trainer, epoch_logger = _hf_classes()
        callbacks: list[Any] = [epoch_logger(self.classes_)]
        if validate:
            callbacks.append(EarlyStoppingCallback(self.early_stopping_patience))
        trainer = weighted_trainer(
            model=model,
            args=self._training_args(folder, validate),
            train_dataset=self._encode(split.train_texts, split.train_ids),
            eval_dataset=self._encode(split.valid_texts, split.valid_ids) if validate else None,
            processing_class=self.tokenizer_,
            data_collator=DataCollatorWithPadding(self.tokenizer_),
            compute_metrics=lambda pred: self._metrics(
                np.asarray(pred.label_ids), np.asarray(pred.predictions)
            ),
            callbacks=callbacks,
            class_weights=self._loss_weights(split),
            multi_label=self.multi_label,
        )
        # Trainer prints every log dict to stdout; a 600-cell grid needs the logger only.
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        return trainer

    def _training_args(self, folder: str, validate: bool) -> Any:
        import torch
        from transformers import TrainingArguments

        on_gpu = self.device != "cpu" and torch.cuda.is_available()
        if self.device == "cuda" and not on_gpu:
            raise ConfigError("device='cuda' but torch sees no GPU")
        per_epoch = "epoch" if validate else "no"
        return TrainingArguments(
            output_dir=folder,
            learning_rate=self._learning_rate(),
            num_train_epochs=self.epochs,
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.batch_size * 4,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            lr_scheduler_type="linear",
            # Both are AdamW; the fused kernel is faster on GPU, the plain one runs anywhere.
            optim="adamw_torch_fused" if on_gpu else "adamw_torch",
            eval_strategy=per_epoch,
            save_strategy=per_epoch,
            logging_strategy="epoch",
            load_best_model_at_end=validate,
            metric_for_best_model=self.selection[0] if validate else None,
            greater_is_better=self.selection[1],
            # Keeps the best and the latest checkpoint; weights only, no optimizer state.
            save_total_limit=1,
            save_only_model=True,
            label_names=["labels"],
            seed=self.random_state,
            use_cpu=self.device == "cpu",
            dataloader_pin_memory=on_gpu,
            report_to="none",
            disable_tqdm=True,
        )

    def _encode(self, texts: list[str], label_ids: np.ndarray) -> list[dict[str, Any]]:
        encoded = self._tokenize(texts)
        columns = list(encoded.keys())
        return [
            {**{c: encoded[c][i] for c in columns}, "labels": self._label_value(label_ids[i])}
            for i in range(len(texts))
        ]

    def _best_epoch(self) -> int:
        metric, higher = self.selection
        key = {"f1_macro": "f1_macro", "loss": "eval_loss"}[metric]
        scored = [e for e in self.history_ if e.get(key) is not None]
        if not scored:
            return len(self.history_)
        # Trainer keeps the first of equal scores, as max() and min() do.
        pick = max if higher else min
        return int(pick(scored, key=lambda e: e[key])["epoch"])

    # ----- predict -----

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts_list = list(texts)
        device = next(self.model_.parameters()).device
        parts = [np.zeros((0, len(self.classes_)))]
        step = self.batch_size * 4
        with torch.no_grad():
            for start in range(0, len(texts_list), step):
                batch = self._tokenize(
                    texts_list[start : start + step], padding=True, return_tensors="pt"
                ).to(device)
                logits = self.model_(**batch).logits.float()
                parts.append(self._probabilities(logits).cpu().numpy().astype(np.float64))
        return np.vstack(parts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(texts), axis=1)])


class LoraClassifier(TransformerClassifier):
    """TransformerClassifier training LoRA adapters: `lora` defaults to r=8, alpha=16,
    dropout=0.1 on the attention query and value projections (BERT naming), and the learning
    rate to 1e-4 (adapters want a higher one). The same parameters, only other defaults."""

    adapters = True


def _wrap_lora(model: Any, options: dict[str, Any]) -> Any:
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise ConfigError("lora needs the peft package: pip install peft") from None
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # also keeps the new classification head trainable
        r=options["r"],
        lora_alpha=options["alpha"],
        lora_dropout=options["dropout"],
        target_modules=list(options["target_modules"]),
    )
    return get_peft_model(model, config)


@functools.cache
def _hf_classes() -> tuple[type, type]:
    """(Trainer with class-weighted cross-entropy, or for a multi-label head binary cross-entropy
    weighted per label and side; per-epoch metrics logger), defined on first use so that
    transformers is imported only when a transformer is trained."""
    import torch
    from transformers import Trainer, TrainerCallback

    class WeightedTrainer(Trainer):
        def __init__(
            self,
            *args: Any,
            class_weights: np.ndarray | None,
            multi_label: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.class_weights = (
                None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
            )
            self.multi_label = multi_label

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs["labels"]
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
            logits = outputs.logits.float()
            weight = None if self.class_weights is None else self.class_weights.to(logits.device)
            if self.multi_label:
                # weight: (2, labels), the negative and positive side of each label.
                targets = labels.float()
                element = (
                    None if weight is None else torch.where(targets > 0.5, weight[1], weight[0])
                )
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, targets, weight=element
                )
            else:
                loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
            return (loss, outputs) if return_outputs else loss

    class EpochLogger(TrainerCallback):
        def __init__(self, classes: np.ndarray) -> None:
            self.classes = classes

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            metrics = kwargs.get("metrics") or {}
            per_class = ", ".join(
                f"{name}={metrics.get(f'eval_c{cid}_f1', float('nan')):.3f}"
                for cid, name in enumerate(self.classes)
            )
            log.info(
                "epoch %d: validation F1-macro %.3f; F1 per class: %s",
                round(state.epoch or 0),
                metrics.get("eval_f1_macro", float("nan")),
                per_class,
            )

    return WeightedTrainer, EpochLogger
