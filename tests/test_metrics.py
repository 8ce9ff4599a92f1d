"""Metrics against values computed by hand."""

from __future__ import annotations

import pytest

from synthmix.stats.classification import evaluate, mean_ci

CLASSES = ["anger", "joy", "sadness"]
# true:  anger anger anger joy joy sadness
# pred:  anger joy   anger joy sadness sadness
Y_TRUE = ["anger", "anger", "anger", "joy", "joy", "sadness"]
Y_PRED = ["anger", "joy", "anger", "joy", "sadness", "sadness"]


def test_evaluate_matches_hand_computed_values() -> None:
    result = evaluate(Y_TRUE, Y_PRED, CLASSES)
    # anger: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8
    # joy: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 1/2
    # sadness: tp 1, fp 1, fn 0 -> P 1/2, R 1, F1 2/3
    per_class = result["per_class"]
    assert per_class["anger"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert per_class["joy"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert per_class["sadness"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert result["f1_weighted"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_never_predicted_class_counts_as_zero() -> None:
    result = evaluate(["anger", "joy"], ["anger", "anger"], CLASSES)
    assert result["per_class"]["joy"]["f1"] == 0.0
    assert result["per_class"]["sadness"]["support"] == 0
    # anger: P 1/2, R 1, F1 2/3; joy 0; sadness 0 (no support, no predictions)
    assert result["f1_macro"] == pytest.approx((2 / 3) / 3)


def test_mean_ci_student_t() -> None:
    estimate = mean_ci([0.60, 0.62, 0.64])
    # sd = 0.02, t(0.975, 2) = 4.302653, half = 4.302653 * 0.02 / sqrt(3) = 0.049683
    assert estimate.mean == pytest.approx(0.62)
    assert estimate.half_width == pytest.approx(0.0496829, abs=1e-6)
    assert estimate.low == pytest.approx(0.62 - 0.0496829, abs=1e-6)
    assert estimate.format() == "0.620 ± 0.050"


def test_mean_ci_single_value_and_no_spread() -> None:
    assert mean_ci([0.7]).low == mean_ci([0.7]).high == 0.7
    assert mean_ci([0.5, 0.5, 0.5]).half_width == 0.0
    with pytest.raises(ValueError):
        mean_ci([])


def test_evaluate_equals_scikit_learn_on_the_strings_labels_outside_the_classes_included() -> None:
    # evaluate codes labels as integers for speed; the figures must stay scikit-learn's own.
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true = ["joy", "anger", "other", "joy", "sadness", "anger", "joy"]
    y_pred = ["joy", "stray", "anger", "sadness", "sadness", "anger", "other"]
    result = evaluate(y_true, y_pred, CLASSES)
    assert result["accuracy"] == accuracy_score(y_true, y_pred)
    for average in ("macro", "weighted"):
        expected = f1_score(y_true, y_pred, labels=CLASSES, average=average, zero_division=0)
        assert result[f"f1_{average}"] == expected
    assert result["per_class"]["anger"]["support"] == 2
    expected_matrix = confusion_matrix(y_true, y_pred, labels=CLASSES).tolist()
    assert result["confusion_matrix"] == expected_matrix
    assert sum(map(sum, expected_matrix)) == 4  # the pairs within CLASSES only
