from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from synthmix.data.labeled import LabeledData, load_labeled, sample_per_class, stratified_fraction

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PACKAGE_DEMO = Path(__file__).resolve().parents[1] / "src" / "synthmix" / "demo_data"


def dataset_dir(name: str) -> Path:
    """Real data from ../shared/datasets, or the copy of CEDR shipped in the package."""
    shared = SHARED_DATASETS / name
    if shared.exists():
        return shared
    shipped = PACKAGE_DEMO / name
    if shipped.exists():
        return shipped
    pytest.skip(f"dataset {name} not available")


@pytest.fixture(scope="session")
def cedr_train() -> LabeledData:
    return load_labeled(dataset_dir("cedr_emotions") / "train.csv")


@pytest.fixture(scope="session")
def cedr_test() -> LabeledData:
    return load_labeled(dataset_dir("cedr_emotions") / "test.csv")


@pytest.fixture(scope="session")
def experiment_files(
    cedr_train: LabeledData, cedr_test: LabeledData, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A small real experiment: 10% of CEDR train as the real data, another disjoint part of
    CEDR train standing in for a synthetic source, 300 test sentences."""
    folder = tmp_path_factory.mktemp("experiment")
    real = stratified_fraction(cedr_train, 0.1, seed=0)
    rest = cedr_train.frame[~cedr_train.frame["text"].isin(set(real.texts))].reset_index(drop=True)
    stand_in = sample_per_class(LabeledData(rest, "rest"), real.class_counts(), seed=1)
    real.frame.to_csv(folder / "train.csv", index=False)
    stand_in.frame.assign(generator="held-out-real", strategy="none").to_csv(
        folder / "synth.csv", index=False
    )
    test = stratified_fraction(cedr_test, 300 / len(cedr_test), seed=0)
    test.frame.to_csv(folder / "test.csv", index=False)
    config = {
        "name": "small",
        "data": {"train": "train.csv", "test": "test.csv"},
        "sources": [{"path": "synth.csv", "name": "heldout"}],
        "plans": {"learning_curve": [0.5, 1.0], "synthetic_ratios": [0.5, 1.0]},
        "seeds": 2,
        "classifier": {"name": "tfidf_logreg", "params": {"max_iter": 200}},
    }
    (folder / "experiment.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def gemma() -> Any:
    """The bundled Gemma-3-270M behind llama.cpp, loaded once for every test that runs it
    (seed 0, 1024-token context); skipped where llama-cpp-python or the model is missing."""
    pytest.importorskip("llama_cpp")
    from synthmix.core.errors import ConfigError
    from synthmix.llm.llamacpp import LlamaCppBackend

    try:
        return LlamaCppBackend(n_ctx=1024, seed=0)
    except ConfigError as exc:
        pytest.skip(str(exc))
