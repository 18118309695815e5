"""The parts of the budgeted search, with hand-computed values: fair (peer-relative) scores, the
budget fill, the cost schedule, the training stream, the "has learned" check, the tie share and
the equal-budget baselines."""

from __future__ import annotations

import math

import pytest
import torch

from prunepeft.baselines import baseline_units, probe_count
from prunepeft.criteria.fair import relative_prunability
from prunepeft.criteria.scores import UnitStats
from prunepeft.errors import UserError
from prunepeft.hybrid.combine import hybrid_logits, prune_order, pruning_probabilities
from prunepeft.search.learned import has_learned, prior_loss
from prunepeft.search.loop import fill_budget
from prunepeft.search.schedule import low_fidelity_rounds, network_cost, plan, units_per_round
from prunepeft.search.stream import chunk
from prunepeft.search.warmup_run import criterion_order, tie_share
from prunepeft.space.units import Unit

pytestmark = pytest.mark.usefixtures("tiny_env")


def test_fair_scores_compare_units_with_their_peers():
    """LoRA units (mean w^2 ~ 1e-4: a kaiming A and a small B) and adapters (~1e-1) on one raw
    scale: the raw 'weight' criterion prunes every LoRA unit before any adapter. Peer-relative,
    the unit furthest below its own peers goes first: the adapter at a tenth of its peers' value."""
    lora = [Unit(layer, "lora", 8, "q") for layer in range(4)]
    adapters = [Unit(layer, "adapter", 16) for layer in range(4)]
    raw = {lora[0]: 1.0e-4, lora[1]: 1.1e-4, lora[2]: 0.9e-4, lora[3]: 0.5e-4,   # peers' median 0.95e-4
           adapters[0]: 0.1, adapters[1]: 0.1, adapters[2]: 0.01, adapters[3]: 0.1}  # adapters[2]: a tenth
    units = lora + adapters
    strategy = {"all": ["weight"]}

    def order(fair):
        probs = pruning_probabilities(hybrid_logits({"weight": raw}, strategy, lambda u: "all", units, fair=fair))
        return prune_order(probs)

    assert set(order(fair=False)[:4]) == set(lora)  # the bias: every LoRA unit first
    assert order(fair=True)[:2] == [adapters[2], lora[3]]
    q = relative_prunability("weight", raw)
    assert q[adapters[2]] == pytest.approx(math.log(10), rel=1e-5)
    assert q[lora[3]] == pytest.approx(math.log(0.95 / 0.5), rel=1e-5)
    assert q[lora[0]] == pytest.approx(-math.log(1.0 / 0.95), rel=1e-5)


def test_fair_layers_remove_the_depth_trend_and_keep_what_is_left():
    """Scores = a layer's scale x a target's scale x the unit's own merit. Across layers (the default
    peers) the whole low-scale last layer goes first; with the layer's scale removed as well, the
    units of least merit go first, wherever they sit."""
    layer_scale = {0: 1.0, 1: 1.0, 2: 0.9, 3: 0.2}  # the last layer: gradient through one position
    target_scale = {"q": 1.0, "v": 3.0, "ffn_out": 0.1}
    weak = {Unit(0, "lora", 4, "v"), Unit(2, "lora", 4, "q")}
    raw = {Unit(layer, "lora", 4, t): ls * ts * (0.25 if Unit(layer, "lora", 4, t) in weak else 1.0)
           for layer, ls in layer_scale.items() for t, ts in target_scale.items()}

    def first(fair, n):
        q = relative_prunability("weight", raw, layers=fair == "layers")
        return set(sorted(q, key=lambda u: -q[u])[:n])

    assert first(True, 3) == {Unit(3, "lora", 4, t) for t in target_scale}
    assert first("layers", 2) == weak
    probs = pruning_probabilities(hybrid_logits({"weight": raw}, {"all": ["weight"]}, lambda u: "all", list(raw), fair="layers"))
    assert set(prune_order(probs)[:2]) == weak


