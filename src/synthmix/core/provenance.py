"""What a run records about the software that produced it."""

from __future__ import annotations

import platform
from importlib import metadata

RECORDED_PACKAGES = (
    "synthmix",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "imbalanced-learn",
    "joblib",
    "pymorphy3",
    "torch",
    "transformers",
    "peft",
    "llama_cpp_python",
)


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
