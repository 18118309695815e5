"""How much training the search may do: `--search-cost R` turned into examples per stage.

The rule (docs/method-notes.md, "Search cost"): the search's training work is at most R times the
final training's, where work = examples x the per-example cost of the network being trained:

    cost(net) = 2 * backbone params * (1 + units / 16) + 3 * trainable unit params

(a frozen weight costs a forward and an input-gradient product per token, a trained one also
its weight gradient; each unit also costs its own small kernels, statistics and optimiser
state: in a real search on MiniLM, 1 thread, the rounds took 24 ms per example with 24 alive
units and the final training 19.4 ms with 15, about 1/21 of the backbone's share per unit,
rounded up to 1/16; benchmarks/results/sst2-cost-calibration/).
The final network is priced at the budget with the number of units of average size that fit
it, the search at the whole supernet, so

    search examples S = R * (epochs * N) * cost(budget) / cost(supernet).

S is split: a shared first turn (the warm-up's first turn for every criterion, which is also
the first pruning round), the other criteria's warm-up turns, and the pruning rounds. Every
stage has a floor (a few optimiser steps), so a search on small data costs more than R: that
floor is the minimum work a search needs (`floor_examples`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

SHARED_SHARE = 0.25  # of S: the shared first turn (and first round)
TURNS_SHARE = 0.25  # of S: the per-criterion warm-up turns after the shared one
MIN_SHARED_STEPS = 8  # the shared turn trains on until the supernet has learned (search/learned.py)
MIN_TURN_STEPS = 1
MIN_ROUND_STEPS = 3
MIN_LOW_ROUNDS = 3  # --fidelity low: the shared turn and at least two more rounds, so pruning still iterates


@dataclass(frozen=True)
class Schedule:
    search_examples: int  # S before floors
    shared_examples: int
    turn_examples: int  # each criterion's turn after the shared one
    round_examples: int  # each pruning round after the first
    rounds: int  # expected pruning rounds (the shared turn is round 1)
    k: int  # units removed per round
    turns: int  # warm-up turns per criterion (the first is shared)
    criteria: int
    floored: bool  # some stage was raised to its floor: the search costs more than R

    @property
    def planned_examples(self) -> int:
        return self.shared_examples + self.criteria * (self.turns - 1) * self.turn_examples + (self.rounds - 1) * self.round_examples

    def to_dict(self) -> dict:
        return {**asdict(self), "planned_examples": self.planned_examples}


UNIT_OVERHEAD = 1 / 16  # of the backbone's per-example cost, per unit (measured on MiniLM; smaller on large models)


def network_cost(backbone_params: int, unit_params: int, units: float) -> float:
    return 2 * backbone_params * (1 + UNIT_OVERHEAD * units) + 3 * unit_params


def _units_to_remove(sizes: list[int], budget: int) -> int:
    """How many average-size units must go for the budget to hold."""
    mean = sum(sizes) / len(sizes)
    return len(sizes) - min(len(sizes), max(1, int(budget // mean)))


def expected_rounds(sizes: list[int], budget: int, k: int) -> int:
    """Rounds of k removals until the budget holds, removing average-size units, plus the last
    partial round that the budget rarely spares."""
    return max(1, math.ceil(_units_to_remove(sizes, budget) / k) + 1)


def units_per_round(sizes: list[int], budget: int, k_min: int, max_rounds: int) -> int:
    """k: at least `k_min`, and enough that about `max_rounds` rounds reach the budget. Every round
    has a floor of optimiser steps, so on a large space (SmolLM2: 180 units, 30 layers x 6 places)
    a fixed k = 4 meant 32 rounds, and the search trained on 2.2x the examples of a 512-sentence
    final training."""
    return max(k_min, math.ceil(_units_to_remove(sizes, budget) / max_rounds))


def search_examples(*, cost_ratio: float, final_examples: int, backbone_params: int, budget: int, sizes: list[int]) -> int:
    """S: the examples of supernet training that cost R times the final training."""
    supernet = network_cost(backbone_params, sum(sizes), len(sizes))
    final = network_cost(backbone_params, budget, budget / (sum(sizes) / len(sizes)))
    return int(cost_ratio * final_examples * final / supernet)


def _shared_examples(total: int, batch_size: int) -> int:
    """The shared turn's share of S, at least its floor."""
    return max(int(SHARED_SHARE * total), MIN_SHARED_STEPS * batch_size)


