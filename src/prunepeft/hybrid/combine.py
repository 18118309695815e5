"""The hybrid pruning score: paper Eq. 1 exactly as defined in method.md §6.

Definitions (all over the ALIVE units only):

- `partition(m)` gives the label P of unit m (e.g. "lora-8/b1"); `strategy[P]` = S_P is the
  list of criteria of that partition.
- Ranked set of criterion s: U_s = the alive units whose partition's strategy contains s.
  One criterion thus ranks the units of ALL partitions that use it together, across
  families and blocks.
- prunability: q_s(m) = `prunability(s, raw_scores[s][m])` (larger = prune first).
- rank_s(m): position of m in U_s sorted by descending q_s (rank 0 = most prunable); equal
  q_s are ordered by Unit order (layer, kind, size), so ranks are always 0..|U_s|-1 distinct.
- z_s(m) = (q_s(m) - min q_s) / (max q_s - min q_s) over U_s, in [0, 1], 1 = most prunable.
  If all q_s over U_s are equal (including |U_s| = 1), z_s = 1 for every unit of U_s:
  the criterion then expresses no preference, and the rank weight alone orders them.
- k_s(m) = sigmoid(tau - rank_s(m)), tau = 3 as in the authors' code (the paper writes
  sigmoid(rank), which would weight the LEAST prunable units most).
  With `coverage_ranks`, rank_s(m) is first stretched to the scale of all alive units:
  (rank + 0.5) * n / |U_s| - 0.5 (n alive units; equal to rank where s ranks them all). Unscaled,
  each criterion's top ~tau units weigh alike however few units it ranks, so a block whose
  criterion no other block shares loses units as fast as the blocks sharing one criterion
  together (docs/method-notes.md, "Eq. 1").
- logit(m) = mean over s in S_P(m) of k_s(m) * z_s(m)   (S_P deduplicated, order kept).
- p(m) = softmax over all alive units of logit(m).

Single-criterion ablations use the same function with every partition mapped to the same
one criterion (`uniform_strategy`); the `hybrid-global` ablation uses partition labels
without blocks (`partition_of(u, L, use_blocks=False)`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

from prunepeft.criteria.fair import oriented
from prunepeft.criteria.scores import get_criterion, prunability
from prunepeft.space.units import Unit

DEFAULT_TAU = 3.0


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def uniform_strategy(criteria: Iterable[str] | str, labels: Iterable[str]) -> dict[str, list[str]]:
    """Every partition label -> the same criteria (e.g. the single-criterion ablation)."""
    if isinstance(criteria, str):
        criteria = [criteria]
    criteria = list(criteria)
    for c in criteria:
        get_criterion(c)
    return {label: list(criteria) for label in sorted(set(labels))}


def _strategy_of(strategy: dict[str, list[str]], label: str, unit: Unit) -> list[str]:
    if label not in strategy:
        raise ValueError(
            f"unit {unit.name} is in partition {label!r}, which has no entry in the hybrid "
            f"strategy (it covers {', '.join(sorted(strategy)) or 'nothing'}); the strategy was "
            "made for another model or space, or the partition labels do not match"
        )
    crits = list(dict.fromkeys(strategy[label]))
    if not crits:
        raise ValueError(f"partition {label!r} has an empty criteria list in the hybrid strategy")
    for c in crits:
        get_criterion(c)
    return crits


def hybrid_logits(
    raw_scores: dict[str, dict[Unit, float]],
    strategy: dict[str, list[str]],
    partition: Callable[[Unit], str],
    alive: list[Unit],
    tau: float = DEFAULT_TAU,
    fair: bool | str = False,
    coverage_ranks: bool = False,
) -> dict[Unit, float]:
    """Eq. 1 logits for every alive unit (see the module docstring for the exact definition).

    raw_scores[s][m] is the raw score of scores.py (`score(s, stats)`); only entries for the
    alive units whose partition uses s are read, others are ignored. Raises ValueError for a
    unit whose partition has no strategy entry, a missing or non-finite raw score, or
    duplicate alive units. Returns a dict in sorted Unit order. With `fair`, q_s is the
    peer-relative prunability of criteria/fair.py (computed over every unit raw_scores[s] holds).
    """
    units = sorted(alive)
    if len(set(units)) != len(units):
        raise ValueError("the alive units contain duplicates")

    crits_of: dict[Unit, list[str]] = {}
    ranked: dict[str, list[Unit]] = {}
    for m in units:
        crits = _strategy_of(strategy, partition(m), m)
        crits_of[m] = crits
        for s in crits:
            ranked.setdefault(s, []).append(m)

    weighted: dict[str, dict[Unit, float]] = {}  # s -> m -> k_s(m) * z_s(m)
    for s, members in ranked.items():
        table = raw_scores.get(s)
        if table is None:
            raise ValueError(f"no raw scores for criterion {s!r}, which the hybrid strategy uses")
        q: dict[Unit, float] = {}
        relative = oriented(s, table, fair=fair) if fair else None
        for m in members:
            if m not in table:
                raise ValueError(f"criterion {s!r} has no raw score for alive unit {m.name}")
            v = relative[m] if fair else prunability(s, table[m])
            if not math.isfinite(v):
                raise ValueError(f"criterion {s!r} gave unit {m.name} a non-finite score {table[m]!r}")
            q[m] = v
        order = sorted(members, key=lambda m: (-q[m], m))
        lo, hi = min(q.values()), max(q.values())
        span = hi - lo
        stretch = len(units) / len(order) if coverage_ranks else 1.0
        weighted[s] = {
            m: sigmoid(tau - ((rank + 0.5) * stretch - 0.5)) * ((q[m] - lo) / span if span > 0 else 1.0)
            for rank, m in enumerate(order)
        }

    return {m: sum(weighted[s][m] for s in crits_of[m]) / len(crits_of[m]) for m in units}


def pruning_probabilities(logits: dict[Unit, float]) -> dict[Unit, float]:
    """Softmax over all given (alive) units, computed stably (max subtracted)."""
    if not logits:
        return {}
    top = max(logits.values())
    exps = {m: math.exp(v - top) for m, v in logits.items()}
    total = sum(exps.values())
    return {m: e / total for m, e in exps.items()}


def prune_order(probs: dict[Unit, float]) -> list[Unit]:
    """Units by descending pruning probability; equal p ordered by Unit order (layer, kind, size)."""
    return sorted(probs, key=lambda m: (-probs[m], m))


def layer_balanced_order(order: list[Unit], sizes: dict[Unit, int]) -> list[Unit]:
    """`order` (all alive units, most prunable first) re-taken layer by layer: each next unit comes from
    the layer that holds the most unit parameters still in the order, and within it is that layer's
    most prunable one. The criteria choose within a layer; no layer is emptied before the others
    (docs/method-notes.md, "Depth": on an encoder with a [CLS] head every criterion but activation
    ranks the top layers' units as prunable first)."""
    left: dict[int, int] = {}
    for unit in order:
        left[unit.layer] = left.get(unit.layer, 0) + sizes[unit]
    rest, out = list(order), []
    while rest:
        fullest = max(left[u.layer] for u in rest)
        unit = next(u for u in rest if left[u.layer] == fullest)
        rest.remove(unit)
        left[unit.layer] -= sizes[unit]
        out.append(unit)
    return out


def random_order(alive: Iterable[Unit], seed: int) -> list[Unit]:
    """Random pruning ablation: a seeded shuffle, independent of the input order."""
    units = sorted(set(alive))
    random.Random(seed).shuffle(units)
    return units
