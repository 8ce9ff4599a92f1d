"""Cheap metrics of synthetic data: diversity, fidelity, consistency, novelty."""

from __future__ import annotations

from synthmix.core.exports import lazy_exports

_EXPORTS = {
    ".measure": (
        "QualityConfig",
        "measure_quality",
        "write_quality",
        "read_quality",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["QualityConfig", "measure_quality", "read_quality", "write_quality"]