def shared_warmup_steps(planned_steps: int, final_examples: int, batch_size: int, warmup_ratio: float) -> int:
    """The shared turn's learning-rate warm-up: the final training's (warmup_ratio x its steps), at
    most half the turn's planned steps. The turn trains fresh units from the pretrained weights just
    as the final training does; warmed up over 6% of its own few steps instead (2 on glue/qnli), the
    first full-rate steps threw the QNLI supernet of seed 2 to the label prior, where it stayed for
    1,340 steps. Warmed up over all its planned steps, it reached the full rate only at its first
    "has it learned" check and SST-2 lost 1.2 points on each of 3 seeds (docs/method-notes.md,
    "The shared turn's warm-up")."""
    final_steps = math.ceil(final_examples / batch_size)
    return min(planned_steps // 2, int(warmup_ratio * final_steps))


def low_fidelity_rounds(*, cost_ratio: float, final_examples: int, backbone_params: int, budget: int, sizes: list[int],
                        batch_size: int) -> int:
    """--fidelity low: the pruning rounds after the shared turn that R pays for at their floor, once
    the shared turn's floor is paid (at least MIN_LOW_ROUNDS - 1). k grows so that these rounds reach
    the budget: on glue/qnli at R = 0.03 the floors of six rounds and six warm-up turns made the
    search cost 0.053 x the final training (docs/method-notes.md, "Search cost")."""
    total = search_examples(cost_ratio=cost_ratio, final_examples=final_examples, backbone_params=backbone_params,
                            budget=budget, sizes=sizes)
    return max(MIN_LOW_ROUNDS - 1, (total - _shared_examples(total, batch_size)) // (MIN_ROUND_STEPS * batch_size))


def plan(*, cost_ratio: float, final_examples: int, backbone_params: int, budget: int, sizes: list[int],
         k: int, turns: int, criteria: int, batch_size: int) -> Schedule:
    """Examples per stage for a search of relative cost `cost_ratio` (R)."""
    total = search_examples(cost_ratio=cost_ratio, final_examples=final_examples, backbone_params=backbone_params,
                            budget=budget, sizes=sizes)
    rounds = expected_rounds(sizes, budget, k)
    shared = _shared_examples(total, batch_size)
    other_turns = criteria * (turns - 1)
    turn = max(int(TURNS_SHARE * total / other_turns), MIN_TURN_STEPS * batch_size) if other_turns else 0
    rest = total - int(SHARED_SHARE * total) - (int(TURNS_SHARE * total) if other_turns else 0)
    per_round = max(int(rest / max(1, rounds - 1)), MIN_ROUND_STEPS * batch_size)
    planned = shared + other_turns * turn + (rounds - 1) * per_round
    return Schedule(total, shared, turn, per_round, rounds, k, turns, criteria, floored=planned > total)


def search_train_config(cfg, retry_scale: float = 1.0):
    """The training settings of every supernet training in the search: the final training's, with
    each learning rate times `search.learning_rate_scale` (the supernet sums up to several times the
    budget's units on one output; docs/method-notes.md, "The search's learning rate"), and times
    `retry_scale` once a stalled shared turn was retried at a lower rate (search/loop.py)."""
    scale = cfg.search.learning_rate_scale * retry_scale
    t = cfg.train
    if scale == 1.0:
        return t
    return replace(t, learning_rate=t.learning_rate * scale, head_learning_rate=t.head_learning_rate * scale,
                   kind_learning_rates={k: v * scale for k, v in t.kind_learning_rates.items()})
