"""The six pruning criteria of the paper's Table 1 as small pure functions, and one registry.

Every criterion maps the statistics of ONE unit to a raw score computed over all elements of
that unit's trainable tensors together (|w| = total number of elements):

| name       | needs        | raw score                                   | prune first |
|------------|--------------|---------------------------------------------|-------------|
| weight     | -            | mean of w^2                                 | lowest      |
| zeros      | -            | fraction of weights exactly 0               | highest     |
| threshold  | -            | fraction of weights with abs(w) < t         | highest     |
| activation | activation   | mean abs(delta output) over tokens and steps| lowest      |
| taylor     | grads        | mean of abs(w * g), g = mean grad of round  | lowest      |
| gradient   | grads        | mean of abs(g)                              | lowest      |
| removal    | activation, removal | RMS over steps of <dL/d delta, delta>, per parameter | lowest |

`removal` is not one of the paper's six and not in the hybrid (`hybrid=False`); it is a
single-criterion strategy. <dL/d delta, delta> is the first-order change of the loss when the
unit's output delta is removed (Molchanov et al. 2019, "Importance estimation for neural
network pruning": squared per step, averaged over steps); its root is divided by the unit's
parameter count, because the budget is counted in parameters (a unit 2.5x larger must do 2.5x
more). In loss units per parameter, it compares units of every kind, size and target directly
(`peer_relative=False`); the other criteria are compared with their peers first
(criteria/fair.py), which keeps every target's share of the configuration near its share of the
space.

Departures from the authors' code (method.md §3): the Taylor term is UNSIGNED (the code
signs it), and the activation score is per unit (the code accumulates it across units).

A criterion whose statistics never arrived raises `MissingStatistics`; it never scores 0,
because a silent 0 would make every such unit look most (or least) prunable.
`prunability` orients a raw score so that larger always means "prune first".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from prunepeft.errors import UserError

STATISTICS = ("grads", "activation", "removal")  # removal: <dL/d delta, delta>, collected with the activations


@dataclass
class UnitStats:
    """What the criteria may look at for one unit, collected during one round."""

    weights: list[torch.Tensor]  # the unit's trainable tensors (detached)
    mean_grads: list[torch.Tensor] | None = None  # mean gradient over the round, same shapes as weights
    mean_abs_activation: float | None = None  # mean |delta output| over tokens and steps
    removal_effect: float | None = None  # mean over steps of <dL/d delta, delta>^2


class MissingStatistics(RuntimeError):
    """A criterion needs statistics (gradients, activations) that were never collected."""


@dataclass(frozen=True)
class Criterion:
    name: str
    needs: frozenset[str]  # subset of STATISTICS
    prune_first: str  # "lowest" or "highest"
    fn: Callable[[UnitStats, float], float]  # (stats, threshold) -> raw score
    hybrid: bool = True  # one of the paper's six, which the warm-up tries and the hybrid combines
    peer_relative: bool = True  # compared with its peers' scores before ranking across groups (fair scores)


# ----------------------------------------------------------------------------- helpers


def _numel(tensors: list[torch.Tensor]) -> int:
    if not tensors:
        raise ValueError("a unit must have at least one trainable tensor to be scored")
    n = sum(int(t.numel()) for t in tensors)
    if n == 0:
        raise ValueError("a unit's trainable tensors have no elements; it cannot be scored")
    return n


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64)


def _grads(stats: UnitStats, criterion: str) -> list[torch.Tensor]:
    if stats.mean_grads is None:
        raise MissingStatistics(
            f"criterion {criterion!r} needs the unit's mean gradient over the round, but no "
            "gradient statistics were collected (collect 'grads' during the round's training steps)"
        )
    if len(stats.mean_grads) != len(stats.weights):
        raise ValueError(
            f"criterion {criterion!r}: got {len(stats.mean_grads)} gradient tensors for "
            f"{len(stats.weights)} weight tensors; they must correspond one to one"
        )
    for w, g in zip(stats.weights, stats.mean_grads):
        if tuple(w.shape) != tuple(g.shape):
            raise ValueError(
                f"criterion {criterion!r}: gradient shape {tuple(g.shape)} does not match "
                f"weight shape {tuple(w.shape)}"
            )
    return stats.mean_grads


# ----------------------------------------------------------------------------- criteria


def weight_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """Mean of w^2 over all elements (prune lowest)."""
    n = _numel(stats.weights)
    return float(sum(_f64(w).square().sum() for w in stats.weights) / n)


def zeros_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """Fraction of elements exactly 0 (prune highest)."""
    n = _numel(stats.weights)
    return sum(int((w.detach() == 0).sum()) for w in stats.weights) / n


def threshold_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """Fraction of elements with |w| < threshold (prune highest)."""
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise UserError(
            f"the 'threshold' criterion needs a finite threshold t >= 0, got {threshold!r}; "
            "set e.g. threshold: 1e-3"
        )
    n = _numel(stats.weights)
    return sum(int((_f64(w).abs() < threshold).sum()) for w in stats.weights) / n


def activation_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """The unit's own mean |delta output| over tokens and steps (prune lowest)."""
    if stats.mean_abs_activation is None:
        raise MissingStatistics(
            "criterion 'activation' needs the unit's mean absolute output over the round, but no "
            "activation statistics were collected (collect 'activation' during the round)"
        )
    return float(stats.mean_abs_activation)


