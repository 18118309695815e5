"""Warm-up (method.md §5): each criterion alone prunes the full supernet for a few turns on the
compact subset d; how often it pruned each partition gives the tendency matrix F and the
per-partition strategy S_H."""

from __future__ import annotations

from prunepeft.criteria.scores import CRITERIA, needed_statistics, prunability, score
from prunepeft.hybrid.warmup import assign_strategy, tendency_matrix
from prunepeft.train.loop import train

STAGE_WARMUP = 100


def run_warmup(session, space, compact_encoded, partition, budget: int, log=print):
    """Each criterion prunes k units per turn, for at most `warmup_turns` turns and never below the
    budget: on a small supernet, pruning further would remove nearly every unit under every
    criterion and leave F uniform."""
    cfg = session.cfg.search
    pruned_by: dict[str, list] = {}
    examples = 0
    for index, name in enumerate(CRITERIA):
        stage = STAGE_WARMUP + index
        supernet = session.build_supernet(space, stage=stage)
        needs = needed_statistics([name])
        pruned = []
        for turn in range(cfg.warmup_turns):
            if supernet.trainable_unit_params() <= budget:
                break
            train(supernet, session.loader(compact_encoded, train=True, stage=stage * 100 + turn), session.cfg.train,
                  epochs=cfg.warmup_epochs, collect=("activation" in needs, "grads" in needs), desc=f"warm-up {name} {turn + 1}/{cfg.warmup_turns}")
            examples += cfg.warmup_epochs * len(compact_encoded)
            stats = supernet.unit_stats()
            # most prunable first; ties in Unit order
            order = sorted(supernet.alive, key=lambda u: (-prunability(name, score(name, stats[u], cfg.threshold)), u))
            for unit in order[: min(cfg.prune_per_round, len(order) - 1)]:
                if supernet.trainable_unit_params() <= budget:
                    break
                supernet.remove(unit)
                pruned.append(unit)
        pruned_by[name] = pruned
        log(f"warm-up {name}: pruned {', '.join(u.name for u in pruned)}")
    sizes: dict[str, int] = {}
    for unit in space:
        sizes[partition(unit)] = sizes.get(partition(unit), 0) + 1
    F = tendency_matrix(pruned_by, partition, sizes)
    return F, assign_strategy(F), {c: [u.name for u in us] for c, us in pruned_by.items()}, examples
