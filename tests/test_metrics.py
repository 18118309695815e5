"""compute_metrics against hand-computed values."""

import math

import numpy as np
import pytest

from prunepeft.train.metrics import compute_metrics


def test_accuracy_from_logits_and_from_class_ids():
    logits = np.array([[2.0, -1.0], [0.1, 0.9], [3.0, 0.0], [-1.0, 1.0]])  # argmax 0, 1, 0, 1
    labels = np.array([0, 1, 1, 1])
    assert compute_metrics("glue/sst2", False, logits, labels) == {"accuracy": 0.75}
    assert compute_metrics("glue/sst2", False, np.array([0, 1, 0, 1]), labels) == {"accuracy": 0.75}


def test_matthews_for_cola_by_hand():
    # TP=1 FN=1 TN=2 FP=0: MCC = (1*2 - 0*1) / sqrt(1 * 2 * 2 * 3) = 2 / sqrt(12)
    out = compute_metrics("glue/cola", False, np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0]))
    assert out["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))
    assert out["accuracy"] == 0.75
    # Constant predictions: MCC is defined as 0.
    assert compute_metrics("cola", False, np.zeros(4), np.array([1, 1, 0, 0]))["matthews_correlation"] == 0.0


def test_f1_only_for_mrpc_and_qqp():
    preds, labels = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])  # precision 1/2, recall 1/2
    for task in ("glue/mrpc", "qqp"):
        out = compute_metrics(task, False, preds, labels)
        assert out == {"accuracy": 0.5, "f1": pytest.approx(0.5)}
    assert set(compute_metrics("glue/rte", False, preds, labels)) == {"accuracy"}
    assert set(compute_metrics("movie-sentiment", False, preds, labels)) == {"accuracy"}


def test_multiclass_logits():
    logits = np.eye(3)[[0, 1, 2, 2]]
    assert compute_metrics("glue/mnli", False, logits, np.array([0, 1, 2, 1]))["accuracy"] == 0.75


def test_regression_perfect_and_anti_correlation():
    labels = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    out = compute_metrics("glue/stsb", True, 2 * labels + 1, labels)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["mse"] == pytest.approx(np.mean((labels + 1) ** 2))  # (2x+1 - x)^2 = (x+1)^2 -> 11
    out = compute_metrics("stsb", True, -labels, labels)
    assert out["pearson"] == pytest.approx(-1.0) and out["spearman"] == pytest.approx(-1.0)


def test_regression_spearman_vs_pearson_and_column_predictions():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    preds = (labels ** 3).reshape(-1, 1)  # monotone but not linear; shape (N, 1) like a 1-label head
    out = compute_metrics("glue/stsb", True, preds, labels)
    assert out["spearman"] == pytest.approx(1.0)
    assert 0.9 < out["pearson"] < 1.0
    assert out["mse"] == pytest.approx(np.mean((labels ** 3 - labels) ** 2))


def test_regression_constant_predictions_give_zero_not_nan():
    out = compute_metrics("glue/stsb", True, np.full(4, 2.5), np.array([1.0, 2.0, 3.0, 4.0]))
    assert out["pearson"] == 0.0 and out["spearman"] == 0.0
    assert out["mse"] == pytest.approx(1.25)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        compute_metrics("glue/sst2", False, np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError):
        compute_metrics("glue/sst2", False, np.array([]), np.array([]))
