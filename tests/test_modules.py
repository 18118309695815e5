"""The delta modules against their formulas, and LoRA/DoRA against HF peft itself.

The peft comparison builds a peft model independently (get_peft_model with target_modules),
perturbs peft's weights, copies them into our modules and compares logits: this checks our
modules, not our exporter (test_export.py checks the exporter).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunepeft.modules.adapter import ParallelAdapter, SerialAdapter
from prunepeft.modules.host import UnitHost
from prunepeft.modules.lora import DoraDelta, LoraDelta
from prunepeft.space.units import Unit
from prunepeft.supernet.supernet import UnitOptions

pytestmark = pytest.mark.usefixtures("tiny_env")


def _linear(d_in=6, d_out=5, bias=True):
    torch.manual_seed(0)
    return nn.Linear(d_in, d_out, bias=bias)


# ---- formulas -----------------------------------------------------------------------------
def test_lora_init_and_formula():
    lin = _linear()
    lora = LoraDelta(6, 5, r=3, alpha=6.0)
    assert lora.scaling == 2.0
    assert torch.count_nonzero(lora.lora_B.weight) == 0
    assert torch.count_nonzero(lora.lora_A.weight) == lora.lora_A.weight.numel()
    x = torch.randn(4, 6)
    assert torch.equal(lora(x, lin(x), lin), torch.zeros(4, 5))
    nn.init.normal_(lora.lora_B.weight)
    expected = x @ lora.lora_A.weight.T @ lora.lora_B.weight.T * 2.0
    torch.testing.assert_close(lora(x, lin(x), lin), expected)
    torch.testing.assert_close(lora.delta_weight(), lora.lora_B.weight @ lora.lora_A.weight * 2.0)


@pytest.mark.parametrize("bias", [True, False])
def test_dora_init_and_formula(bias):
    lin = _linear(bias=bias)
    dora = DoraDelta(lin, r=2, alpha=4.0)
    torch.testing.assert_close(dora.magnitude.detach(), lin.weight.norm(dim=1))
    x = torch.randn(3, 6)
    torch.testing.assert_close(dora(x, lin(x), lin), torch.zeros(3, 5), atol=1e-6, rtol=0)
    with torch.no_grad():
        dora.lora_B.weight.normal_()
        dora.magnitude.mul_(torch.linspace(0.5, 1.5, 5))
    # DoRA: y = m * (W + s B A) / ||W + s B A||_row  x + b
    merged = lin.weight + 2.0 * dora.lora_B.weight @ dora.lora_A.weight
    w = dora.magnitude[:, None] * merged / merged.norm(dim=1, keepdim=True)
    expected = F.linear(x, w, lin.bias)
    torch.testing.assert_close(lin(x) + dora(x, lin(x), lin), expected, atol=1e-5, rtol=1e-5)


def test_dora_magnitude_gets_gradient_but_norm_is_detached():
    lin = _linear()
    dora = DoraDelta(lin, r=2, alpha=2.0)
    with torch.no_grad():
        dora.lora_B.weight.normal_()
    x = torch.randn(3, 6)
    dora(x, lin(x), lin).sum().backward()
    assert dora.magnitude.grad is not None and dora.magnitude.grad.abs().sum() > 0
    assert dora.lora_A.weight.grad is not None and dora.lora_B.weight.grad is not None


@pytest.mark.parametrize("cls", [SerialAdapter, ParallelAdapter])
def test_adapter_inits(cls):
    near = cls(5, 5, width=3)
    assert torch.count_nonzero(near.up.weight) == 0 and torch.count_nonzero(near.up.bias) == 0
    assert torch.count_nonzero(near.down.weight) == near.down.weight.numel()
    paper = cls(5, 5, width=3, init="paper")
    assert torch.count_nonzero(paper.up.weight) == paper.up.weight.numel()
    with torch.no_grad():
        paper.up.weight.zero_()
    paper.reset_parameters()
    assert torch.count_nonzero(paper.up.weight) > 0  # re-init follows the configured init


def test_serial_adapter_reads_base_output_parallel_reads_ffn_input():
    lin = _linear(6, 5)
    x, h = torch.randn(2, 6), torch.randn(2, 4)
    serial = SerialAdapter(5, 5, width=3)
    parallel = ParallelAdapter(4, 5, width=3, scaling=4.0)
    for m in (serial, parallel):
        nn.init.normal_(m.up.weight)
        nn.init.normal_(m.up.bias)
    base_out = lin(x)
    torch.testing.assert_close(serial(x, base_out, lin), serial.up(torch.relu(serial.down(base_out))))
    torch.testing.assert_close(parallel(x, base_out, lin, h), 4.0 * parallel.up(torch.relu(parallel.down(h))))
    with pytest.raises(RuntimeError, match="FFN input"):
        parallel(x, base_out, lin)


def test_host_sums_deltas_exposes_linear_and_clears_ffn_input():
    lin = _linear(6, 5)
    host = UnitHost(lin)
    assert host.weight is lin.weight and host.bias is lin.bias
    assert (host.in_features, host.out_features) == (6, 5)
    x, h = torch.randn(2, 6), torch.randn(2, 6)
    assert torch.equal(host(x), lin(x))
    lora = LoraDelta(6, 5, 2, 2.0)
    par = ParallelAdapter(6, 5, 3, scaling=2.0)
    for p in (lora.lora_B.weight, par.up.weight):
        nn.init.normal_(p)
    host.deltas["lora-2"] = lora
    host.deltas["parallel-adapter-3"] = par
    host.ffn_input = h
    out = host(x)
    torch.testing.assert_close(out, lin(x) + lora(x, lin(x), lin) + par(x, lin(x), lin, h))
    assert host.ffn_input is None  # never reused by the next forward


# ---- against HF peft ----------------------------------------------------------------------
@pytest.mark.parametrize("kind, dropout", [("lora", 0.0), ("dora", 0.0), ("lora", 0.1), ("dora", 0.1)])
def test_modules_match_peft(case, kind, dropout):
    """Our LoRA/DoRA modules on every layer give peft's logits for the same (perturbed) weights."""
    from peft import LoraConfig, get_peft_model

    r, alpha = 4, 8
    pristine = case.model()
    x = case.inputs()
    peft_model = get_peft_model(
        copy.deepcopy(pristine),
        LoraConfig(r=r, lora_alpha=alpha, target_modules=list(case.family.peft_targets), lora_dropout=dropout,
                   use_dora=(kind == "dora")),
    )
    lora_params = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    assert lora_params
    case.perturb(lora_params.values(), scale=0.2)
    peft_model.eval()

    sn = case.supernet(options=UnitOptions(lora_alpha=alpha, lora_dropout=dropout))
    for layer in range(sn.arch.num_layers):
        sn.add(Unit(layer, kind, r))
    assert sn.trainable_unit_params() == sum(p.numel() for p in lora_params.values())
    with torch.no_grad():
        for unit in sn.alive:
            for site in ("query", "value"):
                name = getattr(sn.arch.sites[unit.layer], site)
                delta = sn.model.get_submodule(name).deltas[unit.family]
                prefix = f"base_model.model.{name}"
                delta.lora_A.weight.copy_(lora_params.pop(f"{prefix}.lora_A.default.weight"))
                delta.lora_B.weight.copy_(lora_params.pop(f"{prefix}.lora_B.default.weight"))
                if kind == "dora":
                    delta.magnitude.copy_(lora_params.pop(f"{prefix}.lora_magnitude_vector.default.weight"))
    assert not lora_params, f"peft tensors not mapped onto our modules: {sorted(lora_params)}"

    ours = case.logits(sn.model.eval(), x)
    theirs = case.logits(peft_model, x)
    base = case.logits(pristine, x)
    assert (ours - base).abs().max() > 1e-3  # the comparison is not trivially between two bare models
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
