"""The equal-budget baselines a search is measured against, as configurations of units:

| method            | units                                                                   |
|-------------------|-------------------------------------------------------------------------|
| lora, dora        | the kind's default target (q+v) in every layer; rank --rank, else the largest that fits the budget |
| lora-all          | LoRA on every linear of every layer (peft's target_modules="all-linear" inside the layers): |
|                   | the largest uniform rank that fits, then +1 rank on modules (attention first, top layers   |
|                   | first) while the budget allows                                                            |
| adapter, parallel-adapter | every layer; width --bottleneck, else the widest that fits the budget |
| bias              | BitFit: a bias on every projection of every layer (needs less than the budget) |
| adalora           | trained by peft's AdaLoRA itself (train/adalora.py), not a unit list       |
| full              | no units: the whole backbone is trained                                 |
"""

from __future__ import annotations

from prunepeft.errors import UserError
from prunepeft.modules.kinds import KINDS, TARGETS, lora_rank_fill
from prunepeft.space.units import Unit, everywhere

METHODS = tuple(KINDS) + ("lora-all", "adalora", "full")


def check_method(method: str, flag: str = "--method") -> None:
    if method not in METHODS:
        raise UserError(f"unknown {flag} {method!r}; choose one of {', '.join(METHODS)}")


def _widest(kind: str, probe, budget: int, num_layers: int) -> int:
    size = 0
    while probe_count(probe, everywhere(kind, size + 1, num_layers)) <= budget:
        size += 1
    if size == 0:
        raise UserError(f"--budget {budget:,} is below one {kind} of size 1 in every layer; raise the budget or pass --rank/--bottleneck")
    return size


def probe_count(probe, units) -> int:
    return sum(probe.param_count(u) for u in units)


def baseline_units(method: str, probe, budget: int, rank: int | None = None, bottleneck: int | None = None) -> list[Unit]:
    """The units of an everywhere baseline on the model `probe` describes (a Supernet)."""
    check_method(method)
    layers = probe.arch.num_layers
    if method == "full":
        return []
    if method == "adalora":
        raise ValueError("AdaLoRA is trained by peft, not as a unit list")
    if method == "lora-all":
        per_rank = {(layer, t): probe.param_count(Unit(layer, "lora", 1, t)) for t in TARGETS for layer in reversed(range(layers))}
        r, ranks = lora_rank_fill(per_rank, budget)
        if r == 0:
            raise UserError(f"--budget {budget:,} is below LoRA rank 1 on every linear ({sum(per_rank.values()):,} params); raise the budget")
        return sorted(Unit(layer, "lora", rank_, t) for (layer, t), rank_ in ranks.items())
    if not KINDS[method].sized:
        units = everywhere(method, 1, layers)
        if probe_count(probe, units) > budget:
            raise UserError(f"--budget {budget:,} is below {method} on every projection ({probe_count(probe, units):,} params); raise the budget")
        return units
    size = rank if method in ("lora", "dora") else bottleneck
    if size is None:
        size = _widest(method, probe, budget, layers)
    return everywhere(method, size, layers)
