"""The PrunePEFT search (paper Algorithm 1, method.md §5-§7), as one budgeted training run:

    build the supernet (every unit at every place of every layer)
    turn 1, shared: train it until it has learned, collecting every statistic
    warm-up: from that state, each criterion prunes alone for a few turns  -> strategy.json
    round 1 prunes the shared turn's scores with the hybrid (Eq. 1)
    while trainable unit params > budget:
        train the alive supernet on the next chunk of the stream (weights kept)
        score the alive units, p = softmax(Eq. 1); remove the top-k      -> trace.jsonl
    fill the budget with the last-pruned units that fit                  -> configuration.json

`--search-cost R` sizes every stage (search/schedule.py).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prunepeft.config import to_dict
from prunepeft.criteria.scores import CRITERIA, HYBRID_CRITERIA, collects_removal, needed_statistics, score_units
from prunepeft.data.subset import stratified_subset
from prunepeft.distributed import barrier, global_batch_size
from prunepeft.errors import UserError
from prunepeft.hybrid.combine import (
    hybrid_logits,
    layer_balanced_order,
    prune_order,
    pruning_probabilities,
    random_order,
    uniform_strategy,
)
from prunepeft.hybrid.warmup import check_strategy_covers, load_strategy, save_strategy
from prunepeft.io import append_jsonl, atomic_write_bytes, remove, write_json
from prunepeft.logs import get_logger
from prunepeft.search.budget import check_budget, parse_budget
from prunepeft.search.checkpoint import load_state, restore_weights, save_checkpoint
from prunepeft.search.collapse import PROBE_EXAMPLES, CollapseWatch
from prunepeft.search.learned import has_learned, prior_loss
from prunepeft.search.schedule import low_fidelity_rounds, plan, search_train_config, shared_warmup_steps, units_per_round
from prunepeft.search.stream import chunk
from prunepeft.search.warmup_run import run_warmup, tie_share
from prunepeft.space.partition import partition_of
from prunepeft.space.units import Unit, save_configuration, search_space
from prunepeft.train.fixed import configuration_meta
from prunepeft.train.loop import evaluate, seed_everything, tail_loss, train

STAGE_ROUND = 10_000
STRATEGIES = ("hybrid", "hybrid-global", "random", "none") + tuple(CRITERIA)
CHEAP = ("weight", "zeros", "threshold")  # need only the weights: always in the trace
MAX_SHARED_FACTOR = 31  # the shared turn may train on up to 31x its planned examples for the supernet to learn
RETRY_RATE_SCALE = 1 / 3  # a shared turn stuck at the label prior is retried once at this x the rate (method-notes)


@dataclass
class SearchResult:
    units: list[Unit]
    warmup_seconds: float
    rounds_seconds: float
    rounds: int
    search_epochs: float  # training examples seen during the search / size of the training data
    search_examples: int = 0
    tie_share: float | None = None
    filled: int = 0  # units given back by the fill
    budget: int = 0
    used: int = 0  # unit parameters of the configuration
    weights: dict | None = None  # the surviving units' and the head's tensors at the search's end (for a warm start)
    rate_retry_scale: float = 1.0  # RETRY_RATE_SCALE when the shared turn was retried at a lower rate

    def cost_metrics(self) -> dict:
        return {"search_seconds": self.warmup_seconds + self.rounds_seconds, "warmup_seconds": self.warmup_seconds,
                "rounds_seconds": self.rounds_seconds, "search_rounds": self.rounds, "search_epochs": self.search_epochs,
                "search_examples": self.search_examples, "warmup_tie_share": self.tie_share, "fill_units": self.filled,
                "budget": self.budget, "budget_used": self.used / self.budget if self.budget else None,
                "search_rate_retry_scale": self.rate_retry_scale}


def _check_same_config(out: Path, cfg, resume: bool) -> None:
    """--resume continues the search that is in `out`, so it must be the same search."""
    saved_path = out / "config.json"
    current = {k: v for k, v in to_dict(cfg).items() if k != "output_dir"}
    if resume and saved_path.is_file():
        saved = {k: v for k, v in json.loads(saved_path.read_text()).items() if k != "output_dir"}
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise UserError(f"--resume: the search in {out} was started with other settings ({', '.join(changed)} differ); "
                            "resume with the same flags, or start afresh without --resume")


def _truncate_trace(path: Path, rounds: int) -> None:
    """Keep the trace lines of checkpointed rounds: a kill between the trace line and the
    checkpoint must not leave a round twice in the trace after --resume."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)[:rounds]
        atomic_write_bytes(path, "".join(lines).encode())