def taylor_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """Mean over elements of |w * g| -- unsigned, unlike the authors' code (prune lowest)."""
    grads = _grads(stats, "taylor")
    n = _numel(stats.weights)
    return float(sum((_f64(w) * _f64(g)).abs().sum() for w, g in zip(stats.weights, grads)) / n)


def gradient_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """Mean over elements of |g| (prune lowest)."""
    grads = _grads(stats, "gradient")
    n = _numel(stats.weights)
    return float(sum(_f64(g).abs().sum() for g in grads) / n)


def removal_score(stats: UnitStats, threshold: float = 1e-3) -> float:
    """sqrt(mean over steps of <dL/d delta, delta>^2) / |w|: the loss change of removing the unit per
    parameter it costs (prune lowest)."""
    if stats.removal_effect is None:
        raise MissingStatistics(
            "criterion 'removal' needs <dL/d delta, delta> of the unit's output over the round, but none was "
            "collected (collect 'activation' during training steps that run backward)"
        )
    return math.sqrt(stats.removal_effect) / _numel(stats.weights)


CRITERIA: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion("weight", frozenset(), "lowest", weight_score),
        Criterion("zeros", frozenset(), "highest", zeros_score),
        Criterion("threshold", frozenset(), "highest", threshold_score),
        Criterion("activation", frozenset({"activation"}), "lowest", activation_score),
        Criterion("taylor", frozenset({"grads"}), "lowest", taylor_score),
        Criterion("gradient", frozenset({"grads"}), "lowest", gradient_score),
        Criterion("removal", frozenset({"activation", "removal"}), "lowest", removal_score, hybrid=False, peer_relative=False),
    )
}
HYBRID_CRITERIA = tuple(name for name, c in CRITERIA.items() if c.hybrid)  # the paper's six


def get_criterion(name: str) -> Criterion:
    """The registry entry, or a UserError listing the known names."""
    try:
        return CRITERIA[name]
    except (KeyError, TypeError):
        raise UserError(
            f"unknown pruning criterion {name!r}: prunepeft knows {', '.join(CRITERIA)}; "
            "fix the criterion name in the configuration or on the command line"
        ) from None


def needed_statistics(names) -> frozenset[str]:
    """Union of the statistics ('grads', 'activation') the named criteria need."""
    out: frozenset[str] = frozenset()
    for name in names:
        out |= get_criterion(name).needs
    return out


def planned_criteria(strategy: str) -> tuple[str, ...]:
    """The criteria a search with `strategy` may score with: the one it names, else the hybrid's six."""
    return (strategy,) if strategy in CRITERIA else HYBRID_CRITERIA


def collects_removal(strategy: str) -> bool:
    """Whether a search with `strategy` needs the removal statistic (it holds each unit's output until backward)."""
    return "removal" in needed_statistics(planned_criteria(strategy))


def score(name: str, stats: UnitStats, threshold: float = 1e-3) -> float:
    """Raw score of one unit under criterion `name` (orientation: see `prunability`)."""
    return get_criterion(name).fn(stats, threshold)


def score_units(name: str, stats: dict, threshold: float, where: str) -> dict:
    """unit -> raw score under `name`; a non-finite score stops the search, naming where."""
    out = {}
    for unit, st in stats.items():
        v = score(name, st, threshold)
        if not math.isfinite(v):
            raise UserError(f"{where}: criterion {name!r} gave unit {unit.name} the score {v}; the supernet's statistics are not finite "
                            "(the training diverged). Lower --learning-rate, or check the data for extreme values")
        out[unit] = v
    return out


def prunability(name: str, raw: float) -> float:
    """Orient a raw score so that larger = more prunable: -raw for 'lowest', raw for 'highest'."""
    c = get_criterion(name)
    raw = float(raw)
    return -raw if c.prune_first == "lowest" else raw
