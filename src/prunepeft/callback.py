"""PrunePEFT inside your own `transformers.Trainer`: the search runs on the Trainer's own batches.

    supernet = prunepeft.supernet_for(model, space=["lora-4:q,k,v,o,ffn_in,ffn_out"], budget="74k")
    trainer = Trainer(model=supernet.model, args=args, train_dataset=..., data_collator=...)
    callback = prunepeft.PrunePEFTCallback(supernet).install(trainer)   # first, so trackers see its metrics
    trainer.train()                    # warm-up, pruning rounds, then the found configuration trains on
    callback.configuration             # the units left

The schedule, in optimiser steps of the Trainer (defaults from `search_fraction` of its max_steps):

    steps 1..warmup_steps          every unit trains; every criterion's statistics are collected
    at warmup_steps                the warm-up strategy from those statistics (one shared turn per
                                   criterion: search/warmup_run.one_turn_warmup), then round 1 prunes
                                   with it (Eq. 1, hybrid/combine.py; k units, search/loop._choose_pruned)
    every round_steps after        score the alive units on the statistics of those steps, prune k
    budget met                     statistics stop; the survivors train on to the Trainer's end

How it differs from `prunepeft search` / `run` (search/loop.py): the warm-up has one turn per
criterion, not `warmup_turns` on a compact subset (a Trainer cannot rewind to try each criterion
alone); its length is fixed in steps, not extended until the loss has fallen below the label prior's;
pruned units are not given back to fill the budget at the end, and the survivors are not
re-initialised and retrained from scratch: they keep training from where the search left them, on
the Trainer's own learning rate and schedule. Gradients for the criteria are read after the
Trainer's clipping.

A pruned unit is removed from the model (the bare Linear goes back) and its parameters leave the
optimizer's groups and state, so it neither contributes to the output nor gets updated.
"""

from __future__ import annotations

import math
from functools import partial

from transformers import TrainerCallback

from prunepeft.errors import UserError
from prunepeft.logs import get_logger

log = get_logger(__name__)
PREFIX = "prunepeft/"
MIN_WARMUP_STEPS = 4
MIN_ROUND_STEPS = 2


def supernet_for(model, *, space=None, budget=None, units=None, arch=None):
    """Attach every unit of `space` (the --space syntax; default the CLI's) to every layer of `model`, a
    transformers classifier, in place; freeze its backbone and leave the units and the head trainable.
    Returns the Supernet (`supernet.model` is `model`); `budget` (a count, '74k' or a percent of the
    backbone) is checked here and kept for PrunePEFTCallback."""
    from prunepeft.config import DEFAULT_SPACE
    from prunepeft.modules.kinds import UnitOptions
    from prunepeft.search.budget import check_budget, parse_budget
    from prunepeft.space.units import Unit, parse_space
    from prunepeft.supernet.arch import ArchOverrides, inspect_model
    from prunepeft.supernet.supernet import Supernet

    if not hasattr(model, "config") or not hasattr(model, "named_parameters"):
        raise UserError(f"supernet_for needs a transformers model (e.g. AutoModelForSequenceClassification), got {type(model).__name__}")
    space = [space] if isinstance(space, str) else list(space or DEFAULT_SPACE)
    supernet = Supernet(model, inspect_model(model, arch or ArchOverrides()), units or UnitOptions())
    for kind, size, target in parse_space(space):
        for layer in range(supernet.arch.num_layers):
            supernet.add(Unit(layer, kind, size, target))
    supernet.set_trainable()
    sizes = [supernet.param_count(u) for u in supernet.alive]
    text = "73728" if budget is None else str(budget)
    supernet.budget = parse_budget(text, supernet.backbone_params())
    check_budget(supernet.budget, sizes, text)
    return supernet