def _scores(stats, criteria, threshold, where: str):
    names = [c for c in CRITERIA if c in CHEAP or c in criteria]
    return {c: score_units(c, stats, threshold, where) for c in names}


def _choose_pruned(order, sizes, alive, budget, k):
    """The top-k of `order`; the last round only until the budget holds. The last unit that fits
    the budget always stays, or no configuration could meet it."""
    params = sum(sizes[u] for u in alive)
    left, pruned = list(alive), []
    for unit in order:
        if len(pruned) == k or params <= budget:
            break
        if [u for u in left if sizes[u] <= budget] == [unit]:
            continue
        left.remove(unit)
        pruned.append(unit)
        params -= sizes[unit]
    return pruned


def fill_budget(alive, pruned_rounds: list[list[Unit]], sizes: dict, budget: int) -> list[Unit]:
    """Units given back to use the budget (method-notes, "The whole budget"): the pruned units, the
    last pruned first (they survived longest) and within a round the least prunable first, while
    they fit. The final training re-initialises every unit, so a given-back unit costs nothing."""
    params = sum(sizes[u] for u in alive)
    added = []
    for pruned in reversed(pruned_rounds):
        for unit in reversed(pruned):
            if params + sizes[unit] <= budget:
                added.append(unit)
                params += sizes[unit]
    return added


