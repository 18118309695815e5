"""The PrunePEFT search (paper Algorithm 1, method.md §5-§7):

    build the supernet (every unit in every layer)
    warm-up: pick a criterion per partition (or reuse one)          -> strategy.json
    while trainable unit params > budget:
        train the alive supernet one round, collecting statistics
        score the alive units, p = softmax(Eq. 1); remove the top-k  -> trace.jsonl
        re-initialise the survivors (or keep them)
    the survivors are the configuration                            -> configuration.json
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prunepeft.config import to_dict
from prunepeft.criteria.scores import CRITERIA, needed_statistics, score
from prunepeft.data.subset import stratified_subset
from prunepeft.errors import UserError
from prunepeft.hybrid.combine import (
    hybrid_logits,
    prune_order,
    pruning_probabilities,
    random_order,
    uniform_strategy,
)
from prunepeft.hybrid.warmup import check_strategy_covers, load_strategy, save_strategy
from prunepeft.io import append_jsonl, atomic_write_bytes, write_json
from prunepeft.search.budget import check_budget, parse_budget
from prunepeft.search.checkpoint import load_state, restore_weights, save_checkpoint
from prunepeft.search.warmup_run import run_warmup
from prunepeft.space.partition import partition_of
from prunepeft.space.units import Unit, parse_space, save_configuration
from prunepeft.train.fixed import configuration_meta
from prunepeft.train.loop import evaluate, seed_everything, train

STAGE_ROUND = 10_000
STRATEGIES = ("hybrid", "hybrid-global", "random", "none") + tuple(CRITERIA)
CHEAP = ("weight", "zeros", "threshold")  # need only the weights: always in the trace


@dataclass
class SearchResult:
    units: list[Unit]
    warmup_seconds: float
    rounds_seconds: float
    rounds: int
    search_epochs: float  # training examples seen during the search / size of the training data

    def cost_metrics(self) -> dict:
        return {"search_seconds": self.warmup_seconds + self.rounds_seconds, "warmup_seconds": self.warmup_seconds,
                "rounds_seconds": self.rounds_seconds, "search_rounds": self.rounds, "search_epochs": self.search_epochs}


def _validate(cfg) -> None:
    if cfg.prune_per_round <= 0:
        raise UserError(f"--prune-per-round (k) must be >= 1, got {cfg.prune_per_round}")
    if cfg.strategy not in STRATEGIES:
        raise UserError(f"unknown --strategy {cfg.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if cfg.fidelity not in ("full", "low"):
        raise UserError(f"--fidelity must be full or low, got {cfg.fidelity!r}")
    if cfg.reinit not in ("reinit", "keep"):
        raise UserError(f"--reinit must be reinit or keep, got {cfg.reinit!r}")
    if cfg.warmup_turns <= 0 or cfg.round_epochs <= 0 or cfg.warmup_epochs <= 0:
        raise UserError("warm-up turns, warm-up epochs and round epochs must be positive")


def _strategy(session, out: Path, space, partition, compact, budget, state, log):
    """The map partition -> criteria for this search, and the warm-up seconds and examples it cost."""
    cfg = session.cfg.search
    labels = {partition(u) for u in space}
    if cfg.strategy in ("random", "none"):
        return {}, 0.0, 0
    if cfg.strategy not in ("hybrid", "hybrid-global"):
        return uniform_strategy(cfg.strategy, labels), 0.0, 0
    if cfg.strategy_from:
        _, strategy, _ = load_strategy(cfg.strategy_from)
        check_strategy_covers(strategy, labels, source=str(cfg.strategy_from))
        save_strategy(out, *load_strategy(cfg.strategy_from)[:2], meta={"reused_from": str(cfg.strategy_from)})
        return strategy, 0.0, 0
    if state and state.get("warmup_done"):
        _, strategy, meta = load_strategy(out)
        return strategy, meta["seconds"], meta["warmup_examples"]
    start = time.perf_counter()
    F, strategy, pruned, examples = run_warmup(session, space, compact, partition, budget, log)
    seconds = time.perf_counter() - start
    save_strategy(out, F, strategy, meta={"warmup_pruned": pruned, "warmup_samples": len(compact),
                                          "warmup_examples": examples, "seconds": seconds})
    return strategy, seconds, examples


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
    write_json(saved_path, to_dict(cfg))


def _truncate_trace(path: Path, rounds: int) -> None:
    """Keep the trace lines of checkpointed rounds: a kill between the trace line and the
    checkpoint must not leave a round twice in the trace after --resume."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)[:rounds]
        atomic_write_bytes(path, "".join(lines).encode())


def _scores(stats, strategy, threshold):
    names = [c for c in CRITERIA if c in CHEAP or c in {s for ss in strategy.values() for s in ss}]
    return {c: {u: score(c, st, threshold) for u, st in stats.items()} for c in names}


