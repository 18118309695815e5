"""GLUE-style metrics with sklearn/scipy (evaluate.load needs the Hub, which may be offline)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def _finite(x: float) -> float:
    # A correlation with a constant input is undefined (nan); report 0 = "no correlation"
    # so that comparisons between candidates and JSON output stay well defined.
    x = float(x)
    return x if math.isfinite(x) else 0.0


def compute_metrics(task_name: str, is_regression: bool, predictions, labels) -> dict[str, float]:
    """Metrics for one evaluation pass.

    Classification: `predictions` are logits (N, C) or class ids (N,); always "accuracy",
    plus "f1" (positive class 1) for MRPC/QQP and "matthews_correlation" for CoLA.
    Regression: predictions (N,) or (N, 1); "pearson", "spearman" and "mse".
    `task_name` may be "glue/mrpc" or "mrpc".
    """
    task = task_name.split("/")[-1].lower()
    preds = np.asarray(predictions)
    labels = np.asarray(labels)
    if is_regression:
        preds = preds.reshape(len(preds), -1)[:, 0] if preds.ndim > 1 else preds
        preds, labels = preds.astype(np.float64), labels.astype(np.float64)
    elif preds.ndim == 2:
        preds = preds.argmax(axis=-1)
    if preds.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"predictions {preds.shape} and labels {labels.shape} must be non-empty and match")
    if is_regression:
        if len(labels) < 2:  # a correlation needs two points
            return {"pearson": 0.0, "spearman": 0.0, "mse": float(np.mean((preds - labels) ** 2))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConstantInputWarning: handled by _finite
            return {"pearson": _finite(stats.pearsonr(preds, labels)[0]),
                    "spearman": _finite(stats.spearmanr(preds, labels)[0]),
                    "mse": float(np.mean((preds - labels) ** 2))}
    out = {"accuracy": float(skm.accuracy_score(labels, preds))}
    if task in ("mrpc", "qqp"):
        out["f1"] = float(skm.f1_score(labels, preds, zero_division=0))
    if task == "cola":
        out["matthews_correlation"] = float(skm.matthews_corrcoef(labels, preds))
    return out