def search(session, out: Path, *, resume: bool = False, log=None, on_round=None) -> SearchResult:
    """Search `session`'s data into the folder `out`. `log(message)` gets the status lines (default: the
    "prunepeft" logger), `on_round(record)` each trace line as it is written (for trackers)."""
    log = log or get_logger(__name__).info
    cfg = session.cfg.search
    probe = session.probe()
    num_layers = probe.arch.num_layers
    space = search_space(cfg.space, num_layers)
    sizes = {u: probe.param_count(u) for u in space}
    total_budget = parse_budget(cfg.budget, probe.backbone_params())
    floor = search_space(cfg.floor, num_layers, "--floor") if cfg.floor else []
    floor_params = sum(probe.param_count(u) for u in floor)
    if floor and floor_params >= total_budget:
        raise UserError(f"--floor takes {floor_params:,} params, which leaves nothing of the budget {total_budget:,} to search; "
                        "raise --budget or use a smaller floor (e.g. lora-1 on fewer targets)")
    budget = total_budget - floor_params  # what the search places (docs/method-notes.md, "A floor")
    partition = partial(partition_of, num_layers=num_layers, use_blocks=cfg.strategy != "hybrid-global")
    if cfg.strategy != "none":
        check_budget(budget, list(sizes.values()), cfg.budget)
    try:
        compact_rows = stratified_subset(session.train_rows, min(cfg.warmup_samples, len(session.train_rows)),
                                         seed=session.cfg.seed, is_regression=session.task.is_regression)
    except UserError as e:
        raise UserError(f"--warmup-samples {cfg.warmup_samples} is too small for the label set: {e}") from None
    compact = session.encode(compact_rows)
    low = cfg.fidelity == "low"
    stream_data = compact if low else session.train_encoded
    batch = global_batch_size(session.cfg.train.per_device_train_batch_size)  # the schedule's floors count optimiser steps
    hybrid = cfg.strategy in ("hybrid", "hybrid-global") and not cfg.strategy_from
    cost = dict(cost_ratio=cfg.low_fidelity_cost if low else cfg.search_cost,
                final_examples=_final_examples(session),
                backbone_params=probe.backbone_params(), budget=budget, sizes=list(sizes.values()))
    max_rounds = min(cfg.max_rounds, low_fidelity_rounds(**cost, batch_size=batch)) if low else cfg.max_rounds
    k = units_per_round(list(sizes.values()), budget, cfg.prune_per_round, max_rounds)
    schedule = plan(**cost, k=k, turns=cfg.turns() if hybrid else 1, criteria=len(HYBRID_CRITERIA), batch_size=batch)
    prior = prior_loss(stream_data, session.task.is_regression)

    state = load_state(out) if resume else None
    _check_same_config(out, session.cfg, resume)
    alive = [Unit.parse(n) for n in state["alive"]] if state else list(space)
    supernet = session.build_supernet(alive, stage=STAGE_ROUND)
    supernet.removal_statistics = collects_removal(cfg.strategy)
    if state:
        restore_weights(out, supernet)
    barrier()  # every process has read the checkpoint before the main process rewrites the folder
    # the checkpoint is sound: only now touch the folder
    write_json(out / "config.json", to_dict(session.cfg))
    if not resume:
        for name in ("trace.jsonl", "search_state.json", "strategy.json"):
            remove(out / name)
    _truncate_trace(out / "trace.jsonl", state["round"] if state else 0)
    labels = {partition(u) for u in space}

    def params():
        return sum(sizes[u] for u in supernet.alive)

    if floor:
        log(f"floor: {len(floor)} units kept in every configuration take {floor_params:,} of the {total_budget:,} budget")
    log(f"search: {len(space)} units, {sum(sizes.values()):,} params -> budget {budget:,}; strategy {cfg.strategy}; {schedule.k} units "
        f"pruned per round; "
        f"{schedule.planned_examples:,} training examples planned (search cost {cfg.low_fidelity_cost if low else cfg.search_cost:g}"
        f"{', raised to the minimum a search needs' if schedule.floored else ''})")
    rnd = state["round"] if state else 0
    seen = state["examples_seen"] if state else 0
    position = state["stream_position"] if state else 0
    warmup_seconds = state["warmup_seconds"] if state else 0.0
    rounds_seconds = state["rounds_seconds"] if state else 0.0
    pruned_rounds = [[Unit.parse(n) for n in r] for r in state["pruned_rounds"]] if state else []
    retry_scale = state.get("rate_retry_scale", 1.0) if state else 1.0
    strategy, shared_stats = None, None

    if cfg.strategy == "none":
        strategy = {}
    elif state:
        if cfg.strategy in ("hybrid", "hybrid-global"):
            strategy = load_strategy(out)[1]
        else:
            strategy = {} if cfg.strategy == "random" else uniform_strategy(cfg.strategy, labels)
    else:
        start = time.perf_counter()
        history, examples, retry_scale = _shared_turn(session, supernet, stream_data, position, schedule.shared_examples, prior, log)
        position += examples
        seen += examples
        shared_stats = supernet.unit_stats()
        shared_seconds = time.perf_counter() - start
        strategy, turn_examples = _strategy(session, out, supernet, shared_stats, compact, partition, labels, budget, schedule,
                                            retry_scale, log)
        seen += turn_examples
        warmup_seconds = time.perf_counter() - start - shared_seconds
        rounds_seconds = shared_seconds

    needs = needed_statistics({s for ss in strategy.values() for s in ss}) if cfg.strategy not in ("random", "none") else frozenset()
    while cfg.strategy != "none" and params() > budget:
        start = time.perf_counter()
        stage = STAGE_ROUND + 1 + rnd
        if shared_stats is not None and rnd == 0:
            stats, train_loss = shared_stats, history[-1]["train_loss"]
        else:
            seed_everything(session.cfg.seed, stage)
            if cfg.reinit == "reinit":
                supernet.reinitialise()
            data = chunk(stream_data, position, schedule.round_examples, session.cfg.seed)
            history = train(supernet, session.loader(data, train=True, stage=stage, shuffle=False), search_train_config(session.cfg, retry_scale),
                            epochs=1,
                            collect=("activation" in needs, "grads" in needs), desc=f"round {rnd + 1}")
            position += len(data)
            seen += len(data)
            stats, train_loss = supernet.unit_stats(), history[-1]["train_loss"]
        learned = has_learned(history[-1]["tail_loss"], prior, cfg.learned_ratio)
        if not learned:  # said, not hidden: the shared turn guarantees only the first round
            get_logger(__name__).warning(
                f"round {rnd + 1}: the supernet's training loss {history[-1]['tail_loss']:.4f} is back near the loss of predicting "
                f"the label prior ({prior:.4f}); this round's scores rank units of a supernet that has not learned")
        scores = _scores(stats, {s for ss in strategy.values() for s in ss}, cfg.threshold, f"round {rnd + 1}")
        if cfg.strategy == "random":
            order, probs = random_order(supernet.alive, session.cfg.seed * 1000 + rnd), {}
        else:
            probs = pruning_probabilities(hybrid_logits(scores, strategy, partition, supernet.alive, cfg.tau, fair=cfg.fairness(),
                                                              coverage_ranks=cfg.coverage_ranks))
            order = prune_order(probs)
            if cfg.balance_layers:
                order = layer_balanced_order(order, sizes)
        before = list(supernet.alive)
        pruned = _choose_pruned(order, sizes, before, budget, schedule.k)
        for unit in pruned:
            supernet.remove(unit)
        pruned_rounds.append(pruned)
        rnd += 1
        rounds_seconds += time.perf_counter() - start
        dev = None
        if cfg.eval_rounds:  # for the trace only: not part of the method, not search cost
            dev = evaluate(supernet.model, session.loader(session.dev_encoded, train=False), session.task)
        record = {
            "round": rnd, "alive": [u.name for u in before], "pruned": [u.name for u in pruned],
            "scores": {c: {u.name: v for u, v in s.items()} for c, s in scores.items()},
            "hybrid": {u.name: p for u, p in probs.items()}, "trainable_params": params(), "budget": budget,
            "train_loss": train_loss, "learned": learned, "dev": dev, "seconds": time.perf_counter() - start,
        }
        append_jsonl(out / "trace.jsonl", record)
        if on_round:
            on_round(record)
        log(f"round {rnd}: pruned {', '.join(u.name for u in pruned)} -> {len(supernet.alive)} units, {params():,} params")
        save_checkpoint(out, {"round": rnd, "alive": [u.name for u in supernet.alive], "warmup_done": True,
                              "warmup_seconds": warmup_seconds, "rounds_seconds": rounds_seconds, "examples_seen": seen,
                              "stream_position": position, "pruned_rounds": [[u.name for u in r] for r in pruned_rounds],
                              "rate_retry_scale": retry_scale}, supernet)
    added = fill_budget(supernet.alive, pruned_rounds, sizes, budget) if cfg.strategy != "none" else []
    searched = sorted(set(supernet.alive) | set(added))
    units = sorted(set(searched) | set(floor))
    used = sum(sizes[u] for u in searched) + floor_params
    if added:
        log(f"fill: {', '.join(u.name for u in added)} given back -> {used:,} of {total_budget:,} params")
    ties = tie_share(strategy) if cfg.strategy in ("hybrid", "hybrid-global") else None
    result = SearchResult(units, warmup_seconds, rounds_seconds, rnd, seen / max(1, len(session.train_encoded)), seen, ties,
                          len(added), total_budget, used, {**supernet.unit_state_dict(), **supernet.head_state_dict()}, retry_scale)
    save_configuration(units, out / "configuration.json", {**configuration_meta(session, supernet), "budget": total_budget,
                       "trainable_params": used, "strategy": cfg.strategy})
    write_json(out / "search.json", {**result.cost_metrics(), "budget": total_budget, "space_params": sum(sizes.values()),
                                     "space_units": len(space), "units": [u.name for u in units], "trainable_params": used,
                                     "floor": [u.name for u in floor], "floor_params": floor_params,
                                     "budget_used": used / total_budget, "schedule": schedule.to_dict(), "prior_loss": prior,
                                     "rounds_not_learned": _rounds_not_learned(out / "trace.jsonl")})
    return result