def test_removal_is_compared_across_targets_not_with_peers():
    """'removal' is in units of the loss: the search may prefer one target over another. Peer-relative,
    each target's median unit would score alike and every target keep its share of the space."""
    q_units = [Unit(layer, "lora", 4, "q") for layer in range(3)]
    v_units = [Unit(layer, "lora", 4, "v") for layer in range(3)]
    raw = {**{u: 1e-6 * (i + 1) for i, u in enumerate(q_units)}, **{u: 1e-3 * (i + 1) for i, u in enumerate(v_units)}}
    strategy = {"all": ["removal"]}
    probs = pruning_probabilities(hybrid_logits({"removal": raw}, strategy, lambda u: "all", q_units + v_units, fair=True))
    assert set(prune_order(probs)[:3]) == set(q_units)  # every q before any v
    peer = pruning_probabilities(hybrid_logits({"weight": raw}, {"all": ["weight"]}, lambda u: "all", q_units + v_units, fair=True))
    assert set(prune_order(peer)[:2]) == {q_units[0], v_units[0]}  # a peer-relative criterion: one of each


def test_fair_fractions_are_differences_to_the_peer_median():
    units = [Unit(layer, "lora", 4, "v") for layer in range(3)]
    q = relative_prunability("zeros", {units[0]: 0.5, units[1]: 0.25, units[2]: 0.75})
    assert [q[u] for u in units] == [0.0, -0.25, 0.25]


def test_a_criterion_that_cannot_tell_units_apart_prunes_nothing_in_the_warmup():
    units = [Unit(layer, "lora", 4, "q") for layer in range(3)]
    stats = {u: UnitStats(weights=[torch.ones(2, 2)]) for u in units}
    assert criterion_order("zeros", stats, 1e-3, fair=True) == []
    stats[units[2]] = UnitStats(weights=[torch.tensor([[0.0, 1.0], [1.0, 1.0]])])
    assert criterion_order("zeros", stats, 1e-3, fair=True)[0] == units[2]


def test_fill_gives_back_the_last_pruned_units_that_fit():
    a, b, c, d, e = (Unit(i, "lora", 4, "q") for i in range(5))
    sizes = {a: 30, b: 30, c: 10, d: 20, e: 25}
    # alive a: 30 of a 100 budget; pruned in round 1: [b], in round 2: [d, c] (d most prunable)
    added = fill_budget([a], [[e], [b], [d, c]], sizes, budget=100)
    # last round first, least prunable first: c (40), d (60), then round 2's b (90); e (115) does not fit
    assert added == [c, d, b]
    assert fill_budget([a], [[b]], sizes, budget=30) == []


def test_schedule_meets_the_cost_ratio_above_its_floors():
    sizes = [3072] * 24 + [7680] * 12  # lora-4 on q,k,v,o / ffn_in,ffn_out of MiniLM's 6 layers
    common = dict(backbone_params=22_713_216, budget=73_728, sizes=sizes, k=4, turns=2, criteria=6, batch_size=32)
    big = plan(cost_ratio=0.3, final_examples=3 * 10_000, **common)
    assert not big.floored
    final = network_cost(22_713_216, 73_728, 73_728 / (sum(sizes) / len(sizes)))
    supernet = network_cost(22_713_216, sum(sizes), len(sizes))
    work = big.planned_examples * supernet / (3 * 10_000 * final)
    assert 0.28 <= work <= 0.30 + 1e-9
    assert big.rounds == 6  # (36 - 16 units kept on average) / k=4, rounded up, + the last partial round
    small = plan(cost_ratio=0.3, final_examples=3 * 500, **common)
    assert small.floored and small.shared_examples == 8 * 32 and small.round_examples == 3 * 32


def test_low_fidelity_prunes_in_the_rounds_its_cost_pays_for():
    """glue/qnli at R = 0.03: two warm-up turns and k = 4 planned 928 examples (6 rounds at their
    floors); one turn and the rounds R pays for (3 after the shared turn, k = 7) plan far fewer,
    leaving room under 0.05 for the 'has learned' check of the shared turn."""
    sizes = [3072] * 24 + [7680] * 12
    cost = dict(cost_ratio=0.03, final_examples=3 * 9_999, backbone_params=22_713_216, budget=73_728, sizes=sizes)
    before = plan(**cost, k=4, turns=2, criteria=6, batch_size=32)
    rounds = low_fidelity_rounds(**cost, batch_size=32)
    k = units_per_round(sizes, 73_728, 4, rounds)
    after = plan(**cost, k=k, turns=1, criteria=6, batch_size=32)
    assert before.planned_examples == 928 and (rounds, k, after.rounds) == (3, 7, 4)
    final = network_cost(22_713_216, 73_728, 73_728 / (sum(sizes) / len(sizes)))
    supernet = network_cost(22_713_216, sum(sizes), len(sizes))

    def work(schedule) -> float:  # the search's planned training work over the final training's
        return schedule.planned_examples * supernet / (3 * 9_999 * final)

    assert work(before) > 0.05 and work(after) < 0.04
    # small data: at least two rounds after the shared turn, so pruning still iterates
    assert low_fidelity_rounds(**{**cost, "final_examples": 600}, batch_size=32) == 2


