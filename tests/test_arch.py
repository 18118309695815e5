"""inspect_model: the sites of every layer found by structure, clear errors otherwise, overrides."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunepeft.errors import UserError
from prunepeft.supernet.arch import ArchOverrides, inspect_model

pytestmark = pytest.mark.usefixtures("tiny_env")


def test_finds_every_site(case):
    model = case.model()
    arch = inspect_model(model)
    assert arch.layers_path == case.family.layers_path
    assert arch.num_layers == case.config.num_hidden_layers == case.family.num_layers
    for i, sites in enumerate(arch.sites):
        assert sites.query == case.site(i, "query")
        assert sites.value == case.site(i, "value")
        assert sites.ffn_out == case.site(i, "ffn_out")
        assert sites.ffn_in == case.site(i, "ffn_in")
        for name in (sites.query, sites.value, sites.ffn_out):
            assert isinstance(model.get_submodule(name), nn.Linear)
    assert arch.head == list(case.family.head)


# the other places of a layer (modules/kinds.py TARGETS), per family
OTHER_SITES = {
    "bert": ("attention.self.key", "attention.output.dense", ["intermediate.dense"]),
    "roberta": ("attention.self.key", "attention.output.dense", ["intermediate.dense"]),
    "deberta-v2": ("attention.self.key_proj", "attention.output.dense", ["intermediate.dense"]),
    "llama": ("self_attn.k_proj", "self_attn.o_proj", ["mlp.gate_proj", "mlp.up_proj"]),
    "qwen2": ("self_attn.k_proj", "self_attn.o_proj", ["mlp.gate_proj", "mlp.up_proj"]),
}


def test_finds_every_target(case):
    """q, k, v, o, ffn_in (up, and gate where gated) and ffn_out, by structure, in every family."""
    model = case.model()
    arch = inspect_model(model)
    key, attn_out, ups = OTHER_SITES[case.name]
    prefix = f"{case.family.layers_path}.1."
    sites = arch.sites[1]
    assert sites.linears("q") == [case.site(1, "query")]
    assert sites.linears("k") == [prefix + key]
    assert sites.linears("v") == [case.site(1, "value")]
    assert sites.linears("o") == [prefix + attn_out]
    assert sites.linears("ffn_in") == [prefix + u for u in ups]
    assert sites.linears("ffn_out") == [case.site(1, "ffn_out")]
    for target in ("q", "k", "v", "o", "ffn_in", "ffn_out"):
        assert all(isinstance(model.get_submodule(n), nn.Linear) for n in sites.linears(target))


def test_value_projection_shape_follows_kv_heads(case):
    model = case.model()
    arch = inspect_model(model)
    assert model.get_submodule(arch.sites[0].value).out_features == case.family.value_out
    assert model.get_submodule(arch.sites[0].ffn_out).in_features == case.config.intermediate_size


class OnlySequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(8, 24)  # fused qkv: no separate query/value
        self.out = nn.Linear(8, 8)


class StackWithoutQuery(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])


def _gpt2():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, num_labels=2, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return GPT2ForSequenceClassification(cfg)


def test_no_layer_list_names_the_key():
    with pytest.raises(UserError, match=r"list of transformer layers.*OnlySequential.*arch\.layers_path"):
        inspect_model(OnlySequential())


def test_layers_without_query_name_the_key():
    with pytest.raises(UserError, match=r"query projection.*arch\.query_name"):
        inspect_model(StackWithoutQuery())


def test_gpt2_fused_attention_is_not_recognised():
    model = _gpt2()
    # GPT-2 blocks hold Conv1D, not Linear: the layer list itself is not recognised.
    with pytest.raises(UserError, match=r"transformer layers.*GPT2ForSequenceClassification.*arch\.layers_path"):
        inspect_model(model)
    # Even with the layer list named, the fused c_attn has no query projection to find.
    with pytest.raises(UserError, match=r"query projection.*arch\.query_name"):
        inspect_model(model, ArchOverrides(layers_path="transformer.h"))


def test_explicit_overrides_on_bert(bert_case):
    model = bert_case.model()
    ov = ArchOverrides(
        layers_path="bert.encoder.layer",
        query_name="attention.self.query",
        value_name="attention.self.value",
        ffn_out_name="output.dense",
        ffn_in_name="intermediate",
    )
    assert inspect_model(model, ov) == inspect_model(model)


def test_overrides_can_choose_other_sites(bert_case):
    """Overrides are honoured, not just checked: swap the query and key projections."""
    model = bert_case.model()
    arch = inspect_model(model, ArchOverrides(query_name="attention.self.key", key_name="attention.self.query", ffn_in_name="intermediate.dense"))
    assert arch.sites[1].query == "bert.encoder.layer.1.attention.self.key"
    assert arch.sites[1].linears("k") == ["bert.encoder.layer.1.attention.self.query"]
    assert arch.sites[1].ffn_in == "bert.encoder.layer.1.intermediate.dense"
    assert arch.sites[1].value == "bert.encoder.layer.1.attention.self.value"


@pytest.mark.parametrize(
    "field, value",
    [
        ("layers_path", "bert.encoder.layers"),
        ("query_name", "attention.self.q"),
        ("value_name", "attention.value"),
        ("ffn_out_name", "output.LayerNorm"),  # a module, but not a Linear
        ("ffn_in_name", "mlp"),
    ],
)
def test_wrong_override_raises(bert_case, field, value):
    with pytest.raises(UserError, match=rf"arch\.{field}"):
        inspect_model(bert_case.model(), ArchOverrides(**{field: value}))


@pytest.mark.parametrize("path", ["bert.encoder", "classifier"])
def test_layers_path_not_a_list_raises_user_error(bert_case, path):
    with pytest.raises(UserError, match=r"arch\.layers_path"):
        inspect_model(bert_case.model(), ArchOverrides(layers_path=path))


def test_head_covers_every_newly_initialised_module(case, tmp_path, request):
    """Load the classifier on top of a saved bare backbone (what a Hub checkpoint holds): every
    top-level module the loader had to initialise from scratch must be trained as head."""
    case.backbone_class()(case.config).save_pretrained(tmp_path)
    model, info = case.model_class().from_pretrained(tmp_path, config=case.config, output_loading_info=True)
    new_children = {k.split(".")[0] for k in info["missing_keys"]}
    assert new_children, info
    assert new_children <= set(inspect_model(model).head)
