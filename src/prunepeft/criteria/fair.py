"""Fair scores across kinds, sizes and targets: each unit is judged against its peers.

Raw criterion scores are not comparable across units of different shape or parameterisation:
mean w^2 of a LoRA unit is dominated by its kaiming-initialised A (whose scale depends on the
input width, so FFN-output units look "smaller" than attention units), a freshly initialised B
is all zeros (the 'zeros' and 'threshold' criteria then see LoRA as dead), and an adapter's
statistics live on another scale again. The rule (docs/method-notes.md, "Fair scores"):

    peers(m)   = the alive units with m's kind, size and target (same shapes and init, other layers)
    q_s(m)     = -log((raw_s(m) + eps) / (median_peers raw_s + eps))   criteria that prune the lowest
    q_s(m)     =  raw_s(m) - median_peers raw_s                        fractions that prune the highest
    eps        = 1e-12 + 1e-6 * |median|

so q_s = 0 for a unit at its peers' median and the units compared across groups are those that
fall furthest below their own peers. Larger q = more prunable, as `prunability`.

With `layers` (search.fair_layers) each layer's common scale is removed as well: within a kind and
size, q is median-polished over the layer x target grid (Tukey), so a unit is judged against what
its layer and its target lead one to expect. One source of a depth trend has nothing to do with usefulness: in an
encoder with a [CLS] head, the last layer's query, output and FFN units get gradient through one
position only.
"""

from __future__ import annotations

import math
import statistics

from prunepeft.criteria.scores import get_criterion, prunability


def relative_prunability(criterion: str, raw: dict, layers: bool = False) -> dict:
    """unit -> prunability relative to its peers (see the module docstring)."""
    c = get_criterion(criterion)
    groups: dict[str, list] = {}
    for unit in raw:
        groups.setdefault(unit.key, []).append(unit)
    out = {}
    for members in groups.values():
        median = statistics.median(float(raw[u]) for u in members)
        eps = 1e-12 + 1e-6 * abs(median)
        for u in members:
            v = float(raw[u])
            if not math.isfinite(v):
                raise ValueError(f"criterion {criterion!r} gave unit {u.name} a non-finite score {v!r}")
            if c.prune_first == "lowest":
                out[u] = -math.log(max(v, 0.0) + eps) + math.log(max(median, 0.0) + eps)
            else:
                out[u] = v - median
    if layers:
        for family in {u.family for u in out}:
            out.update(median_polish({u: q for u, q in out.items() if u.family == family}))
    return out


def median_polish(values: dict, sweeps: int = 10) -> dict:
    """Residuals of `values` (unit -> number) after removing a layer effect and a target effect by
    alternating median sweeps (Tukey's median polish; cells may be missing)."""
    res = dict(values)
    for _ in range(sweeps):
        for effect in (lambda u: u.layer, lambda u: u.target):
            groups: dict = {}
            for u in res:
                groups.setdefault(effect(u), []).append(u)
            for members in groups.values():
                median = statistics.median(res[u] for u in members)
                for u in members:
                    res[u] -= median
    return res


def oriented(criterion: str, raw: dict, fair: bool | str) -> dict:
    """Prunability of every unit of `raw` under one criterion: peer-relative when `fair` (True, or
    "layers" to remove each layer's scale too) and the criterion's scale depends on the unit's shape
    (not `removal`, which is in units of the loss)."""
    if fair and get_criterion(criterion).peer_relative:
        return relative_prunability(criterion, raw, layers=fair == "layers")
    return {u: prunability(criterion, v) for u, v in raw.items()}
