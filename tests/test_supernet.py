"""The supernet on every family: exact sizes, identity at init, physical removal, trainable
accounting, unit weights round trip, and the statistics the pruning criteria read."""

from __future__ import annotations

import pytest
import torch

from prunepeft.errors import UserError
from prunepeft.modules.host import UnitHost
from prunepeft.space.units import KINDS, Unit
from prunepeft.supernet.supernet import UnitOptions

pytestmark = pytest.mark.usefixtures("tiny_env")

# Several sizes, a few layers, parallel adapters sharing a layer: the hard cases of add/remove.
MIXED = [
    Unit(0, "lora", 4), Unit(0, "lora", 2), Unit(0, "adapter", 8), Unit(0, "parallel-adapter", 4),
    Unit(1, "dora", 2), Unit(1, "parallel-adapter", 4), Unit(1, "parallel-adapter", 8), Unit(1, "adapter", 4),
    Unit(1, "lora", 4),
]


def _size(kind: str, size: int = 4) -> int:
    """A sized kind's size; 1 for a kind without one (bias)."""
    return size if KINDS[kind].sized else 1


def _own_params(sn, unit) -> int:
    """Count the parameters of the unit's modules as built, independently of unit_parameters."""
    total = 0
    for _, host in sn._parts[unit]:
        total += sum(p.numel() for p in host.deltas[unit.key].parameters())
    return total


@pytest.mark.parametrize("target", ["q", "k", "v", "o", "ffn_in", "ffn_out", "q+v"])
def test_param_count_of_every_target(case, target):
    sn = case.supernet()
    d, r = case.config.hidden_size, 3
    kv, f = case.family.value_out, case.config.intermediate_size
    gated = case.name in ("llama", "qwen2")  # ffn_in = gate and up
    expected = {"q": r * 2 * d, "k": r * (d + kv), "v": r * (d + kv), "o": r * 2 * d,
                "ffn_in": r * (d + f) * (2 if gated else 1), "ffn_out": r * (f + d), "q+v": r * 2 * d + r * (d + kv)}[target]
    unit = Unit(1, "lora", r, target)
    assert sn.param_count(unit) == expected
    sn.add(unit)
    assert _own_params(sn, unit) == expected == sn.trainable_unit_params()
    sn.remove(unit)
    assert sn.alive == []


@pytest.mark.parametrize("kind", KINDS)
def test_param_count_is_exact(case, kind):
    sn = case.supernet()
    d, r = case.config.hidden_size, _size(kind)
    v, f = case.family.value_out, case.config.intermediate_size
    gated = case.name in ("llama", "qwen2")  # ffn_in = gate and up
    expected = {  # by hand: sites' shapes, GQA value projections included
        "lora": r * (d + d) + r * (d + v),
        "dora": r * (d + d) + d + r * (d + v) + v,
        "adapter": d * r + r + r * d + d,
        "parallel-adapter": d * r + r + r * d + d,
        "bias": d + v + v + d + f * (2 if gated else 1) + d,  # one vector per output of every projection
    }[kind]
    for layer in range(sn.arch.num_layers):
        unit = Unit(layer, kind, r)
        before = sn.param_count(unit)  # from shapes, before the unit exists
        sn.add(unit)
        assert before == sn.param_count(unit) == expected
        assert _own_params(sn, unit) == expected
        assert sum(p.numel() for p in sn.unit_parameters(unit)) == expected
    assert f > d  # the FFN width really differs from the hidden size in these models
    assert sn.trainable_unit_params() == expected * sn.arch.num_layers


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_unit_is_identity_then_perturbation_changes_logits(case, kind):
    pristine = case.model()
    x = case.inputs()
    bare = case.logits(pristine, x)
    sn = case.supernet()
    for layer in range(sn.arch.num_layers):
        sn.add(Unit(layer, kind, _size(kind)))
    sn.model.eval()
    torch.testing.assert_close(case.logits(sn.model, x), bare, atol=1e-6, rtol=0)
    case.perturb_units(sn, scale=0.2)
    assert (case.logits(sn.model, x) - bare).abs().max() > 1e-3
    sn.reinitialise()  # round restart: back to the pretrained function (Eqs. 4-5 near-identity / LoRA init)
    torch.testing.assert_close(case.logits(sn.model, x), bare, atol=1e-6, rtol=0)


