"""Seeded, label-stratified subsets: a small subset keeps the class (or value) distribution.

The pruning search scores candidates on small subsets; a subset that drifted away from
the label distribution would make those scores noisy in a way that depends on the seed.
"""

from __future__ import annotations

import numpy as np

from prunepeft.errors import UserError


def _strata(labels: list, is_regression: bool, bins: int) -> np.ndarray:
    """One stratum id per row: the class, or the quantile bin of a regression target."""
    if not is_regression:
        # Map labels (ints or strings) to ids in sorted order, so the result does not
        # depend on which label happens to come first.
        keys = sorted(set(labels), key=lambda v: (str(type(v)), v))
        ids = {k: i for i, k in enumerate(keys)}
        return np.array([ids[v] for v in labels], dtype=np.int64)
    values = np.asarray(labels, dtype=np.float64)
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    # Ties can repeat edges (e.g. many identical scores); unique edges keep every bin
    # non-empty. Inner edges only: values below/above them fall in the first/last bin.
    inner = np.unique(edges[1:-1])
    return np.searchsorted(inner, values, side="right")


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """How many rows each stratum gets: proportional (largest remainder), at least one each."""
    quota = n * counts / counts.sum()
    alloc = np.minimum(np.maximum(np.floor(quota).astype(np.int64), 1), counts)
    # Hand out (or take back) the rounding difference one row at a time, to the strata
    # furthest below (above) their exact share; ties go to the lower stratum id.
    while alloc.sum() < n:
        gap = np.where(alloc < counts, quota - alloc, -np.inf)
        alloc[int(np.argmax(gap))] += 1
    while alloc.sum() > n:
        excess = np.where(alloc > 1, alloc - quota, -np.inf)
        alloc[int(np.argmax(excess))] -= 1
    return alloc


def stratified_indices(labels: list, n: int, seed: int, *, is_regression: bool = False,
                       bins: int = 10) -> list[int]:
    """Sorted indices of an n-row subset with the label distribution of `labels`.

    Classification stratifies on the class; regression on `bins` quantile bins of the
    target. n >= len(labels) returns every index.
    """
    total = len(labels)
    if n >= total:
        return list(range(total))
    if n <= 0:
        raise UserError(f"A subset size of {n} rows was asked for; it must be at least 1. "
                        "Pass a positive subset size.")
    # A regression subset smaller than the bin count just uses fewer (coarser) bins.
    strata = _strata(list(labels), is_regression, min(bins, n) if is_regression else bins)
    counts = np.bincount(strata)
    present = np.flatnonzero(counts)
    if n < len(present):
        raise UserError(
            f"A subset of {n} rows cannot hold all {len(present)} classes of the data "
            f"(every class needs at least one row). Use a subset size of at least {len(present)}.")
    alloc = np.zeros_like(counts)
    alloc[present] = _allocate(counts[present], n)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for s in present:  # fixed stratum order keeps the draw reproducible for a seed
        members = np.flatnonzero(strata == s)
        chosen.extend(rng.permutation(members)[: alloc[s]].tolist())
    return sorted(chosen)


def stratified_subset(rows: list[dict], n: int, seed: int, is_regression: bool = False) -> list[dict]:
    """The rows picked by `stratified_indices` on their "label" field, in original order."""
    idx = stratified_indices([r["label"] for r in rows], n, seed, is_regression=is_regression)
    return [rows[i] for i in idx]

