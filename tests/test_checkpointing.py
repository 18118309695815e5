"""Gradient checkpointing (train.gradient_checkpointing) changes memory and time only: the same
losses, gradients and pruning statistics as without it. And with a frozen backbone, backward
stops at the lowest layer holding a unit, with checkpointing or without."""

from __future__ import annotations

import pytest
import torch

from prunepeft.config import RunConfig, apply_overrides
from prunepeft.space.units import Unit
from prunepeft.supernet.checkpointing import enable_gradient_checkpointing
from prunepeft.train.loop import TrainConfig, train

pytestmark = pytest.mark.usefixtures("tiny_env")

# every kind, a parallel adapter (its FFN-input pre-hook runs again in the recomputation) and two layers
UNITS = [Unit(0, "lora", 4), Unit(0, "parallel-adapter", 4), Unit(1, "dora", 2), Unit(1, "adapter", 8), Unit(1, "lora", 2, "ffn_in")]
STEPS = 3


def _supernet(case, checkpointing: bool, units=UNITS):
    sn = case.supernet()
    torch.manual_seed(0)
    for unit in units:
        sn.add(unit)
    case.perturb_units(sn, scale=0.2)  # non-zero deltas: activation statistics are not all 0
    if checkpointing:
        enable_gradient_checkpointing(sn.model)
    return sn


def _steps(case, sn):
    """Training steps by hand with statistics on; returns losses, per-step unit gradients and the
    number of forwards the first unit's first host ran."""
    calls = []
    sn._parts[UNITS[0]][0][1].register_forward_hook(lambda *_: calls.append(1))
    sn.set_trainable()
    sn.model.train()
    sn.start_statistics(activation=True, gradients=True)
    losses, grads = [], []
    for step in range(STEPS):
        sn.model.zero_grad(set_to_none=True)
        loss = sn.model(**case.inputs(seed=step), labels=case.labels(seed=step)).loss
        loss.backward()
        sn.accumulate_gradients()
        losses.append(loss.item())
        grads.append({u: [p.grad.clone() for p in sn.unit_parameters(u)] for u in sn.alive})
    return losses, grads, len(calls)


def test_checkpointing_changes_no_loss_gradient_or_statistic(case):
    plain, checkpointed = _supernet(case, False), _supernet(case, True)
    assert checkpointed.model.is_activation_checkpointing and not plain.model.is_activation_checkpointing
    losses, grads, calls = _steps(case, plain)
    losses_c, grads_c, calls_c = _steps(case, checkpointed)
    assert calls >= STEPS and calls_c > calls  # the layers really were recomputed in backward (DeBERTa's query runs twice per forward)
    assert losses_c == pytest.approx(losses, abs=1e-6)
    for step in range(STEPS):
        for unit in plain.alive:
            for g, g_c in zip(grads[step][unit], grads_c[step][unit]):
                torch.testing.assert_close(g_c, g, rtol=1e-5, atol=1e-7)
    # the activation statistics are counted once per forward, not again when a layer is recomputed
    assert dict(checkpointed._act_count) == dict(plain._act_count) and set(plain._act_count) == set(UNITS)
    stats, stats_c = plain.unit_stats(), checkpointed.unit_stats()
    for unit in plain.alive:
        assert stats_c[unit].mean_abs_activation == pytest.approx(stats[unit].mean_abs_activation, rel=1e-6)
        for g, g_c in zip(stats[unit].mean_grads, stats_c[unit].mean_grads):
            torch.testing.assert_close(g_c, g, rtol=1e-5, atol=1e-7)


def _layer_outputs_need_grad(case, sn) -> list[bool]:
    """Whether each layer's output is part of the autograd graph (has a grad_fn) in one training forward."""
    needs = []
    layers = sn.model.get_submodule(sn.arch.layers_path)
    hooks = [layer.register_forward_hook(lambda m, a, out: needs.append((out[0] if isinstance(out, tuple) else out).grad_fn is not None))
             for layer in layers]
    sn.set_trainable()
    sn.model.train()
    sn.model(**case.inputs(), labels=case.labels()).loss.backward()
    for h in hooks:
        h.remove()
    return needs


@pytest.mark.parametrize("family", ["llama", "bert"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_no_backward_below_the_lowest_unit(make_case, family, checkpointing):
    case = make_case(family)
    top = case.family.num_layers - 1
    sn = _supernet(case, checkpointing, units=[Unit(top, "lora", 4)])
    # transformers' checkpointing hooks the embeddings to make their output require grad; ours removes it
    assert not getattr(sn.model, "_require_grads_hooks", None)
    assert _layer_outputs_need_grad(case, sn) == [False] * top + [True]

    sn.add(Unit(1, "adapter", 4))  # a lower unit: backward now reaches layer 1, still not layer 0
    assert _layer_outputs_need_grad(case, sn) == [False] + [True] * top

    # the check above can fail: input embeddings that require grad pull every layer into backward
    sn.model.enable_input_require_grads()
    assert _layer_outputs_need_grad(case, sn) == [True] * (top + 1)


def _loader(case, batches: int = 3):
    rows = []
    for seed in range(batches):
        inputs, labels = case.inputs(seed=seed), case.labels(seed=seed)
        rows += [{"input_ids": inputs["input_ids"][i], "attention_mask": inputs["attention_mask"][i], "labels": labels[i]}
                 for i in range(len(labels))]
    return torch.utils.data.DataLoader(rows, batch_size=2, shuffle=False)


def test_train_config_turns_checkpointing_on_with_the_same_statistics(make_case):
    case = make_case("llama")
    cfg = RunConfig()
    apply_overrides(cfg, ["train.gradient_checkpointing=true"])
    assert cfg.train.gradient_checkpointing is True and TrainConfig().gradient_checkpointing is False
    results = []
    for on in (False, True):
        sn = _supernet(case, False)
        history = train(sn, _loader(case), TrainConfig(gradient_checkpointing=on), epochs=1, collect=(True, True), show_progress=False)
        assert sn.model.is_activation_checkpointing == on
        results.append((history[0]["train_loss"], sn.unit_stats()))
    (loss, stats), (loss_c, stats_c) = results
    assert loss_c == pytest.approx(loss, abs=1e-6)
    for unit, st in stats.items():
        assert stats_c[unit].mean_abs_activation == pytest.approx(st.mean_abs_activation, rel=1e-6)
        for w, w_c in zip(st.weights, stats_c[unit].weights):  # the same updates
            torch.testing.assert_close(w_c, w, rtol=1e-5, atol=1e-6)


def test_checkpointing_keeps_the_removal_statistic(case):
    """The removal criterion's <dL/d delta, delta> hook sits on each unit's output: with non-reentrant
    checkpointing it must fire once per step, as without, and give the same statistic."""
    plain, checkpointed = _supernet(case, False), _supernet(case, True)
    for sn in (plain, checkpointed):
        sn.removal_statistics = True
        _steps(case, sn)
    stats, stats_c = plain.unit_stats(), checkpointed.unit_stats()
    assert all(stats[u].removal_effect is not None and stats[u].removal_effect > 0 for u in plain.alive)
    for unit in plain.alive:
        assert stats_c[unit].removal_effect == pytest.approx(stats[unit].removal_effect, rel=1e-5)
    assert dict(checkpointed._removal_count) == dict(plain._removal_count) == {u: STEPS for u in UNITS}