def test_paper_adapter_init_is_not_identity(bert_case):
    sn = bert_case.supernet(options=UnitOptions(adapter_init="paper"))
    x = bert_case.inputs()
    bare = bert_case.logits(bert_case.model(), x)
    sn.add(Unit(0, "adapter", 8))
    assert (bert_case.logits(sn.model, x) - bare).abs().max() > 1e-4
    with pytest.raises(UserError, match="adapter_init"):
        UnitOptions(adapter_init="zeros")


def test_remove_restores_the_exact_model(case):
    pristine = case.model()
    x = case.inputs()
    model = case.model()
    originals = {n: m for n, m in model.named_modules()}
    sn = case.supernet(model)
    ffn_in = [model.get_submodule(s.ffn_in) for s in sn.arch.sites]
    for unit in MIXED:
        sn.add(unit)
    case.perturb_units(sn)
    assert str(model) != str(pristine)
    assert ffn_in[0]._forward_pre_hooks and ffn_in[1]._forward_pre_hooks
    assert isinstance(model.get_submodule(sn.arch.sites[0].query), UnitHost)

    # Remove one of two parallel adapters of layer 1: the other must still get the FFN input
    # (it raises RuntimeError without it), so the hook stays.
    sn.remove(Unit(1, "parallel-adapter", 4))
    assert ffn_in[1]._forward_pre_hooks
    case.logits(model, x)

    for unit in list(sn.alive):
        sn.remove(unit)
    assert sn.alive == [] and sn.trainable_unit_params() == 0
    assert str(model) == str(pristine)
    for m in ffn_in:
        assert len(m._forward_pre_hooks) == 0
    for name, module in model.named_modules():  # the very same Linear objects are back in place
        assert originals[name] is module
    assert not any(isinstance(m, UnitHost) for m in model.modules())
    assert torch.equal(case.logits(model, x), case.logits(pristine, x))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in pristine.parameters())


def test_remove_then_add_again(bert_case):
    sn = bert_case.supernet()
    unit = Unit(0, "parallel-adapter", 4)
    sn.add(unit)
    sn.remove(unit)
    sn.add(unit)
    bert_case.perturb_units(sn)
    bert_case.logits(sn.model, bert_case.inputs())  # the hook is back: no RuntimeError
    assert len(sn.model.get_submodule(sn.arch.sites[0].ffn_in)._forward_pre_hooks) == 1


def test_add_errors(bert_case):
    sn = bert_case.supernet()
    sn.add(Unit(0, "lora", 4))
    with pytest.raises(ValueError, match="already"):
        sn.add(Unit(0, "lora", 4))
    with pytest.raises(UserError, match=r"layer 3 does not exist.*3 layers"):
        sn.add(Unit(3, "adapter", 4))
    with pytest.raises(UserError, match="does not exist"):
        sn.param_count(Unit(7, "lora", 4))


def test_trainable_accounting(case):
    sn = case.supernet()
    for unit in MIXED:
        sn.add(unit)
    sn.set_trainable()
    trainable = sum(p.numel() for p in sn.model.parameters() if p.requires_grad)
    head = sum(p.numel() for p in sn.head_parameters())
    assert head > 0
    assert trainable == sn.trainable_unit_params() + head
    assert not any(p.requires_grad for p in sn.backbone_parameters())
    total = sum(p.numel() for p in sn.model.parameters())
    assert sn.backbone_params() == total - trainable


def test_unit_state_dict_round_trip(case):
    x = case.inputs()
    src = case.supernet()
    for unit in MIXED:
        src.add(unit)
    case.perturb_units(src, scale=0.2)
    state = src.unit_state_dict()
    assert len(state) == sum(len(src.unit_parameters(u)) for u in src.alive)
    assert all(not t.requires_grad for t in state.values())

    dst = case.supernet()
    for unit in reversed(MIXED):  # insertion order must not matter
        dst.add(unit)
    assert not torch.equal(case.logits(dst.model, x), case.logits(src.model, x))
    dst.load_unit_state_dict(state)
    # same weights; only the order the deltas are summed in differs
    torch.testing.assert_close(case.logits(dst.model, x), case.logits(src.model, x), atol=1e-6, rtol=0)
    for k, v in dst.unit_state_dict().items():
        assert torch.equal(v, state[k])

    other = case.supernet()
    other.add(Unit(0, "lora", 8))
    with pytest.raises(UserError, match="another configuration"):
        other.load_unit_state_dict(state)