def test_stream_chunks_are_consecutive_and_cover_every_example_once_per_pass():
    data = list(range(10))
    first, second = chunk(data, 0, 6, seed=1), chunk(data, 6, 4, seed=1)
    assert sorted(first + second) == data
    assert chunk(data, 6, 4, seed=1) == second  # a resumed search sees the same examples
    assert len(chunk(data, 8, 5, seed=1)) == 5  # crosses into the next pass


def test_prior_loss_and_learned():
    rows = [{"labels": 0}] * 3 + [{"labels": 1}]
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert prior_loss(rows, False) == pytest.approx(h)
    assert prior_loss([{"labels": 1.0}, {"labels": 3.0}], True) == pytest.approx(1.0)
    assert has_learned(0.9 * h, h, 0.95) and not has_learned(0.96 * h, h, 0.95)


def test_tie_share():
    assert tie_share({"a/b0": ["taylor"], "a/b1": ["taylor", "gradient"], "a/b2": ["weight"], "a/b3": ["zeros"]}) == 0.25


def test_equal_budget_baselines(bert_case):
    sn = bert_case.supernet()  # hidden 32, FFN 64, 3 layers
    lora = baseline_units("lora", sn, 3 * 8 * 2 * 64)  # r=8 on q,v: 8 * (32 + 32) per projection
    assert {(u.size, u.target) for u in lora} == {(8, "q+v")} and len(lora) == 3
    budget = 3000
    everything = baseline_units("lora-all", sn, budget)
    assert {u.target for u in everything} == {"q", "k", "v", "o", "ffn_in", "ffn_out"}
    used = probe_count(sn, everything)
    assert used <= budget and budget - used < 64 + 32  # no module's next rank (64 or 96 params) still fits
    adapter = baseline_units("adapter", sn, budget)
    assert probe_count(sn, adapter) <= budget < probe_count(sn, [Unit(u.layer, "adapter", u.size + 1) for u in adapter])
    bitfit = baseline_units("bias", sn, budget)
    assert bitfit == [Unit(layer, "bias", 1) for layer in range(3)] and probe_count(sn, bitfit) == 3 * (5 * 32 + 64)
    with pytest.raises(UserError, match="below bias on every projection"):
        baseline_units("bias", sn, 500)


def test_one_turn_warmup_equals_run_warmup_with_one_turn(bert_case):
    """The callback's warm-up (statistics only) is the CLI's warm-up with warmup_turns=1."""
    from functools import partial
    from types import SimpleNamespace

    from prunepeft.config import RunConfig
    from prunepeft.search.warmup_run import one_turn_warmup, run_warmup
    from prunepeft.space.partition import partition_of
    from prunepeft.space.units import Unit

    supernet = bert_case.supernet()
    for layer in range(3):
        for target in ("q", "v", "ffn_out"):
            supernet.add(Unit(layer, "lora", 2, target))
    bert_case.perturb_units(supernet)
    supernet.set_trainable()
    supernet.start_statistics(activation=True, gradients=True)
    supernet.model.train()
    loss = supernet.model(**bert_case.inputs(batch=4), labels=bert_case.labels(batch=4)).loss
    loss.backward()
    supernet.accumulate_gradients()
    stats = supernet.unit_stats()
    sizes = {u: supernet.param_count(u) for u in supernet.alive}
    partition = partial(partition_of, num_layers=3)
    cfg = RunConfig()
    cfg.search.warmup_turns, cfg.search.prune_per_round = 1, 2
    budget = sum(sizes.values()) // 2
    F, strategy, leaning, pruned, _ = run_warmup(SimpleNamespace(cfg=cfg), supernet, stats, [], partition, budget, 0, 2, log=lambda m: None)
    F2, strategy2, leaning2, pruned2 = one_turn_warmup(stats, sizes, partition, budget, 2, cfg.search.threshold, cfg.search.fair_scores)
    assert (F, strategy, leaning) == (F2, strategy2, leaning2)
    assert pruned == {c: [u.name for u in us] for c, us in pruned2.items()}
    assert sum(len(us) for us in pruned2.values()) >= 8  # most criteria pruned their k


