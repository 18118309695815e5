"""Eq. 1 (hybrid logits, softmax, order), random order, tendency matrix and strategy file."""

import json
import math
from collections import Counter

import pytest

from prunepeft.errors import UserError
from prunepeft.hybrid.combine import (
    hybrid_logits,
    layer_balanced_order,
    prune_order,
    pruning_probabilities,
    random_order,
    uniform_strategy,
)
from prunepeft.hybrid.warmup import (
    assign_strategy,
    check_strategy_covers,
    load_strategy,
    save_strategy,
    tendency_matrix,
)
from prunepeft.space.partition import partition_of
from prunepeft.space.units import Unit


def sig(x):
    return 1 / (1 + math.exp(-x))


def softmax(xs):
    es = [math.exp(x) for x in xs]
    return [e / sum(es) for e in es]


def fam(u):
    return u.family


# ----------------------------------------------------------------------------- Eq. 1


def test_worked_example_one_partition_one_criterion():
    u0, u1, u2 = (Unit(i, "lora", 8) for i in range(3))
    raw = {"weight": {u0: 0.5, u1: 0.1, u2: 0.3}}  # prune lowest: u1, u2, u0
    logits = hybrid_logits(raw, {"lora-8": ["weight"]}, fam, [u0, u1, u2])
    # prunability -0.5, -0.1, -0.3 -> ranks u1 0, u2 1, u0 2; z = 0, 1, 0.5
    expected = {u1: sig(3) * 1.0, u2: sig(2) * 0.5, u0: sig(1) * 0.0}
    assert logits == pytest.approx(expected)
    probs = pruning_probabilities(logits)
    p = softmax([expected[u0], expected[u1], expected[u2]])
    assert [probs[u0], probs[u1], probs[u2]] == pytest.approx(p)
    assert prune_order(probs) == [u1, u2, u0]


def test_worked_example_two_partitions_with_tied_set():
    a0, a1 = Unit(0, "adapter", 16), Unit(1, "adapter", 16)
    l0, l1 = Unit(0, "lora", 8), Unit(1, "lora", 8)
    strategy = {"adapter-16": ["taylor"], "lora-8": ["taylor", "zeros"]}
    raw = {
        # taylor ranks all four units (both partitions use it); prune lowest
        "taylor": {a0: 0.4, a1: 0.1, l0: 0.2, l1: 0.8},
        # zeros ranks only l0, l1; the a0 entry must be ignored (adapters do not use zeros)
        "zeros": {l0: 0.25, l1: 0.75, a0: 1.0},
        "weight": {a0: 9.0},  # unused criterion: ignored
    }
    logits = hybrid_logits(raw, strategy, fam, [l1, a0, l0, a1])
    # taylor: q = -0.4, -0.1, -0.2, -0.8; ranks a1 0, l0 1, a0 2, l1 3; z over span 0.7
    # zeros:  q = 0.25, 0.75; ranks l1 0, l0 1; z l1 1, l0 0
    expected = {
        a0: sig(3 - 2) * (0.4 / 0.7),
        a1: sig(3 - 0) * 1.0,
        l0: (sig(3 - 1) * (0.6 / 0.7) + sig(3 - 1) * 0.0) / 2,
        l1: (sig(3 - 3) * 0.0 + sig(3 - 0) * 1.0) / 2,
    }
    assert logits == pytest.approx(expected)
    order = [a0, a1, l0, l1]
    probs = pruning_probabilities(logits)
    assert [probs[u] for u in order] == pytest.approx(softmax([expected[u] for u in order]))
    assert sum(probs.values()) == pytest.approx(1.0)
    assert prune_order(probs) == sorted(order, key=lambda u: -expected[u])


def test_coverage_ranks_prune_each_criterion_in_proportion_to_the_units_it_ranks():
    # 30 units ranked by `weight` (partition "big"), 6 by `taylor` (partition "small"): both
    # criteria spread their scores alike, so neither partition's units deserve pruning more
    big = [Unit(i, "lora", 4) for i in range(30)]
    small = [Unit(i, "lora", 8) for i in range(6)]
    raw = {"weight": {u: 1.0 + i for i, u in enumerate(big)}, "taylor": {u: 1.0 + 5 * i for i, u in enumerate(small)}}
    strategy = {"lora-4": ["weight"], "lora-8": ["taylor"]}

    def first_eight(coverage):
        logits = hybrid_logits(raw, strategy, fam, big + small, coverage_ranks=coverage)
        return Counter(u.family for u in prune_order(pruning_probabilities(logits))[:8])

    assert first_eight(False) == {"lora-4": 5, "lora-8": 3}  # as the paper's rank weight: the small partition loses units as fast
    assert first_eight(True) == {"lora-4": 7, "lora-8": 1}  # in proportion: 8 x 6/36 = 1.3
    # where one criterion ranks every alive unit, the stretched rank is the rank itself
    one = {"lora-4": ["weight"], "lora-8": ["weight"]}
    raw_one = {"weight": {u: 1.0 + i for i, u in enumerate(big + small)}}
    assert hybrid_logits(raw_one, one, fam, big + small, coverage_ranks=True) == pytest.approx(
        hybrid_logits(raw_one, one, fam, big + small))


