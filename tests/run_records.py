"""A hand-made results.jsonl line, for report tests that need exact scores."""

from __future__ import annotations

from typing import Any

from synthmix.experiment.mixing import Cell

DEFAULT_CLASSIFIER = {"name": "tfidf_logreg", "params": {"C": 4.0}}
DEFAULT_TIMINGS = {"compose_s": 0.01, "fit_s": 0.1, "predict_s": 0.01}


def result_record(
    cell: Cell,
    seed: int,
    f1: float,
    classes: list[str],
    shortfall: int = 0,
    classifier: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A record whose every metric, and every class's F1, equals `f1`. A classifier with a
    `label` gets its own key, as the runner gives each classifier of a run."""
    classifier = classifier or DEFAULT_CLASSIFIER
    label = classifier.get("label")
    per_class = {name: {"precision": f1, "recall": f1, "f1": f1, "support": 10} for name in classes}
    return {
        "key": f"{cell.key}|seed={seed}" + (f"|classifier={label}" if label else ""),
        "cell_key": cell.key,
        "cell": {
            "plan": cell.plan,
            "real_fraction": cell.real_fraction,
            "synthetic_ratio": cell.synthetic_ratio,
            "source": cell.source,
            "title": cell.title,
        },
        "seed": seed,
        "classifier": classifier,
        "train_size": 100,
        "real_counts": {name: 10 for name in classes},
        "synthetic_counts": {},
        "shortfall": {classes[0]: shortfall} if shortfall else {},
        "metrics": {
            "accuracy": f1,
            "f1_macro": f1,
            "f1_weighted": f1,
            "precision_macro": f1,
            "recall_macro": f1,
            "per_class": per_class,
            "confusion_matrix": [[10] * len(classes) for _ in classes],
            "classes": classes,
        },
        "timings": timings or DEFAULT_TIMINGS,
        "finished_at": "2024-05-01T12:01:00+00:00",
    }
