"""The `tune:` source of an experiment: a generator LoRA-tuned inside each cell on the real
texts that cell may see (a tiny causal LM built offline, tests/tiny_lm.py), its texts kept
in the run directory and reused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
pytest.importorskip("peft", reason="peft is not installed (pip install -e '.[train]')")

import yaml

from synthmix.core.errors import ConfigError
from synthmix.data.labeled import LabeledData
from synthmix.experiment import load_experiment, run_experiment
from synthmix.experiment.mixing import SMALL_REAL_PLUS_SYNTHETIC, Cell, compose
from synthmix.experiment.results import ResultsStore
from synthmix.experiment.run_dir import RunDir
from synthmix.experiment.source_stats import read_source_stats
from synthmix.experiment.sources import TunedSourceConfig
from synthmix.experiment.tuned_source import ANSWERS_FILE, MODEL_DIR, TunedSource, read_made
from synthmix.llm.cache import AnswerCache
from tiny_lm import CLASSES, label_preference, one_torch_thread, short_texts, tiny_base_for

MARKER = "зюзябра"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def real(cedr_train: LabeledData) -> LabeledData:
    return short_texts(cedr_train)


@pytest.fixture(scope="module")
def tiny_base(
    cedr_train: LabeledData, real: LabeledData, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return tiny_base_for(tmp_path_factory.mktemp("tiny-lm"), real, cedr_train)


def _settings(model: Path, **overrides: object) -> TunedSourceConfig:
    settings: dict[str, object] = {
        "model": str(model), "epochs": 10, "lr": 3e-2, "max_length": 48, "batch_size": 16,
        "lora_rank": 16, "target_modules": ["c_attn", "c_proj", "c_fc"], "device": "cpu",
        "max_tokens": 24, "per_class": 8,
    }  # fmt: skip
    settings.update(overrides)
    return TunedSourceConfig(**settings)  # type: ignore[arg-type]


def _source(model: Path, folder: Path) -> TunedSource:
    source = TunedSource("tuned", _settings(model))
    source.folder = folder
    return source


def _marked(train: LabeledData, seen: set[str]) -> LabeledData:
    """`train` with every joy text outside `seen` prefixed by the marker."""
    frame = train.frame.copy()
    unseen = (frame["label"] == "joy") & ~frame["text"].isin(seen)
    frame.loc[unseen, "text"] = MARKER + " " + frame.loc[unseen, "text"]
    return LabeledData(frame, "marked train")


def _made(folder: Path) -> list[dict[str, object]]:
    return [m for f in sorted(folder.glob("*")) if (m := read_made(f)) is not None]


def test_a_cells_generator_never_sees_real_texts_outside_the_cell(
    real: LabeledData, tiny_base: Path, tmp_path: Path
) -> None:
    """The unseen 90% of the real data, every joy text of it marked, changes neither the
    adapter nor the texts of a 10% cell; a 100% cell trains on the marked texts; a second
    source over the same folder (a resumed run) trains nothing and gives the same texts."""
    small = Cell(SMALL_REAL_PLUS_SYNTHETIC, 0.1, 1.0, "tuned")
    plain = _source(tiny_base, tmp_path / "plain")
    mix = compose(small, real, plain, seed=0)
    seen = set(mix.data.frame.loc[mix.data.frame["origin"] == "real", "text"])
    assert len(seen) == 8
    marked_train = _marked(real, seen)
    assert (marked_train.frame["text"] != real.frame["text"]).sum() == 36

    marked = _source(tiny_base, tmp_path / "marked")
    marked_mix = compose(small, marked_train, marked, seed=0)
    assert marked_mix.data.frame.equals(mix.data.frame)
    (before,), (after,) = _made(tmp_path / "plain"), _made(tmp_path / "marked")
    assert before["adapter_digest"] == after["adapter_digest"]
    assert before["real_texts"] == 8 and int(str(before["steps"])) == 10
    assert mix.synthetic_counts == dict.fromkeys(CLASSES, 8)  # the source's per_class cap
    assert not any(MARKER in text for text in mix.data.texts)
    # Every answer was persisted before use: one cached answer per call made.
    (sample,) = [f for f in sorted((tmp_path / "plain").glob("*")) if read_made(f)]
    cache = AnswerCache(sample / ANSWERS_FILE)
    assert len(cache) == before["calls"] > 0
    cache.close()

    # Control: a cell that may see all real texts trains on the marked ones.
    everything = Cell(SMALL_REAL_PLUS_SYNTHETIC, 1.0, 1.0, "tuned")
    compose(everything, real, plain, seed=0)
    compose(everything, marked_train, marked, seed=0)
    full_plain = next(m for m in _made(tmp_path / "plain") if m["real_texts"] == 80)
    full_marked = next(m for m in _made(tmp_path / "marked") if m["real_texts"] == 80)
    assert full_plain["adapter_digest"] != full_marked["adapter_digest"]
    assert plain.trained == 2 and marked.trained == 2

    # A resumed run (a fresh source over the same folder) reads the stored texts back.
    again = _source(tiny_base, tmp_path / "plain")
    assert compose(small, real, again, seed=0).data.frame.equals(mix.data.frame)
    assert again.trained == 0 and again.reused == 1


def test_the_tuned_texts_differ_by_class_and_skip_copies_of_real_texts(
    real: LabeledData, tiny_base: Path, tmp_path: Path
) -> None:
    source = TunedSource(
        "tuned", _settings(tiny_base, epochs=20, per_class=None, max_tokens=40, keep_model=True)
    )
    source.folder = tmp_path
    made = source(real, dict.fromkeys(CLASSES, 30), seed=0)
    assert made.class_counts() == dict.fromkeys(CLASSES, 30)
    assert not set(made.texts) & set(real.texts)  # copies of the cell's real texts are leaks
    (record,) = _made(tmp_path)
    dropped = record["dropped"]
    assert isinstance(dropped, dict) and set(dropped) >= {"duplicates", "leaks", "truncated"}
    unread = dropped.pop("parse_failures")
    assert record["texts_made"] == 60
    assert record["texts_returned"] == 60 + sum(dropped.values()) <= record["calls"] - unread
    # Texts of one class are never texts of the other, and the cell's tuned model (kept with
    # keep_model) learned which texts go with which label: it finds the cell's real texts
    # likelier after their own label, where the base model, which never saw a label, does not.
    by_class = [
        {t for t, lab in zip(made.texts, made.labels, strict=True) if lab == c} for c in CLASSES
    ]
    assert not by_class[0] & by_class[1]
    (folder,) = tmp_path.iterdir()
    tuned = label_preference(folder / MODEL_DIR, real, CLASSES)
    base = label_preference(tiny_base, real, CLASSES)
    print(f"own-label preference on the cell's real texts: tuned {tuned:.3f}, base {base:.3f}")
    assert tuned >= 0.65 and tuned >= base + 0.15


def test_an_experiment_records_what_each_cell_trained(
    real: LabeledData, cedr_test: LabeledData, tiny_base: Path, tmp_path: Path
) -> None:
    real.frame.to_csv(tmp_path / "train.csv", index=False)
    test = cedr_test.frame[cedr_test.frame["label"].isin(CLASSES)].head(60)
    test.to_csv(tmp_path / "test.csv", index=False)
    tune = {
        "model": str(tiny_base), "epochs": 2, "lr": 3e-2, "max_length": 48, "device": "cpu",
        "target_modules": ["c_attn"], "max_tokens": 16,
    }  # fmt: skip
    config = {
        "name": "tuned",
        "data": {"train": "train.csv", "test": "test.csv"},
        "sources": [{"name": "lamb", "tune": tune}],
        "plans": {
            "learning_curve": [1.0], "synthetic_only": False, "half_and_half": False,
            "real_plus_equal": False, "small_real_fraction": 0.1, "synthetic_ratios": [0.5, 1.0],
        },
        "seeds": 1,
    }  # fmt: skip
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = RunDir(tmp_path / "run")
    run_experiment(load_experiment(tmp_path / "experiment.yaml"), run.root, jobs=1, progress=False)
    stats = read_source_stats(run)["lamb"]["tuned"]
    # Both 10% cells (+50%, +100%) share one real sample and seed: one training.
    assert stats["trainings"] == 1 and stats["steps"] == 2
    sample = stats["samples"][0]
    assert sample["real_texts"] == 8 and sample["per_class"] == 40  # 10% + 100% of n
    assert stats["texts_made"] == sum(sample["made"].values()) > 0
    records = {r["cell_key"]: r for r in ResultsStore(run).records()}
    full = records["small_real_plus_synthetic|lamb|0.1|1"]
    assert full["synthetic_counts"] == sample["made"]
    made = run.tuned_dir / "lamb"
    stamps = {p: p.stat().st_mtime_ns for p in made.rglob("*")}
    assert not any(p.name.endswith(".safetensors") and "adapter" not in str(p) for p in stamps)
    # Killed before its fits were stored: the rerun fits again but trains nothing.
    run.results_file.unlink()
    run_experiment(load_experiment(tmp_path / "experiment.yaml"), run.root, jobs=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in made.rglob("*")} == stamps
    assert read_source_stats(run)["lamb"]["tuned"]["trainings"] == 1


def test_a_bad_tune_key_is_one_line(tmp_path: Path, real: LabeledData) -> None:
    real.frame.to_csv(tmp_path / "train.csv", index=False)
    config = {
        "name": "bad",
        "data": {"train": "train.csv"},
        "sources": [{"name": "lamb", "tune": {"model": "x", "epoch": 3}}],
    }
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "synthmix", "experiment", str(tmp_path / "experiment.yaml"),
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
    print(run.stderr)
    assert "'epoch'" in run.stderr and "epochs" in run.stderr
    assert not (tmp_path / "run").exists()
    (tmp_path / "experiment.yaml").write_text(
        yaml.safe_dump({**config, "sources": [{"name": "lamb", "tune": {"model": "x", "lr": 0}}]}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"sources: lamb: tune: lr must be > 0, got 0\.0$"):
        load_experiment(tmp_path / "experiment.yaml")