def _shared_turn_case(bert_case, monkeypatch):
    """A tiny supernet, a session that feeds one fixed batch of 4 (learned within a few steps), and
    a record of the training runs the shared turn starts and of the losses its stop rule saw."""
    from types import SimpleNamespace

    from prunepeft.config import RunConfig
    from prunepeft.search import loop

    supernet = bert_case.supernet()
    for layer in range(2):
        supernet.add(Unit(layer, "lora", 2, "q"))
    cfg = RunConfig()
    cfg.train.per_device_train_batch_size = 4
    cfg.train.learning_rate = cfg.train.head_learning_rate = 1e-2
    batch = {**bert_case.inputs(batch=4), "labels": torch.tensor([0, 1, 0, 1])}
    session = SimpleNamespace(cfg=cfg, train_encoded=list(range(100)), loader=lambda data, **_: [batch] * math.ceil(len(data) / 4),
                              task=SimpleNamespace(is_causal_lm=False))
    runs, checks, real_train = [], [], loop.train

    def recorded_train(*args, stop, **kwargs):
        runs.append(kwargs)

        def recorded_stop(losses):
            checks.append((list(losses), stop(losses)))
            return checks[-1][1]
        return real_train(*args, stop=recorded_stop, **kwargs)

    monkeypatch.setattr(loop, "train", recorded_train)
    return loop, supernet, session, runs, checks


