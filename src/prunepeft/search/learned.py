"""Has the supernet learned? The search must not score a network that still predicts the label
prior: its criteria would rank noise (method.md §9). The yardstick is the loss of the best
constant prediction -- the entropy of the training labels (classification) or their variance
(regression, MSE), or for a causal LM the loss of predicting each response token from its
position alone (response_prior_loss) -- and the supernet has learned when the mean training loss over the second
half of its latest training is below `ratio` times it."""

from __future__ import annotations

import math
from collections import Counter


def prior_loss(rows: list, is_regression: bool) -> float:
    if rows and isinstance(rows[0]["labels"], list):
        return response_prior_loss(rows)
    labels = [r["labels"] for r in rows]
    if is_regression:
        mean = sum(labels) / len(labels)
        return sum((y - mean) ** 2 for y in labels) / len(labels)
    counts = Counter(labels)
    return -sum(c / len(labels) * math.log(c / len(labels)) for c in counts.values())


def has_learned(tail_loss: float, prior: float, ratio: float) -> bool:
    return tail_loss < ratio * prior


def response_prior_loss(rows: list) -> float:
    """Causal LM: the per-token loss of the best guess that ignores the prompt and the earlier
    response tokens, i.e. the entropy of the token at each response position, weighted by how many
    response tokens each position holds (the loss averages over tokens). For a classification task
    posed as prompt -> label word this is the label prior's entropy spread over the word and EOS."""
    by_position: dict[int, Counter] = {}
    for row in rows:
        response = [t for t in row["labels"] if t != -100]
        for position, token in enumerate(response):
            by_position.setdefault(position, Counter())[token] += 1
    total = sum(sum(c.values()) for c in by_position.values())
    entropy = 0.0
    for counts in by_position.values():
        n = sum(counts.values())
        entropy += -sum(c * math.log(c / n) for c in counts.values())
    return entropy / max(1, total)
