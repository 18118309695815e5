"""Export to HF peft: same logits as our supernet, exact files, nothing dropped silently."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from prunepeft.errors import UserError
from prunepeft.export.peft_format import (
    build_peft_model,
    export_merged,
    export_peft,
    foldable,
    peft_coverage,
)
from prunepeft.space.units import Unit
from prunepeft.supernet.supernet import UnitOptions

pytestmark = pytest.mark.usefixtures("tiny_env")


def _trained(case, units, options=None, model=None, scale=0.2):
    """A supernet whose units and head were 'trained' (perturbed)."""
    sn = case.supernet(model=model, options=options)
    for unit in units:
        sn.add(unit)
    case.perturb_units(sn, scale=scale)
    case.perturb(sn.head_parameters(), scale=scale, seed=1)
    sn.model.eval()
    return sn


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_build_peft_model_matches(case, kind):
    units = [Unit(0, kind, 4), Unit(1, kind, 2)]
    sn = _trained(case, units)
    x = case.inputs()
    pm, left = build_peft_model(sn, case.model())
    assert left == []
    pm.eval()
    ours = case.logits(sn.model, x)
    assert (ours - case.logits(case.model(), x)).abs().max() > 1e-3
    torch.testing.assert_close(case.logits(pm, x), ours, atol=1e-5, rtol=1e-5)
    lora_numel = sum(p.numel() for n, p in pm.named_parameters() if "lora_" in n)
    assert lora_numel == sn.trainable_unit_params()


def test_sum_of_ranks(bert_case, tmp_path):
    case = bert_case
    sn = _trained(case, [Unit(0, "lora", 2), Unit(0, "lora", 4), Unit(1, "lora", 2), Unit(2, "lora", 2)])
    x = case.inputs()
    pm, left = build_peft_model(sn, case.model())
    assert left == []
    q0 = pm.get_submodule("base_model.model.bert.encoder.layer.0.attention.self.query")
    assert q0.r["default"] == 6
    assert q0.lora_A["default"].weight.shape == (6, 32)
    assert pm.get_submodule("base_model.model.bert.encoder.layer.1.attention.self.query").r["default"] == 2
    torch.testing.assert_close(case.logits(pm.eval(), x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)

    out = tmp_path / "adapter"
    export_peft(sn, case.model(), out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 2
    assert set(cfg["rank_pattern"].values()) == {6}
    assert len(cfg["rank_pattern"]) == 2  # query and value of layer 0
    assert all(a == r for a, r in zip(cfg["alpha_pattern"].values(), cfg["rank_pattern"].values()))


def test_export_peft_files_and_reload(bert_case, saved_bert, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    case = bert_case
    fresh = lambda: AutoModelForSequenceClassification.from_pretrained(saved_bert).eval()
    units = [Unit(0, "lora", 4), Unit(2, "lora", 4), Unit(2, "lora", 2), Unit(1, "adapter", 8), Unit(2, "parallel-adapter", 4)]
    sn = _trained(case, units, model=fresh())
    out = tmp_path / "adapter"
    left = export_peft(sn, fresh(), out)
    assert sorted(left) == [Unit(1, "adapter", 8), Unit(2, "parallel-adapter", 4)]

    cfg = json.loads((out / "adapter_config.json").read_text())
    expected_targets = sorted(
        f"bert.encoder.layer.{i}.attention.self.{p}" for i in (0, 2) for p in ("query", "value")
    )
    assert sorted(cfg["target_modules"]) == expected_targets
    assert cfg["task_type"] == "SEQ_CLS"
    assert "classifier" in cfg["modules_to_save"]
    assert cfg["use_dora"] is False
    # layer 0 has rank 4, layer 2 has lora-4 + lora-2 = rank 6: one of them is the default r,
    # the other two modules are in rank_pattern (alpha = r everywhere, as alpha defaults to r)
    assert {cfg["r"]} | set(cfg["rank_pattern"].values()) == {4, 6}
    assert len(cfg["rank_pattern"]) == 2 and cfg["r"] not in cfg["rank_pattern"].values()
    assert cfg["lora_alpha"] == cfg["r"] and cfg["alpha_pattern"] == cfg["rank_pattern"]

    tensors = load_file(out / "adapter_model.safetensors")
    assert any("classifier" in k for k in tensors)
    lora_numel = sum(t.numel() for k, t in tensors.items() if "lora_" in k)
    assert lora_numel == sn.trainable_unit_params([u for u in sn.alive if u.kind == "lora"])

    # Reload with peft itself on a fresh base: same function as ours without the adapters.
    reloaded = PeftModel.from_pretrained(fresh(), out).eval()
    x = case.inputs()
    for unit in left:
        sn.remove(unit)
    torch.testing.assert_close(case.logits(reloaded, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_export_peft_reload_every_family(case, kind, tmp_path):
    from peft import PeftModel

    sn = _trained(case, [Unit(0, kind, 4), Unit(1, kind, 4)])
    export_peft(sn, case.model(), tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["use_dora"] is (kind == "dora")
    assert set(cfg["modules_to_save"]) >= set(case.family.head)
    reloaded = PeftModel.from_pretrained(case.model(), tmp_path).eval()
    x = case.inputs()
    torch.testing.assert_close(case.logits(reloaded, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_mixed_targets_and_ranks_reload_every_family(case, kind, tmp_path):
    """Module-level units on every target with several ranks (two on one module) export to peft
    (target_modules, rank_pattern, alpha_pattern) and reload with the same logits."""
    from peft import PeftModel

    units = [Unit(0, kind, 2, "q"), Unit(0, kind, 4, "k"), Unit(0, kind, 2, "ffn_in"), Unit(1, kind, 3, "o"),
             Unit(1, kind, 1, "ffn_out"), Unit(1, kind, 2, "v")]
    if kind == "lora":
        units += [Unit(0, kind, 4, "q+v"), Unit(1, kind, 8, "ffn_in")]
    sn = _trained(case, units)
    export_peft(sn, case.model(), tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert len(cfg["target_modules"]) == len({n for u in units for n in sn.linear_names(u)})
    assert cfg["rank_pattern"]
    reloaded = PeftModel.from_pretrained(case.model(), tmp_path).eval()
    x = case.inputs()
    torch.testing.assert_close(case.logits(reloaded, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)
    lora_numel = sum(p.numel() for n, p in reloaded.named_parameters() if "lora_" in n)
    assert lora_numel == sn.trainable_unit_params()


def test_export_merged(bert_case, saved_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification

    case = bert_case
    sn = _trained(case, [Unit(0, "lora", 4), Unit(1, "lora", 8), Unit(1, "lora", 2)],
                  model=AutoModelForSequenceClassification.from_pretrained(saved_bert).eval())
    out = tmp_path / "merged"
    left = export_merged(sn, AutoModelForSequenceClassification.from_pretrained(saved_bert), out)
    assert left == []
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    x = case.inputs()
    torch.testing.assert_close(case.logits(merged, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)


def test_export_merged_folds_bias_units_into_the_linears_biases(bert_case, saved_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification

    case = bert_case
    units = [Unit(0, "lora", 4, "q"), Unit(0, "bias", 1, "q"), Unit(1, "bias", 1, "ffn_in+ffn_out")]
    sn = _trained(case, units, model=AutoModelForSequenceClassification.from_pretrained(saved_bert).eval())
    assert peft_coverage(sn)[1] == [Unit(0, "bias", 1, "q"), Unit(1, "bias", 1, "ffn_in+ffn_out")]  # peft has no type for them
    left = export_merged(sn, AutoModelForSequenceClassification.from_pretrained(saved_bert), tmp_path)
    assert left == []
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    x = case.inputs()
    torch.testing.assert_close(case.logits(merged, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)


def test_bias_units_do_not_fold_where_the_linear_has_no_bias(make_case):
    llama = _trained(make_case("llama"), [Unit(0, "lora", 4), Unit(0, "bias", 1, "q")])
    assert foldable(llama, llama.alive) == []  # Llama's projections have no bias: a merge would drop the unit


def test_export_merged_dora_llama(make_case, tmp_path):
    from transformers import AutoModelForSequenceClassification

    case = make_case("llama")
    sn = _trained(case, [Unit(0, "dora", 4), Unit(2, "dora", 2)])
    export_merged(sn, case.model(), tmp_path)
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    x = case.inputs()
    torch.testing.assert_close(case.logits(merged, x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)


def test_units_peft_cannot_express_are_reported(bert_case):
    case = bert_case
    sn = _trained(case, [Unit(0, "dora", 4), Unit(1, "lora", 4), Unit(1, "adapter", 8), Unit(2, "parallel-adapter", 4)])
    kept, left, kind = peft_coverage(sn)
    assert kind == "dora" and kept == [Unit(0, "dora", 4)]
    assert sorted(left) == [Unit(1, "adapter", 8), Unit(1, "lora", 4), Unit(2, "parallel-adapter", 4)]
    pm, left2 = build_peft_model(sn, case.model())
    assert sorted(left2) == sorted(left)
    assert sorted(kept + left) == sn.alive  # every unit is either exported or reported


def test_only_adapters_raises(bert_case, tmp_path):
    sn = _trained(bert_case, [Unit(0, "adapter", 8), Unit(1, "parallel-adapter", 4)])
    with pytest.raises(UserError, match="no LoRA/DoRA unit"):
        export_peft(sn, bert_case.model(), tmp_path)
    with pytest.raises(UserError, match="no LoRA/DoRA unit"):
        export_merged(sn, bert_case.model(), tmp_path)


def test_several_dora_sizes_on_one_module_raise(bert_case):
    sn = _trained(bert_case, [Unit(0, "dora", 4), Unit(0, "dora", 2)])
    with pytest.raises(UserError, match="several DoRA sizes"):
        build_peft_model(sn, bert_case.model())


def test_export_leaves_our_model_untouched(bert_case):
    sn = _trained(bert_case, [Unit(0, "lora", 4)])
    x = bert_case.inputs()
    before = bert_case.logits(sn.model, x)
    state = copy.deepcopy(sn.unit_state_dict())
    build_peft_model(sn, bert_case.model())
    assert torch.equal(bert_case.logits(sn.model, x), before)
    assert all(torch.equal(v, state[k]) for k, v in sn.unit_state_dict().items())


def test_fixed_alpha_with_several_sizes_exports(bert_case):
    case = bert_case
    sn = _trained(case, [Unit(0, "lora", 4), Unit(1, "lora", 8), Unit(1, "lora", 2)], options=UnitOptions(lora_alpha=16))
    pm, left = build_peft_model(sn, case.model())
    x = case.inputs()
    torch.testing.assert_close(case.logits(pm.eval(), x), case.logits(sn.model, x), atol=1e-5, rtol=1e-5)