def test_shared_turn_is_one_run_that_stops_once_the_supernet_has_learned(bert_case, monkeypatch):
    """The shared turn trains past its planned examples in ONE run (one optimiser, one warm-up),
    checked after every step, and stops at the first step at which it has learned."""
    loop, supernet, session, runs, checks = _shared_turn_case(bert_case, monkeypatch)
    prior = math.log(2)
    history, examples, retry_scale = loop._shared_turn(session, supernet, list(range(1000)), 0, 8, prior, lambda _: None)
    assert retry_scale == 1.0  # learned at the search's own rate: no retry
    assert len(runs) == 1 and runs[0]["warmup_steps"] == 1  # the final training's 4 (6% of 75), at most half the 2 planned
    assert examples == 4 * history[-1]["steps"] == 4 * len(checks) and 8 <= examples < 8 * loop.MAX_SHARED_FACTOR
    assert len(checks) > 2  # it trained past the planned 2 steps
    assert [stopped for _, stopped in checks] == [False] * (len(checks) - 1) + [True]
    losses = checks[-1][0]
    assert history[-1]["tail_loss"] == pytest.approx(sum(losses[len(losses) // 2:]) / len(losses[len(losses) // 2:]))
    assert has_learned(history[-1]["tail_loss"], prior, 0.95)


def test_shared_turn_that_never_learns_is_retried_once_at_a_third_of_the_rate_then_stops_with_an_error(bert_case, monkeypatch):
    loop, supernet, session, runs, checks = _shared_turn_case(bert_case, monkeypatch)
    rates = []
    real = loop.train
    monkeypatch.setattr(loop, "train", lambda sn, loader, cfg, **kw: rates.append(cfg.learning_rate) or real(sn, loader, cfg, **kw))
    with pytest.raises(UserError, match=r"has not learned after 496 training examples, at the search's learning rate and at 0.333"):
        loop._shared_turn(session, supernet, list(range(1000)), 0, 8, 1e-6, lambda _: None)  # a bar no loss gets under
    assert len(runs) == 2 and len(checks) == 2 * 62  # twice 31 x the planned 8 examples, in batches of 4
    assert rates == pytest.approx([1e-2, 1e-2 / 3])


def test_a_shared_turn_stuck_at_the_prior_restarts_from_fresh_units_at_a_third_of_the_rate(bert_case, monkeypatch):
    """glue/qnli seed 1: the full-rate turn stays at the label prior, a third of the rate learns. The
    retry starts from the weights the first try started from, trains on the stream's next examples,
    and its rate scale is handed back for the rest of the search; both tries count as search work."""
    loop, supernet, session, runs, checks = _shared_turn_case(bert_case, monkeypatch)
    fresh = {**supernet.unit_state_dict(), **supernet.head_state_dict()}
    tries = []

    def train(sn, loader, cfg, stop, **kw):
        tries.append({"lr": cfg.learning_rate, "data": list(loader), "start": {**sn.unit_state_dict(), **sn.head_state_dict()}})
        with torch.no_grad():
            for p in sn.model.parameters():
                if p.requires_grad:
                    p.add_(1.0)  # the first try's training moved the weights
        stuck = len(tries) == 1
        return [{"steps": 62 if stuck else 3, "tail_loss": math.log(2) if stuck else 0.3, "train_loss": 0.5}]

    monkeypatch.setattr(loop, "train", train)
    monkeypatch.setattr(loop, "_collapse_watch", lambda *_: None)  # the loader below yields examples, not batches
    session.loader = lambda data, **_: data
    history, examples, retry_scale = loop._shared_turn(session, supernet, list(range(1000)), 0, 8, math.log(2), lambda _: None)
    assert retry_scale == pytest.approx(1 / 3) and [t["lr"] for t in tries] == pytest.approx([1e-2, 1e-2 / 3])
    assert history[-1]["tail_loss"] == 0.3 and examples == 4 * (62 + 3)
    for name, tensor in fresh.items():
        assert torch.equal(tries[1]["start"][name], tensor), name  # not the stuck try's weights
    assert tries[1]["data"] == loop.chunk(list(range(1000)), 4 * 62, 8 * loop.MAX_SHARED_FACTOR, session.cfg.seed)


def _zero_head(supernet) -> None:
    """What a collapse looks like: the classifier reads nothing from the input, every example gets its bias."""
    with torch.no_grad():
        for name, p in supernet.model.named_parameters():
            if "classifier" in name and name.endswith("weight"):
                p.zero_()


def test_collapse_watch_fires_after_two_readings_of_input_independent_outputs(bert_case):
    """It reads the spread at the start, then every CHECK_EVERY steps from the plan on: a supernet
    whose outputs still vary is never collapsed, one whose outputs are the same for every example is
    collapsed at the second such reading, not the first."""
    from prunepeft.search.collapse import CHECK_EVERY, CollapseWatch

    supernet = bert_case.supernet()
    supernet.model.train()  # as the training loop leaves it
    batches = [{**bert_case.inputs(batch=4), "labels": torch.tensor([0, 1, 0, 1])}] * 2
    loader = torch.utils.data.DataLoader(batches, batch_size=None)  # a real one: its iterator draws a seed
    watch = CollapseWatch(supernet.model, loader, planned_steps=10)
    assert watch.start > 0
    assert not any(watch.check(step) for step in range(1, 10 + 3 * CHECK_EVERY)) and len(watch.readings) == 3  # 10, 35, 60
    _zero_head(supernet)
    assert not watch.check(10 + 3 * CHECK_EVERY)  # one reading at (almost) no spread
    assert not watch.check(10 + 3 * CHECK_EVERY + 1)  # between readings: nothing read
    assert watch.check(10 + 4 * CHECK_EVERY) and watch.readings[-1] < 1e-6
    assert supernet.model.training  # the readings leave the model as they found it
    state = torch.random.get_rng_state()
    watch.check(10 + 5 * CHECK_EVERY)
    assert torch.equal(torch.random.get_rng_state(), state)  # and the random numbers training draws next


def test_a_collapsed_shared_turn_is_retried_long_before_its_longest_turn(bert_case, monkeypatch, caplog):
    """glue/qnli seed 1: at the full rate the supernet's outputs stop depending on the input and the
    turn would train 31x its plan at the prior. The watch ends that try at its second low reading
    (planned steps + CHECK_EVERY), and the retry says why."""
    from prunepeft.search.collapse import CHECK_EVERY

    loop, supernet, session, runs, checks = _shared_turn_case(bert_case, monkeypatch)
    real = loop.train
    tries = []

    def train(sn, loader, cfg, stop, **kw):
        tries.append(cfg.learning_rate)
        if len(tries) == 2:
            return real(sn, loader, cfg, stop=stop, **kw)
        _zero_head(sn)  # collapsed from the first step; the loss stays at the prior
        losses = []
        while not stop(losses := losses + [math.log(2)]):
            pass
        return [{"steps": len(losses), "tail_loss": math.log(2), "train_loss": math.log(2)}]

    monkeypatch.setattr(loop, "train", train)
    with caplog.at_level("WARNING"):
        history, examples, retry_scale = loop._shared_turn(session, supernet, list(range(1000)), 0, 8, math.log(2), lambda _: None)
    assert retry_scale == pytest.approx(1 / 3) and tries == pytest.approx([1e-2, 1e-2 / 3])
    first_try = examples - 4 * history[-1]["steps"]
    assert first_try == 4 * (2 + CHECK_EVERY) < 8 * loop.MAX_SHARED_FACTOR  # planned 2 steps, then two readings
    assert "its outputs no longer depend on the input" in caplog.text


def test_shared_turn_warms_up_as_the_final_training_does_within_half_its_plan():
    """glue/qnli (9,999 pairs, 3 epochs, batch 32): the final training warms up over 56 of its 938
    steps, the shared turn over half its 44 planned steps, so it trains at the full rate before its
    first check (6% of 44 = 2 left the supernet of seed 2 at the label prior; all 44 left SST-2's
    barely learned); on RTE (2,490 pairs) the final training's 14 steps fit in half the turn."""
    from prunepeft.search.schedule import shared_warmup_steps

    assert shared_warmup_steps(44, 3 * 9_999, 32, 0.06) == 22
    assert shared_warmup_steps(100, 3 * 2_490, 32, 0.06) == 14
    assert shared_warmup_steps(44, 3 * 9_999, 32, 0.0) == 0  # no warm-up asked, none given


def test_the_search_trains_at_its_own_learning_rate_scale(bert_case, monkeypatch):
    """search.learning_rate_scale multiplies every learning rate of the supernet's trainings (the
    shared turn here) and leaves the final training's settings alone; 1.0 is the final training's."""
    from prunepeft.search.schedule import search_train_config

    loop, supernet, session, runs, checks = _shared_turn_case(bert_case, monkeypatch)
    seen = []
    monkeypatch.setattr(loop, "train", lambda _sn, _loader, cfg, **kw: seen.append(cfg) or [{"steps": 2, "tail_loss": 0.1, "train_loss": 0.1}])
    session.cfg.train.kind_learning_rates = {"adapter": 4e-3}
    session.cfg.search.learning_rate_scale = 0.25
    loop._shared_turn(session, supernet, list(range(1000)), 0, 8, math.log(2), lambda _: None)
    assert (seen[0].learning_rate, seen[0].head_learning_rate) == pytest.approx((2.5e-3, 2.5e-3))
    assert seen[0].kind_learning_rates == pytest.approx({"adapter": 1e-3})
    assert session.cfg.train.learning_rate == 1e-2 and session.cfg.train.kind_learning_rates == {"adapter": 4e-3}
    session.cfg.search.learning_rate_scale = 1.0
    assert search_train_config(session.cfg) is session.cfg.train


def test_units_per_round_grow_with_the_space():
    """k stays 4 on MiniLM's default space (36 units, 20 to remove: 5 rounds) and grows on a decoder's
    (30 layers x 7 places) so that about max_rounds rounds reach the budget, whose floors would
    otherwise cost more than the final training."""
    from prunepeft.search.schedule import expected_rounds, units_per_round

    minilm = [4608] * 36
    assert units_per_round(minilm, 73_728, 4, 8) == 4 and expected_rounds(minilm, 73_728, 4) == 6
    decoder = [4608, 3072, 3072, 4608, 8448, 8448, 8448] * 30
    k = units_per_round(decoder, 460_800, 4, 8)
    assert k == math.ceil((210 - int(460_800 // (sum(decoder) / 210))) / 8) > 4
    assert expected_rounds(decoder, 460_800, k) <= 9 < expected_rounds(decoder, 460_800, 4)
