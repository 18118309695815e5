"""Has the supernet learned? The search must not score a network that still predicts the label
prior: its criteria would rank noise (method.md §9). The yardstick is the loss of the best
constant prediction -- the entropy of the training labels (classification) or their variance
(regression, MSE) -- and the supernet has learned when the mean training loss over the second
half of its latest training is below `ratio` times it."""

from __future__ import annotations

import math
from collections import Counter


def prior_loss(rows: list, is_regression: bool) -> float:
    labels = [r["labels"] for r in rows]
    if is_regression:
        mean = sum(labels) / len(labels)
        return sum((y - mean) ** 2 for y in labels) / len(labels)
    counts = Counter(labels)
    return -sum(c / len(labels) * math.log(c / len(labels)) for c in counts.values())


def has_learned(tail_loss: float, prior: float, ratio: float) -> bool:
    return tail_loss < ratio * prior
