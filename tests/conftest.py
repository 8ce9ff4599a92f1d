from __future__ import annotations

from pathlib import Path

import pytest

from synthmix.data import LabeledData, load_labeled

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