def test_warm_start_copies_the_survivors_and_the_head_and_leaves_new_units_fresh(bert_case):
    src = bert_case.supernet()
    for unit in MIXED:
        src.add(unit)
    bert_case.perturb_units(src, scale=0.2)
    bert_case.perturb([p for head in src.arch.head for p in src.model.get_submodule(head).parameters()], scale=0.2)
    survivors = [Unit(0, "lora", 4), Unit(1, "dora", 2), Unit(1, "adapter", 4)]
    for unit in set(MIXED) - set(survivors):
        src.remove(unit)
    state = {**src.unit_state_dict(), **src.head_state_dict()}

    new = Unit(2, "lora", 4)  # given back by the fill, or a floor unit: never in the search's end state
    dst = bert_case.supernet()
    for unit in [*survivors, new]:
        dst.add(unit)
    fresh = {n: p.detach().clone() for n, p in dst.unit_named_parameters(new)}
    assert sorted(dst.warm_start(state)) == sorted(survivors)
    for unit in survivors:
        for n, p in dst.unit_named_parameters(unit):
            assert torch.equal(p, state[n])
    for n, p in dst.unit_named_parameters(new):
        assert torch.equal(p, fresh[n])
    for key, tensor in dst.head_state_dict().items():
        assert torch.equal(tensor, state[key])


# ---- statistics ---------------------------------------------------------------------------
STAT_UNITS = [Unit(0, "lora", 4), Unit(0, "parallel-adapter", 4), Unit(1, "dora", 2), Unit(1, "adapter", 8)]
SILENT = Unit(1, "lora", 4)  # left at init (B = 0): adds exactly nothing


def _train_steps(case, sn, steps=2, record=None):
    sn.set_trainable()
    sn.model.train()
    grads = {u: [] for u in sn.alive}
    for step in range(steps):
        sn.model.zero_grad(set_to_none=True)
        out = sn.model(**case.inputs(seed=step), labels=case.labels(seed=step))
        out.loss.backward()
        sn.accumulate_gradients()
        for u in sn.alive:
            grads[u].append([p.grad.detach().clone() for p in sn.unit_parameters(u)])
    return grads


def test_statistics_gradients_and_activations(case):
    sn = case.supernet()
    for unit in STAT_UNITS:
        sn.add(unit)
    case.perturb_units(sn, scale=0.2)
    sn.add(SILENT)

    # Our own record of every delta output (forward hooks on the delta modules).
    seen = {u: [] for u in sn.alive}
    for unit in sn.alive:
        for _, host in sn._parts[unit]:
            host.deltas[unit.family].register_forward_hook(
                lambda mod, args, out, unit=unit: seen[unit].append(out.detach().abs().mean())
            )

    sn.start_statistics(activation=True, gradients=True)
    grads = _train_steps(case, sn)
    stats = sn.unit_stats()
    assert set(stats) == set(sn.alive)
    for unit in sn.alive:
        st = stats[unit]
        mine = [(g0 + g1) / 2 for g0, g1 in zip(*grads[unit])]
        assert st.mean_grads is not None and len(st.mean_grads) == len(mine)
        for a, b in zip(st.mean_grads, mine):
            torch.testing.assert_close(a, b)
        for w, p in zip(st.weights, sn.unit_parameters(unit)):
            assert torch.equal(w, p.detach())
        assert seen[unit]  # each unit ran
        assert st.mean_abs_activation == pytest.approx(float(torch.stack(seen[unit]).mean()), rel=1e-5)
        if unit == SILENT:
            assert st.mean_abs_activation == 0.0  # per unit, never accumulated across units
        else:
            assert st.mean_abs_activation > 0
    assert any(g.abs().sum() > 0 for g in stats[STAT_UNITS[0]].mean_grads)


def _perturbed_stat_supernet(case):
    """A supernet holding STAT_UNITS with non-zero weights, so every unit changes the output."""
    sn = case.supernet()
    for unit in STAT_UNITS:
        sn.add(unit)
    case.perturb_units(sn)
    return sn


