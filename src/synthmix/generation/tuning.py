"""A generator tuned on the real data: LoRA fine-tuning of a causal LM on "label: text".

LAMBADA (Anaby-Tavor et al. 2020) fine-tunes the generator on the labeled training texts,
each prefixed by its label, and then prompts it with a label alone; the seed team's ruBERT
yes/no experiment did the same with p-tuning and lifted its minority-class F1 from 0.14 to
0.62. Here the adapter is LoRA (peft), trained by the Hugging Face Trainer; the result is
saved twice: `OUT/adapter/` (the LoRA weights alone, peft's format) and `OUT/` itself, the
base model with the adapter merged in and a tokenizer without a chat template, which the
transformers backend loads like any base model (`kind: transformers, model: OUT` with the
`tuned` strategy).

The base is a Hugging Face causal LM (a hub name or a folder) or a GGUF file (the bundled
Gemma-3-270M), which transformers dequantises through its gguf support. On CPU this is slow
(one LoRA step of batch 8 on the bundled Gemma takes tens of seconds: its 262k-token
vocabulary dominates); it is meant for a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthmix.core.errors import ConfigError
from synthmix.core.text import one_line
from synthmix.data.labeled import LabeledData
from synthmix.generation.strategies.tuned import SEPARATOR

log = logging.getLogger("synthmix")

INFO_FILE = "synthmix_tuned.json"
ADAPTER_DIR = "adapter"
_INSTALL_HINT = "pip install torch (CPU or your GPU build), then pip install -e '.[train]'"


@dataclass
class TuneConfig:
    """`model`: a hub name, a folder, or a .gguf file. `target_modules=None` lets peft pick
    the attention projections it knows for the architecture."""

    model: str
    epochs: float = 3.0
    lr: float = 2e-4
    max_length: int = 128
    batch_size: int = 8
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None
    seed: int = 0
    device: str | None = None
    max_steps: int = -1  # > 0 caps the steps (a benchmark's few steps)
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name, value in (("epochs", self.epochs), ("lr", self.lr)):
            if value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        for name, count in (
            ("max_length", self.max_length),
            ("batch_size", self.batch_size),
            ("lora_rank", self.lora_rank),
        ):
            if count < 1:
                raise ConfigError(f"{name} must be >= 1, got {count}")
        for package in ("torch", "transformers", "peft"):
            if importlib.util.find_spec(package) is None:
                raise ConfigError(f"tune-generator needs {package}: {_INSTALL_HINT}")


@dataclass(frozen=True)
class TuneResult:
    out: Path
    texts: int
    steps: int
    seconds: float
    train_loss: float | None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def training_text(label: str, text: str) -> str:
    """One training sequence (without the end-of-text token the tokenizer adds)."""
    return f"{label}{SEPARATOR}{one_line(text)}"


def load_base(model: str) -> tuple[Any, Any]:
    """Tokenizer and causal LM of `model`: a hub name, a folder or a GGUF file."""
    source, options = _resolve(model)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        base = AutoModelForCausalLM.from_pretrained(source, **options)
    except (OSError, ValueError) as exc:
        problem = one_line(str(exc))[:300]
        raise ConfigError(f"{model}: cannot load a causal LM: {problem}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    _drop_gguf_quantizer(base, model)
    return tokenizer, base


def _drop_gguf_quantizer(base: Any, model: str) -> None:
    """A GGUF file de-quantised into plain float weights still carries its quantizer, and
    the Trainer refuses every model that says it is quantized; nothing quantized is left,
    so the marker goes. Weights left packed in GGUF blocks cannot be trained."""
    quantizer = getattr(base, "hf_quantizer", None)
    if quantizer is None:
        return
    if any(not parameter.is_floating_point() for parameter in base.parameters()):
        raise ConfigError(
            f"{model}: transformers kept this GGUF's weights packed, which cannot be trained; "
            "uninstall `kernels` so that it de-quantises them, or give an HF model"
        )
    # What transformers itself does for a checkpoint loaded with `dequantize=True`.
    quantizer.remove_quantization_config(base)


def _resolve(model: str) -> tuple[str, dict[str, Any]]:
    """Where transformers loads `model` from, checked before transformers is imported (a
    typo fails in a second, not after the libraries have loaded)."""
    path = Path(model).expanduser()
    options: dict[str, Any] = {}
    source = model
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"{model}: GGUF file not found")
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError(f"{model}: a GGUF file in transformers needs `pip install gguf`")
        source, options = str(path.parent), {"gguf_file": path.name}
    elif not path.exists() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise ConfigError(f"{model}: model folder not found")
    return source, options


def _encode(tokenizer: Any, data: LabeledData, max_length: int) -> list[dict[str, list[int]]]:
    eos = tokenizer.eos_token_id
    rows = []
    for text, label in zip(data.texts, data.labels, strict=True):
        ids = tokenizer(training_text(label, text), add_special_tokens=False)["input_ids"]
        if tokenizer.bos_token_id is not None and tokenizer.bos_token_id != eos:
            ids = [tokenizer.bos_token_id, *ids]
        # The end-of-text token is learned too: it is how a tuned model stops.
        ids = [*ids[: max_length - 1], eos]
        rows.append({"input_ids": ids})
    return rows


class _Collator:
    """Pads a batch; labels are the inputs with padding masked (-100), the final end-of-text
    kept (the stock LM collator would mask it too where padding is end-of-text)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = ids[i, :n]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def tune_generator(
    data: LabeledData, config: TuneConfig, out: str | Path, progress: bool = True
) -> TuneResult:
    """LoRA-tune `config.model` on `data`'s "label: text" sequences; write OUT (merged
    model + tokenizer + synthmix_tuned.json) and OUT/adapter."""
    config.check()
    data.require_classes(2)
    _resolve(config.model)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    out = Path(out)
    set_seed(config.seed)
    tokenizer, base = load_base(config.model)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
    )
    try:
        model = get_peft_model(base, lora)
    except ValueError as exc:
        raise ConfigError(
            f"{config.model}: LoRA: {one_line(str(exc))[:300]} (set target_modules)"
        ) from None
    rows = _encode(tokenizer, data, config.max_length)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    arguments = TrainingArguments(
        output_dir=str(out / ".checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        per_device_train_batch_size=config.batch_size,
        logging_steps=max(1, math.ceil(len(rows) / config.batch_size)),
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        use_cpu=device == "cpu",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        **config.extra,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=rows,  # a list of rows is a map-style dataset
        data_collator=_Collator(int(tokenizer.pad_token_id)),
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out / ADAPTER_DIR))
    merged: Any = model.merge_and_unload()
    merged.save_pretrained(str(out))
    # A base model for "label:" prompts: a chat template would make the transformers
    # backend send chat messages instead.
    tokenizer.chat_template = None
    tokenizer.save_pretrained(str(out))
    result = TuneResult(
        out=out,
        texts=len(rows),
        steps=int(output.global_step),
        seconds=seconds,
        train_loss=float(output.training_loss) if output.training_loss is not None else None,
    )
    info = {
        "base_model": config.model,
        "format": f"label{SEPARATOR}text",
        "labels": data.class_counts(),
        "config": {k: v for k, v in asdict(config).items() if k != "extra"},
        "texts": result.texts,
        "steps": result.steps,
        "train_s": round(seconds, 3),
        "steps_per_s": round(result.steps_per_s, 4),
        "train_loss": result.train_loss,
        "device": device,
    }
    (out / INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return result