def _final_examples(session) -> int:
    """The examples the final training will train on: the search's cost and warm-up are sized by it."""
    return int(session.cfg.train.num_train_epochs * len(session.train_encoded))


def _rounds_not_learned(trace: Path) -> int:
    """Rounds whose supernet trained at the label prior's loss (the trace covers resumed rounds too)."""
    rows = [json.loads(line) for line in trace.read_text().splitlines()] if trace.is_file() else []
    return sum(1 for r in rows if r.get("learned") is False)


def _shared_turn(session, supernet, stream_data, position: int, size: int, prior: float, log):
    """Turn 1, shared by every criterion and by the search: train the whole supernet, collecting
    every statistic, until it has learned (search/learned.py). It is ONE training run with one
    optimiser and one schedule (the final training's warm-up, at most half the planned `size`, then a
    linear decay over the longest turn allowed), checked after every step once `size` examples are done: restarting the
    optimiser and the rate's warm-up and decay for each extension, as before, spent on GLUE RTE 4.3
    epochs before the supernet learned (docs/method-notes.md). A turn that never leaves the label
    prior, or whose outputs stop depending on the input (search/collapse.py), is retried once from the
    same fresh weights, on the next data, at RETRY_RATE_SCALE of the rate: a supernet thrown to the
    prior by full-rate steps stays there (glue/qnli seed 1), and at a third of the rate the same turn
    learns. Returns (history, examples of both tries, the rate scale the rest of the search must train at)."""
    fresh = supernet.unit_state_dict(), supernet.head_state_dict()
    history, examples, learned, watch = _train_until_learned(session, supernet, stream_data, position, size, prior, 1.0,
                                                             STAGE_ROUND, log)
    if learned:
        return history, examples, 1.0
    get_logger(__name__).warning(
        f"shared turn: the supernet has not learned after {examples:,} training examples (training loss "
        f"{history[-1]['tail_loss']:.4f}, label prior {prior:.4f}{_collapse_words(watch)}); retrying from fresh units at "
        f"{RETRY_RATE_SCALE:.3g} x the search's learning rate, which the rest of the search keeps")
    supernet.load_unit_state_dict(fresh[0])
    supernet.load_head_state_dict(fresh[1])
    retry, more, learned, watch = _train_until_learned(session, supernet, stream_data, position + examples, size, prior,
                                                       RETRY_RATE_SCALE, STAGE_ROUND - 1, log)
    examples += more
    if not learned:
        loss = retry[-1]["tail_loss"]
        raise UserError(f"the supernet has not learned after {examples:,} training examples, at the search's learning rate and at "
                        f"{RETRY_RATE_SCALE:.3g} of it: its training loss {loss:.4f} stays near the loss of predicting the label "
                        f"prior ({prior:.4f}){_collapse_words(watch)}, so every criterion would score noise. Check the labels, "
                        "use more training data, or "
                        "set the search's rate yourself (--set search.learning_rate_scale=0.1, or a higher --learning-rate)")
    return retry, examples, RETRY_RATE_SCALE