def test_no_activation_recorded_in_eval_mode(bert_case):
    sn = _perturbed_stat_supernet(bert_case)
    sn.start_statistics(activation=True, gradients=True)
    sn.model.eval()
    bert_case.logits(sn.model, bert_case.inputs())
    for st in sn.unit_stats().values():
        assert st.mean_abs_activation is None
        assert st.mean_grads is None  # no accumulate_gradients call yet


def test_no_statistics_without_collection(bert_case):
    sn = _perturbed_stat_supernet(bert_case)
    _train_steps(bert_case, sn)  # accumulate_gradients is a no-op before start_statistics
    for st in sn.unit_stats().values():
        assert st.mean_grads is None
        assert st.mean_abs_activation is None
        assert st.weights

    sn.start_statistics(activation=False, gradients=True)
    _train_steps(bert_case, sn, steps=1)
    for st in sn.unit_stats().values():
        assert st.mean_grads is not None and st.mean_abs_activation is None

    sn.start_statistics(activation=True, gradients=False)
    _train_steps(bert_case, sn, steps=1)
    for st in sn.unit_stats().values():
        assert st.mean_grads is None and st.mean_abs_activation is not None


def test_removed_unit_leaves_statistics(bert_case):
    sn = _perturbed_stat_supernet(bert_case)
    sn.start_statistics(activation=True, gradients=True)
    _train_steps(bert_case, sn, steps=1)
    sn.remove(STAT_UNITS[0])
    stats = sn.unit_stats()
    assert STAT_UNITS[0] not in stats and set(stats) == set(STAT_UNITS[1:])


def test_skeleton_probe_matches_the_loaded_model(case, tmp_path):
    """The weightless probe (meta device) gives the same layers, sites, unit sizes and backbone
    size as the real model, without holding a weight."""
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import classifier_skeleton
    from prunepeft.supernet.supernet import Supernet

    model = case.model()
    model.save_pretrained(tmp_path)
    skeleton = classifier_skeleton(str(tmp_path), model.config.num_labels, is_regression=False)
    assert all(p.device.type == "meta" for p in skeleton.parameters())
    probe, real = Supernet(skeleton, inspect_model(skeleton)), case.supernet(model)
    assert probe.arch == real.arch
    assert probe.backbone_params() == real.backbone_params()
    for kind in KINDS:
        unit = Unit(probe.arch.num_layers - 1, kind, _size(kind))
        assert probe.param_count(unit) == real.param_count(unit)


def test_removal_statistic_is_the_first_order_loss_change_of_each_unit(bert_case):
    """<dL/d delta, delta> of a LoRA unit equals sum(B * dL/dB) (delta is linear in B), summed over the
    unit's sites within a step, then squared and averaged over steps."""
    sn = bert_case.supernet()
    units = [Unit(0, "lora", 4, "q+v"), Unit(1, "lora", 2, "ffn_out"), Unit(1, "adapter", 8)]
    for unit in units:
        sn.add(unit)
    bert_case.perturb_units(sn, scale=0.2)
    sn.removal_statistics = True
    sn.start_statistics(activation=True, gradients=True)
    grads = _train_steps(bert_case, sn, steps=3)
    stats = sn.unit_stats()
    for unit in units[:2]:
        names = [n for n, _ in sn.unit_named_parameters(unit)]
        b_index = [i for i, n in enumerate(names) if "lora_B" in n]
        assert len(b_index) == len(unit.sites)
        weights = [p.detach() for p in sn.unit_parameters(unit)]  # the test's optimiser never steps: weights are fixed
        per_step = [sum(float((weights[i] * step[i]).sum()) for i in b_index) for step in grads[unit]]
        assert stats[unit].removal_effect == pytest.approx(sum(e * e for e in per_step) / len(per_step), rel=1e-5)
    assert stats[units[2]].removal_effect > 0
    sn.removal_statistics = False  # off (the default): nothing is held for backward, nothing recorded
    sn.start_statistics(activation=True, gradients=True)
    _train_steps(bert_case, sn)
    assert all(st.removal_effect is None for st in sn.unit_stats().values())