def search(session, out: Path, *, resume: bool = False, log=print) -> SearchResult:
    cfg = session.cfg.search
    _validate(cfg)
    families = parse_space(cfg.space)
    probe = session.probe()
    num_layers = probe.arch.num_layers
    space = sorted(Unit(layer, kind, size, target) for kind, size, target in families for layer in range(num_layers))
    sizes = {u: probe.param_count(u) for u in space}
    budget = parse_budget(cfg.budget, probe.backbone_params())
    partition = partial(partition_of, num_layers=num_layers, use_blocks=cfg.strategy != "hybrid-global")
    if cfg.strategy != "none":
        check_budget(budget, list(sizes.values()), cfg.budget)
    try:
        compact_rows = stratified_subset(session.train_rows, cfg.warmup_samples, seed=session.cfg.seed, is_regression=session.task.is_regression)
    except UserError as e:
        raise UserError(f"--warmup-samples {cfg.warmup_samples} is too small for the label set: {e}") from None
    compact = session.encode(compact_rows)
    round_data = compact if cfg.fidelity == "low" else session.train_encoded

    state = load_state(out) if resume else None
    _check_same_config(out, session.cfg, resume)
    if not resume:
        for name in ("trace.jsonl", "search_state.json", "strategy.json"):
            (out / name).unlink(missing_ok=True)
    _truncate_trace(out / "trace.jsonl", state["round"] if state else 0)
    strategy, warmup_seconds, warmup_examples = _strategy(session, out, space, partition, compact, budget, state, log)
    alive = [Unit.parse(n) for n in state["alive"]] if state else list(space)
    rnd = state["round"] if state else 0
    rounds_seconds = state["rounds_seconds"] if state else 0.0
    seen = state["examples_seen"] if state else warmup_examples
    supernet = session.build_supernet(alive, stage=STAGE_ROUND)
    if state:
        restore_weights(out, supernet)
    needs = needed_statistics({s for ss in strategy.values() for s in ss}) if cfg.strategy not in ("random", "none") else frozenset()

    def params():
        return sum(sizes[u] for u in supernet.alive)

    log(f"search: {len(space)} units, {sum(sizes.values()):,} params -> budget {budget:,}; strategy {cfg.strategy}")
    while cfg.strategy != "none" and params() > budget:
        start = time.perf_counter()
        stage = STAGE_ROUND + 1 + rnd
        seed_everything(session.cfg.seed, stage)
        if cfg.reinit == "reinit" and rnd > 0:
            supernet.reinitialise()
        loader = session.loader(round_data, train=True, stage=stage)
        history = train(supernet, loader, session.cfg.train, epochs=cfg.round_epochs,
                        collect=("activation" in needs, "grads" in needs), desc=f"round {rnd + 1}")
        seen += cfg.round_epochs * len(round_data)
        eval_start = time.perf_counter()  # the per-round dev score is for the trace, not the method: not search cost
        dev = evaluate(supernet.model, session.loader(session.dev_encoded, train=False), session.task)
        eval_seconds = time.perf_counter() - eval_start
        stats = supernet.unit_stats()
        scores = _scores(stats, strategy, cfg.threshold)
        if cfg.strategy == "random":
            order, probs = random_order(supernet.alive, session.cfg.seed * 1000 + rnd), {}
        else:
            probs = pruning_probabilities(hybrid_logits(scores, strategy, partition, supernet.alive, cfg.tau))
            order = prune_order(probs)
        before = list(supernet.alive)
        pruned = []
        for unit in order:  # top-k by p; the last round only until the budget holds
            if len(pruned) == cfg.prune_per_round or params() <= budget:
                break
            if [u for u in supernet.alive if sizes[u] <= budget] == [unit]:
                continue  # the last unit that fits the budget stays, or no configuration could meet it
            supernet.remove(unit)
            pruned.append(unit)
        rnd += 1
        rounds_seconds += time.perf_counter() - start - eval_seconds
        append_jsonl(out / "trace.jsonl", {
            "round": rnd, "alive": [u.name for u in before], "pruned": [u.name for u in pruned],
            "scores": {c: {u.name: v for u, v in s.items()} for c, s in scores.items()},
            "hybrid": {u.name: p for u, p in probs.items()}, "trainable_params": params(), "budget": budget,
            "train_loss": history[-1]["train_loss"], "dev": dev, "seconds": time.perf_counter() - start,
        })
        log(f"round {rnd}: pruned {', '.join(u.name for u in pruned)} -> {len(supernet.alive)} units, {params():,} params; dev {dev}")
        save_checkpoint(out, {"round": rnd, "alive": [u.name for u in supernet.alive], "warmup_done": True,
                              "warmup_seconds": warmup_seconds, "rounds_seconds": rounds_seconds, "examples_seen": seen}, supernet)
    result = SearchResult(supernet.alive, warmup_seconds, rounds_seconds, rnd, seen / max(1, len(session.train_encoded)))
    save_configuration(result.units, out / "configuration.json", {**configuration_meta(session, supernet), "budget": budget,
                       "trainable_params": params(), "strategy": cfg.strategy})
    write_json(out / "search.json", {**result.cost_metrics(), "budget": budget, "space_params": sum(sizes.values()),
                                     "units": [u.name for u in result.units], "trainable_params": params()})
    return result