def test_layer_balanced_order_prunes_the_fullest_layer_and_follows_the_criteria_within_it():
    # the criteria rank every layer-2 unit as most prunable (the depth trend of a [CLS] head's top layer)
    units = [Unit(layer, "lora", 4, t) for layer in range(3) for t in ("q", "v", "ffn_in")]
    sizes = {u: 7680 if u.target == "ffn_in" else 3072 for u in units}
    order = sorted(units, key=lambda u: (-u.layer, u.target != "v", u.target))
    assert {u.layer for u in order[:3]} == {2}  # unbalanced: the first three all from layer 2
    balanced = layer_balanced_order(order, sizes)
    assert sorted(balanced) == sorted(units)
    assert [u.layer for u in balanced[:3]] == [2, 1, 0]  # one unit from each layer before a second from any
    # within a layer the criteria's order holds: layer 2's v (its most prunable) goes before its q and ffn_in
    assert [u.target for u in balanced if u.layer == 2] == [u.target for u in order if u.layer == 2]
    # "fullest" counts parameters: a layer that lost its 7,680-parameter FFN unit is not pruned again
    # until the others are down to its size
    left = [u for u in units if not (u.layer == 0 and u.target == "ffn_in")]
    assert layer_balanced_order([u for u in order if u in left], sizes)[:2] == [Unit(2, "lora", 4, "v"), Unit(1, "lora", 4, "v")]


def test_tau_changes_rank_weight():
    u0, u1 = Unit(0, "lora", 8), Unit(1, "lora", 8)
    raw = {"gradient": {u0: 0.1, u1: 0.2}}
    logits = hybrid_logits(raw, {"lora-8": ["gradient"]}, fam, [u0, u1], tau=0.0)
    assert logits == pytest.approx({u0: sig(0) * 1.0, u1: 0.0})


def test_all_equal_scores_give_z_one_and_rank_by_unit_order():
    units = [Unit(2, "lora", 8), Unit(0, "lora", 8), Unit(1, "lora", 8)]
    raw = {"weight": {u: 0.3 for u in units}}
    logits = hybrid_logits(raw, {"lora-8": ["weight"]}, fam, units)
    u0, u1, u2 = sorted(units)
    assert logits == pytest.approx({u0: sig(3), u1: sig(2), u2: sig(1)})
    assert prune_order(pruning_probabilities(logits)) == [u0, u1, u2]


def test_single_unit_gets_z_one():
    u = Unit(0, "adapter", 16)
    assert hybrid_logits({"zeros": {u: 0.0}}, {"adapter-16": ["zeros"]}, fam, [u]) == pytest.approx({u: sig(3)})


def test_tied_scores_rank_by_unit_order():
    u0, u1, u2 = (Unit(i, "lora", 8) for i in range(3))
    raw = {"weight": {u0: 0.1, u1: 0.1, u2: 0.5}}
    logits = hybrid_logits(raw, {"lora-8": ["weight"]}, fam, [u2, u1, u0])
    assert logits == pytest.approx({u0: sig(3), u1: sig(2), u2: 0.0})


def test_dead_units_are_not_ranked():
    u0, u1, u2 = (Unit(i, "lora", 8) for i in range(3))
    raw = {"weight": {u0: 0.5, u1: 0.1, u2: 0.3}}
    logits = hybrid_logits(raw, {"lora-8": ["weight"]}, fam, [u0, u2])  # u1 pruned already
    assert logits == pytest.approx({u2: sig(3) * 1.0, u0: sig(2) * 0.0})


def test_partition_without_strategy_is_value_error_naming_it():
    u = Unit(5, "lora", 8)
    with pytest.raises(ValueError, match=r"lora-8@5.*'lora-8/b1'"):
        hybrid_logits({"weight": {u: 1.0}}, {"lora-8/b0": ["weight"]}, lambda m: partition_of(m, 24), [u])