def _train_until_learned(session, supernet, stream_data, position: int, size: int, prior: float, retry_scale: float, stage: int,
                         log):
    """One try of the shared turn: (history, examples trained, whether it has learned, its CollapseWatch
    or None). It ends when the supernet has learned, has collapsed, or has trained MAX_SHARED_FACTOR x `size`."""
    cfg, ratio = search_train_config(session.cfg, retry_scale), session.cfg.search.learned_ratio
    batch = global_batch_size(cfg.per_device_train_batch_size)
    planned_steps = max(1, math.ceil(size / batch))
    warmup = shared_warmup_steps(planned_steps, _final_examples(session), batch, cfg.warmup_ratio)
    seed_everything(session.cfg.seed, stage)
    data = chunk(stream_data, position, size * MAX_SHARED_FACTOR, session.cfg.seed)

    watch = _collapse_watch(session, supernet, planned_steps)

    def learned_or_collapsed(losses: list[float]) -> bool:
        if len(losses) >= planned_steps and has_learned(tail_loss(losses), prior, ratio):
            return True
        return watch is not None and watch.check(len(losses))

    history = train(supernet, session.loader(data, train=True, stage=stage, shuffle=False), cfg, epochs=1,
                    collect=(True, True), desc="shared turn (until learned)" + ("" if retry_scale == 1.0 else ", retry"),
                    stop=learned_or_collapsed, warmup_steps=warmup)
    examples, loss = min(len(data), history[-1]["steps"] * batch), history[-1]["tail_loss"]
    learned_now = has_learned(loss, prior, ratio)
    if examples > size and learned_now:
        log(f"shared turn: the supernet learned after {examples:,} training examples ({size:,} planned; train loss {loss:.4f} "
            f"below {ratio:g} x {prior:.4f}, the loss of predicting the label prior)")
    return history, examples, learned_now, watch


def _collapse_watch(session, supernet, planned_steps: int) -> CollapseWatch | None:
    """None for a causal LM: its outputs are next-token logits, which vary with the input even at the prior."""
    if session.task.is_causal_lm:
        return None
    probe = session.train_encoded[:PROBE_EXAMPLES]
    return CollapseWatch(supernet.model, session.loader(probe, train=False), planned_steps)


def _collapse_words(watch: CollapseWatch | None) -> str:
    if watch is None or not watch.collapsed:
        return ""
    return (f"; its outputs no longer depend on the input: their spread over {PROBE_EXAMPLES} training examples fell to "
            f"{watch.readings[-1]:.2g} from {watch.start:.2g} at the start")


def _strategy(session, out: Path, supernet, shared_stats, compact, partition, labels, budget, schedule, retry_scale: float, log):
    """The map partition -> criteria for this search, and the warm-up examples it cost."""
    cfg = session.cfg.search
    if cfg.strategy == "random":
        return {}, 0
    if cfg.strategy not in ("hybrid", "hybrid-global"):
        return uniform_strategy(cfg.strategy, labels), 0
    if cfg.strategy_from:
        F, strategy, _ = load_strategy(cfg.strategy_from)
        check_strategy_covers(strategy, labels, source=str(cfg.strategy_from))
        save_strategy(out, F, strategy, meta={"reused_from": str(cfg.strategy_from)})
        return strategy, 0
    F, strategy, leaning, pruned, examples = run_warmup(session, supernet, shared_stats, compact, partition, budget,
                                                        schedule.turn_examples, schedule.k, log, retry_scale)
    save_strategy(out, F, strategy, meta={"warmup_pruned": pruned, "warmup_samples": len(compact), "warmup_examples": examples,
                                          "tie_share": tie_share(strategy), "tiebreak_leaning": leaning})
    return strategy, examples
