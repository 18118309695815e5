"""Warm-up (method.md §5) with a shared first turn: every criterion starts from the same trained
supernet (the search's first turn, already trained and scored), prunes its k most prunable units,
then trains on the compact subset d and prunes again for the remaining turns. Between criteria the
supernet goes back to the shared state, and the search's rounds continue from it, so the first
turn is paid for once. With several processes, the criteria are shared out among them."""

from __future__ import annotations

from prunepeft.criteria.fair import oriented
from prunepeft.criteria.scores import HYBRID_CRITERIA, needed_statistics, score_units
from prunepeft.distributed import gather, global_batch_size, num_processes, process_index
from prunepeft.hybrid.warmup import assign_strategy, tendency_matrix
from prunepeft.search.schedule import search_train_config
from prunepeft.space.units import Unit
from prunepeft.train.loop import seed_everything, train

STAGE_WARMUP = 100


def criterion_order(name: str, stats: dict, threshold: float, fair: bool | str, where: str = "warm-up") -> list:
    """Alive units, most prunable first under one criterion; ties in Unit order. Empty when the
    criterion cannot tell the units apart (all equal, e.g. 'zeros' once no weight is exactly 0):
    pruning by the tie-break alone would put the first layers into F for no reason."""
    q = oriented(name, score_units(name, stats, threshold, where), fair)
    if len(set(q.values())) <= 1:
        return []
    return sorted(q, key=lambda u: (-q[u], u))


def run_warmup(session, supernet, shared_stats, compact, partition, budget: int, turn_examples: int, k: int, log,
               retry_scale: float = 1.0):
    """Returns (F, strategy, leaning, {criterion: pruned unit names}, examples trained), where
    leaning[s][P] is the mean prunability percentile of P's units under s at the shared turn (the
    tie-break of F). Leaves the supernet as it found it: every unit alive, the shared weights.

    The criteria's runs are independent, so with several processes each process runs its share of
    them alone, on the whole compact subset at the global batch size -- exactly what one process
    does -- and the results are gathered; every process then holds all of them."""
    processes, rank = num_processes(), process_index()
    runs = [_criterion_run(session, supernet, shared_stats, compact, partition, budget, turn_examples, k, index, name,
                           local=processes > 1, retry_scale=retry_scale)
            for index, name in enumerate(HYBRID_CRITERIA) if index % processes == rank]
    runs = sorted(gather(runs), key=lambda r: HYBRID_CRITERIA.index(r["criterion"]))
    pruned_by: dict[str, list] = {}
    leaning: dict[str, dict[str, float]] = {}
    for run in runs:
        for line in run["log"]:
            log(line)
        pruned_by[run["criterion"]] = [Unit.parse(n) for n in run["pruned"]]
        leaning[run["criterion"]] = run["leaning"]
    sizes: dict[str, int] = {}
    for unit in supernet.alive:
        sizes[partition(unit)] = sizes.get(partition(unit), 0) + 1
    F = tendency_matrix(pruned_by, partition, sizes)
    examples = sum(run["examples"] for run in runs)
    return F, assign_strategy(F, leaning), leaning, {c: [u.name for u in us] for c, us in pruned_by.items()}, examples


def _criterion_run(session, supernet, shared_stats, compact, partition, budget: int, turn_examples: int, k: int, index: int, name: str,
                   local: bool, retry_scale: float) -> dict:
    """One criterion's warm-up from the shared state, which it restores afterwards. A plain dict
    (criterion, pruned unit names, leaning, examples, log lines) so processes can exchange it."""
    cfg = session.cfg.search
    units_state, head_state = supernet.unit_state_dict(), supernet.head_state_dict()
    lines, examples = [], 0
    first_order = criterion_order(name, shared_stats, cfg.threshold, cfg.fairness(), "warm-up, shared turn")  # turn 1: every unit alive
    leaning = mean_percentile(first_order, partition)
    stats, pruned = shared_stats, []
    for turn in range(cfg.turns()):
        if turn > 0:
            stage = STAGE_WARMUP + 10 * index + turn
            seed_everything(session.cfg.seed, stage)
            needs = needed_statistics([name])
            batch = global_batch_size(session.cfg.train.per_device_train_batch_size)
            train(supernet, session.loader(compact, train=True, stage=stage, batch_size=batch), search_train_config(session.cfg, retry_scale),
                  epochs=turn_examples / len(compact), collect=("activation" in needs, "grads" in needs),
                  desc=f"warm-up {name} {turn + 1}/{cfg.turns()}", local=local)
            examples += turn_examples
            stats = supernet.unit_stats()
        order = first_order if turn == 0 else criterion_order(name, {u: stats[u] for u in supernet.alive}, cfg.threshold, cfg.fairness(),
                                                                      f"warm-up turn {turn + 1} of {name}")
        if not order:
            lines.append(f"warm-up {name}: all units score the same in turn {turn + 1}, so it prunes nothing")
            break
        for unit in order[: min(k, len(order) - 1)]:
            if supernet.trainable_unit_params() <= budget:
                break
            supernet.remove(unit)
            pruned.append(unit)
        if supernet.trainable_unit_params() <= budget:
            break
    lines.append(f"warm-up {name}: pruned {', '.join(u.name for u in pruned)}")
    for unit in pruned:  # back to the shared state
        supernet.add(unit)
    supernet.load_unit_state_dict(units_state)
    supernet.load_head_state_dict(head_state)
    return {"criterion": name, "pruned": [u.name for u in pruned], "leaning": leaning, "examples": examples, "log": lines}


def mean_percentile(order: list, partition) -> dict[str, float]:
    """partition -> mean prunability percentile of its units in one criterion's order (1 = most
    prunable); {} for a criterion that could not tell the units apart. Breaks ties of F."""
    n = len(order)
    sums: dict[str, list[float]] = {}
    for rank, unit in enumerate(order):
        sums.setdefault(partition(unit), []).append(1.0 - rank / max(1, n - 1))
    return {label: sum(v) / len(v) for label, v in sums.items()}


def tie_share(strategy: dict) -> float:
    """Share of partitions whose strategy is a tie of several criteria."""
    return sum(len(c) > 1 for c in strategy.values()) / len(strategy) if strategy else 0.0


def one_turn_warmup(stats: dict, sizes: dict, partition, budget: int, k: int, threshold: float, fair: bool | str):
    """The warm-up of `run_warmup` with a single (shared) turn, computed from the statistics alone
    without touching a supernet: each criterion's k most prunable units (fewer where the budget is met
    first) make F. For a search that cannot rewind training, such as inside a user's Trainer
    (callback.py). Returns (F, strategy, leaning, {criterion: pruned units})."""
    alive = sorted(stats)
    pruned_by: dict[str, list] = {}
    leaning: dict[str, dict[str, float]] = {}
    for name in HYBRID_CRITERIA:
        order = criterion_order(name, stats, threshold, fair)
        leaning[name] = mean_percentile(order, partition)
        params, pruned = sum(sizes[u] for u in alive), []
        for unit in order[: min(k, len(order) - 1)]:
            if params <= budget:
                break
            pruned.append(unit)
            params -= sizes[unit]
        pruned_by[name] = pruned
    counts: dict[str, int] = {}
    for unit in alive:
        counts[partition(unit)] = counts.get(partition(unit), 0) + 1
    F = tendency_matrix(pruned_by, partition, counts)
    return F, assign_strategy(F, leaning), leaning, pruned_by