class PrunePEFTCallback(TrainerCallback):
    """Runs the PrunePEFT search inside `Trainer.train()`; see the module docstring for the schedule."""

    def __init__(self, supernet, *, budget=None, prune_per_round: int = 4, strategy: str = "hybrid", search_fraction: float = 0.3,
                 warmup_steps: int | None = None, round_steps: int | None = None, tau: float = 3.0, threshold: float = 1e-3,
                 fair_scores: bool = True, coverage_ranks: bool = False, seed: int = 42):
        from prunepeft.search.budget import parse_budget
        from prunepeft.search.loop import STRATEGIES

        if strategy not in STRATEGIES or strategy == "none":
            raise UserError(f"unknown strategy {strategy!r}; choose one of {', '.join(s for s in STRATEGIES if s != 'none')}")
        if prune_per_round < 1:
            raise UserError(f"prune_per_round must be >= 1, got {prune_per_round}")
        if not 0 < search_fraction <= 1:
            raise UserError(f"search_fraction must be in (0, 1], got {search_fraction}")
        for name, value in (("warmup_steps", warmup_steps), ("round_steps", round_steps)):
            if value is not None and value < 1:
                raise UserError(f"{name} must be >= 1, got {value}")
        self.supernet = supernet
        self.budget = parse_budget(budget, supernet.backbone_params()) if budget is not None else getattr(supernet, "budget", None)
        if self.budget is None:
            raise UserError("give budget= (or build the supernet with prunepeft.supernet_for(..., budget=...))")
        self.k, self.strategy_name, self.search_fraction = prune_per_round, strategy, search_fraction
        self.warmup_steps, self.round_steps = warmup_steps, round_steps
        self.tau, self.threshold, self.fair, self.seed = tau, threshold, fair_scores, seed
        self.coverage_ranks = coverage_ranks
        self.sizes = {u: supernet.param_count(u) for u in supernet.alive}
        self.partition = partial(_partition, num_layers=supernet.arch.num_layers, use_blocks=strategy != "hybrid-global")
        self.strategy: dict | None = None
        self.tendency: dict | None = None
        self.trace: list[dict] = []  # one record per round: step, pruned units, params left
        self.done = False
        self._pending: dict = {}
        self._needs = (True, True)

    # ---- what the user reads -------------------------------------------------------------
    @property
    def configuration(self) -> list:
        return self.supernet.alive

    @property
    def trainable_params(self) -> int:
        return sum(self.sizes[u] for u in self.supernet.alive)

    def install(self, trainer):
        """Put this callback first in `trainer`'s list, so the trackers' callbacks (report_to) see the
        search metrics it adds to the logs. Returns self."""
        trainer.pop_callback(self)
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    # ---- the schedule ---------------------------------------------------------------------
    def _expected_rounds(self) -> int:
        """Rounds of k removals to reach the budget, units of average size."""
        total = sum(self.sizes.values())
        mean = total / len(self.sizes)
        return max(1, math.ceil(math.ceil(max(0, total - self.budget) / mean) / self.k))

    def on_train_begin(self, args, state, control, **kwargs):
        if self.done or self.trainable_params <= self.budget:
            self.done = True
            return
        rounds = self._expected_rounds()
        search_steps = max(1, math.ceil(self.search_fraction * state.max_steps))
        if self.warmup_steps is None:
            self.warmup_steps = max(MIN_WARMUP_STEPS, search_steps // 4)
        if self.round_steps is None:
            self.round_steps = max(MIN_ROUND_STEPS, (search_steps - self.warmup_steps) // max(1, rounds - 1))
        needed = self.warmup_steps + (rounds - 1) * self.round_steps
        if needed >= state.max_steps:
            raise UserError(f"the Trainer runs {state.max_steps} steps but the search needs about {needed} ({self.warmup_steps} warm-up + "
                            f"{rounds - 1} rounds x {self.round_steps}) and the survivors need steps after it; train for more steps, "
                            "or lower warmup_steps / round_steps / search_fraction, or raise prune_per_round")
        log.info(f"search in the Trainer: {len(self.sizes)} units, {self.trainable_params:,} params -> budget {self.budget:,}; "
                 f"warm-up {self.warmup_steps} steps, then a round every {self.round_steps} steps (about {rounds} rounds)")
        from prunepeft.criteria.scores import collects_removal

        self.supernet.removal_statistics = collects_removal(self.strategy_name)
        self.supernet.start_statistics(activation=True, gradients=True)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if not self.done:
            self.supernet.accumulate_gradients()

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        if self.done:
            return
        since = state.global_step - self.warmup_steps
        if since < 0 or since % self.round_steps:
            return
        stats = self.supernet.unit_stats()
        if self.strategy is None:
            self._choose_strategy(stats)
        self._round(stats, state.global_step, optimizer, limit=self.k)
        control.should_log = True  # the Trainer logs at this step, with the round's metrics

    def on_train_end(self, args, state, control, optimizer=None, **kwargs):
        if not self.done:  # the Trainer stopped early: meet the budget with what the statistics say now
            log.warning("prunepeft: training ended before the search met the budget; pruning the rest now")
            stats = self.supernet.unit_stats()
            if self.strategy is None:
                self._choose_strategy(stats)
            self._round(stats, state.global_step, optimizer, limit=len(self.sizes))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._pending and logs is not None:
            logs.update(self._pending)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(self._pending)
            self._pending = {}

    # ---- the search steps, with the CLI's own pieces ----------------------------------------
    def _choose_strategy(self, stats) -> None:
        from prunepeft.criteria.scores import needed_statistics
        from prunepeft.hybrid.combine import uniform_strategy
        from prunepeft.search.warmup_run import one_turn_warmup

        labels = {self.partition(u) for u in self.sizes}
        if self.strategy_name in ("hybrid", "hybrid-global"):
            self.tendency, self.strategy, _, pruned_by = one_turn_warmup(stats, self.sizes, self.partition, self.budget, self.k,
                                                                         self.threshold, self.fair)
            log.info("warm-up: " + "; ".join(f"{c} would prune {len(us)}" for c, us in pruned_by.items()))
        elif self.strategy_name == "random":
            self.strategy = {}
        else:
            self.strategy = uniform_strategy(self.strategy_name, labels)
        needs = needed_statistics({s for ss in self.strategy.values() for s in ss})
        self._needs = ("activation" in needs, "grads" in needs)

    def _round(self, stats, step: int, optimizer, limit: int) -> None:
        from prunepeft.hybrid.combine import hybrid_logits, prune_order, pruning_probabilities, random_order
        from prunepeft.search.loop import _choose_pruned, _scores

        alive = self.supernet.alive
        if self.strategy_name == "random":
            order = random_order(alive, self.seed * 1000 + len(self.trace))
        else:
            scores = _scores(stats, {s for ss in self.strategy.values() for s in ss}, self.threshold, f"callback round {len(self.trace) + 1}")
            order = prune_order(pruning_probabilities(hybrid_logits(scores, self.strategy, self.partition, alive, self.tau, fair=self.fair,
                                                                             coverage_ranks=self.coverage_ranks)))
        pruned = _choose_pruned(order, self.sizes, alive, self.budget, limit)
        for unit in pruned:
            self._remove(unit, optimizer)
        self.done = self.trainable_params <= self.budget
        record = {"round": len(self.trace) + 1, "step": step, "pruned": [u.name for u in pruned], "alive_units": len(self.supernet.alive),
                  "trainable_params": self.trainable_params, "budget": self.budget}
        self.trace.append(record)
        self._pending = {f"{PREFIX}round": record["round"], f"{PREFIX}alive_units": record["alive_units"],
                         f"{PREFIX}pruned_units": len(pruned), f"{PREFIX}trainable_params": record["trainable_params"],
                         f"{PREFIX}budget_used": record["trainable_params"] / self.budget, f"{PREFIX}search_done": int(self.done)}
        log.info(f"round {record['round']} (step {step}): pruned {', '.join(record['pruned'])} -> {record['alive_units']} units, "
                 f"{record['trainable_params']:,} params")
        if self.done:
            self.supernet.stop_statistics()
            log.info(f"search done: {len(self.supernet.alive)} units, {self.trainable_params:,} of {self.budget:,} params")
        else:
            self.supernet.start_statistics(activation=self._needs[0], gradients=self._needs[1])  # the next round's statistics

    def _remove(self, unit, optimizer) -> None:
        """Take a unit out of the model and out of the optimizer (its groups and its Adam state)."""
        params = self.supernet.unit_parameters(unit)
        self.supernet.remove(unit)
        gone = {id(p) for p in params}
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        if inner is not None:
            for group in inner.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in gone]
            for p in params:
                inner.state.pop(p, None)
        for p in params:
            p.requires_grad_(False)
            p.grad = None


def _partition(unit, num_layers: int, use_blocks: bool) -> str:
    from prunepeft.space.partition import partition_of

    return partition_of(unit, num_layers=num_layers, use_blocks=use_blocks)