def test_missing_or_bad_scores():
    u0, u1 = Unit(0, "lora", 8), Unit(1, "lora", 8)
    with pytest.raises(ValueError, match="lora-8@1"):
        hybrid_logits({"weight": {u0: 1.0}}, {"lora-8": ["weight"]}, fam, [u0, u1])
    with pytest.raises(ValueError, match="'taylor'"):
        hybrid_logits({"weight": {u0: 1.0}}, {"lora-8": ["taylor"]}, fam, [u0])
    with pytest.raises(ValueError, match="non-finite"):
        hybrid_logits({"weight": {u0: float("nan")}}, {"lora-8": ["weight"]}, fam, [u0])
    with pytest.raises(ValueError, match="duplicates"):
        hybrid_logits({"weight": {u0: 1.0}}, {"lora-8": ["weight"]}, fam, [u0, u0])
    with pytest.raises(ValueError, match="empty"):
        hybrid_logits({"weight": {u0: 1.0}}, {"lora-8": []}, fam, [u0])
    with pytest.raises(UserError, match="unknown pruning criterion"):
        hybrid_logits({"magnitude": {u0: 1.0}}, {"lora-8": ["magnitude"]}, fam, [u0])


def _space(num_layers=12):
    return [Unit(i, k, s) for i in range(num_layers) for k, s in (("lora", 8), ("adapter", 16))]


def _scores(units):
    # deterministic, distinct-ish values
    return {"taylor": {u: ((u.layer * 7 + u.size) % 11) / 10 for u in units}}


def test_single_criterion_mode_equals_one_global_ranking():
    units = _space()
    part = lambda u: partition_of(u, 12)
    strategy = uniform_strategy("taylor", [part(u) for u in units])
    assert len(strategy) == 8 and all(v == ["taylor"] for v in strategy.values())
    by_blocks = hybrid_logits(_scores(units), strategy, part, units)
    one_label = hybrid_logits(_scores(units), {"x": ["taylor"]}, lambda u: "x", units)
    assert by_blocks == pytest.approx(one_label)


def test_global_mode_uses_labels_without_blocks():
    units = _space()
    part = lambda u: partition_of(u, 12, use_blocks=False)
    strategy = {"lora-8/all": ["taylor"], "adapter-16/all": ["taylor", "gradient"]}
    raw = _scores(units)
    raw["gradient"] = {u: u.layer / 10 for u in units}
    logits = hybrid_logits(raw, strategy, part, units)
    assert set(logits) == set(units)
    probs = pruning_probabilities(logits)
    assert sum(probs.values()) == pytest.approx(1.0)
    # with block labels the same strategy does not cover the partitions
    with pytest.raises(ValueError, match="no entry"):
        hybrid_logits(raw, strategy, lambda u: partition_of(u, 12), units)


def test_softmax_is_stable_and_handles_empty():
    u0, u1 = Unit(0, "lora", 8), Unit(1, "lora", 8)
    probs = pruning_probabilities({u0: 1000.0, u1: 1001.0})
    assert probs[u1] == pytest.approx(math.e / (1 + math.e))
    assert probs[u0] + probs[u1] == pytest.approx(1.0)
    assert pruning_probabilities({}) == {}
    assert hybrid_logits({}, {}, fam, []) == {}


def test_prune_order_ties_break_by_unit_order():
    units = [Unit(1, "lora", 8), Unit(0, "lora", 32), Unit(0, "lora", 8), Unit(0, "adapter", 16)]
    probs = {u: 0.25 for u in units}
    assert prune_order(probs) == [Unit(0, "adapter", 16), Unit(0, "lora", 8), Unit(0, "lora", 32), Unit(1, "lora", 8)]
    probs[Unit(1, "lora", 8)] = 0.4
    assert prune_order(probs)[0] == Unit(1, "lora", 8)


def test_random_order_is_deterministic_permutation():
    units = _space()
    a = random_order(units, seed=0)
    assert sorted(a) == sorted(units)
    assert a == random_order(list(reversed(units)), seed=0)  # independent of input order
    assert a == random_order(units, seed=0)
    assert a != random_order(units, seed=1)


# ----------------------------------------------------------------------------- warm-up


def test_tendency_matrix_normalises_by_partition_size():
    units = [Unit(i, "lora", 8) for i in range(12)]
    part = lambda u: partition_of(u, 12)
    sizes = dict(Counter(part(u) for u in units))
    assert sizes == {"lora-8/b0": 2, "lora-8/b1": 4, "lora-8/b2": 4, "lora-8/b3": 2}
    pruned = {
        "taylor": [Unit(0, "lora", 8), Unit(1, "lora", 8), Unit(2, "lora", 8)],
        "weight": [Unit(0, "lora", 8), Unit(3, "lora", 8), Unit(4, "lora", 8)],
        "zeros": [],
    }
    F = tendency_matrix(pruned, part, sizes)
    assert list(F) == ["weight", "zeros", "taylor"]  # CRITERIA order, only criteria that ran
    assert F["taylor"] == {"lora-8/b0": 1.0, "lora-8/b1": 0.25, "lora-8/b2": 0.0, "lora-8/b3": 0.0}
    assert F["weight"] == {"lora-8/b0": 0.5, "lora-8/b1": 0.5, "lora-8/b2": 0.0, "lora-8/b3": 0.0}
    assert F["zeros"] == dict.fromkeys(sizes, 0.0)
    S = assign_strategy(F)
    assert S == {
        "lora-8/b0": ["taylor"],
        "lora-8/b1": ["weight"],
        "lora-8/b2": ["weight", "zeros", "taylor"],  # nothing pruned: all run criteria tie
        "lora-8/b3": ["weight", "zeros", "taylor"],
    }


def test_tendency_matrix_errors():
    part = lambda u: u.family
    u = Unit(0, "lora", 8)
    with pytest.raises(ValueError, match="more than once"):
        tendency_matrix({"weight": [u, u]}, part, {"lora-8": 2})
    with pytest.raises(ValueError, match="not among"):
        tendency_matrix({"weight": [u]}, part, {"adapter-16": 2})
    with pytest.raises(ValueError, match="size"):
        tendency_matrix({"weight": []}, part, {"lora-8": 0})
    with pytest.raises(UserError):
        tendency_matrix({"magnitude": []}, part, {"lora-8": 1})


def test_assign_strategy_with_tie():
    F = {
        "taylor": {"A": 0.25, "B": 0.75, "C": 0.0},
        "zeros": {"A": 0.5, "B": 0.0, "C": 0.0},
        "weight": {"A": 0.5, "B": 0.25, "C": 0.0},
    }
    assert assign_strategy(F) == {
        "A": ["weight", "zeros"],  # tie kept, in CRITERIA order
        "B": ["taylor"],
        "C": ["weight", "zeros", "taylor"],
    }


def test_strategy_round_trip(tmp_path):
    F = {"weight": {"lora-8/b0": 0.5, "adapter-16/b0": 0.0}, "taylor": {"lora-8/b0": 0.25, "adapter-16/b0": 1.0}}
    S = assign_strategy(F)
    written = save_strategy(tmp_path / "strategy.json", F, S, {"task": "sst2", "warmup_turns": 3})
    payload = json.loads(written.read_text())
    assert payload["criteria"] == ["weight", "taylor"]
    assert payload["partitions"] == ["adapter-16/b0", "lora-8/b0"]
    assert payload["task"] == "sst2"
    F2, S2, meta = load_strategy(tmp_path / "strategy.json")
    assert F2 == F and S2 == S
    assert meta == {"task": "sst2", "warmup_turns": 3}
    # a directory works for both
    save_strategy(tmp_path, F, S, {})
    assert load_strategy(tmp_path)[1] == S
    with pytest.raises(ValueError, match="reserved"):
        save_strategy(tmp_path / "x.json", F, S, {"strategy": 1})


@pytest.mark.parametrize(
    "content, why",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"tendency": {}}', "'strategy'"),
        ('{"tendency": {}, "strategy": {}}', "empty"),
        ('{"tendency": {}, "strategy": {"P": []}}', "non-empty list"),
        ('{"tendency": {}, "strategy": {"P": ["magnitude"]}}', "unknown criteria"),
        ('{"tendency": {}, "strategy": {"P": ["removal"]}}', "removal, runs alone"),  # not collected in a hybrid search
        ('{"tendency": {"magnitude": {}}, "strategy": {"P": ["weight"]}}', "unknown criterion"),
        ('{"tendency": {"weight": {"P": "x"}}, "strategy": {"P": ["weight"]}}', "not a finite number"),
    ],
)
def test_load_strategy_bad_file(tmp_path, content, why):
    path = tmp_path / "strategy.json"
    path.write_text(content)
    with pytest.raises(UserError, match=why) as e:
        load_strategy(path)
    assert str(path) in str(e.value) and "warm-up" in str(e.value)


def test_load_strategy_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_strategy(tmp_path / "nope.json")
    with pytest.raises(UserError, match="does not exist"):
        load_strategy(tmp_path)  # a directory without strategy.json


def test_check_strategy_covers():
    check_strategy_covers({"a": ["weight"], "b": ["taylor"]}, ["a", "b"])
    with pytest.raises(UserError, match="c"):
        check_strategy_covers({"a": ["weight"]}, ["a", "c"])


def test_assign_strategy_breaks_ties_by_leaning():
    """A tie in F (here: nobody pruned b1) goes to the criterion that ranked the partition's units
    as most prunable on average; a criterion without leaning (it could not tell units apart) loses."""
    F = {"weight": {"b0": 0.5, "b1": 0.0}, "taylor": {"b0": 0.5, "b1": 0.0}, "zeros": {"b0": 0.0, "b1": 0.0}}
    leaning = {"weight": {"b0": 0.4, "b1": 0.7}, "taylor": {"b0": 0.6, "b1": 0.3}, "zeros": {}}
    assert assign_strategy(F, leaning) == {"b0": ["taylor"], "b1": ["weight"]}
    assert assign_strategy(F) == {"b0": ["weight", "taylor"], "b1": ["weight", "zeros", "taylor"]}
