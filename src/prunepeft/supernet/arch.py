"""Find, by structure, where units go in a Hugging Face model.

For each transformer layer: the attention query, key, value and output projections, the FFN
input (up, and gate) and output (down) projections, and the module whose input is the FFN input
(parallel adapter). Nothing depends on a hard-coded layer count; names can be given
explicitly for architectures the rules do not recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from prunepeft.errors import UserError

QUERY_PATTERN = re.compile(r"(^|\.)(q_proj|query|query_proj|q_lin|q)$")
KEY_PATTERN = re.compile(r"(^|\.)(k_proj|key|key_proj|k_lin|k)$")
VALUE_PATTERN = re.compile(r"(^|\.)(v_proj|value|value_proj|v_lin|v)$")
HEAD_NAMES = ("pooler", "classifier", "score")  # top-level children only: DeBERTa's pooler is new, BERT's is inside "bert"


@dataclass
class ArchOverrides:
    """Names relative to one layer (and the layer list's path), for architectures the rules don't know."""

    layers_path: str | None = field(default=None, metadata={"help": "dotted path of the ModuleList of layers, e.g. 'bert.encoder.layer'"})
    query_name: str | None = field(default=None, metadata={"help": "query projection inside a layer, e.g. 'attention.self.query'"})
    key_name: str | None = field(default=None, metadata={"help": "key projection inside a layer"})
    value_name: str | None = field(default=None, metadata={"help": "value projection inside a layer"})
    attn_out_name: str | None = field(default=None, metadata={"help": "attention output projection inside a layer, e.g. 'attention.output.dense'"})
    ffn_up_names: list | None = field(default=None, metadata={"help": "FFN input Linears inside a layer (up, and gate if gated), e.g. [mlp.gate_proj, mlp.up_proj]"})
    ffn_out_name: str | None = field(default=None, metadata={"help": "FFN output Linear inside a layer, e.g. 'output.dense'"})
    ffn_in_name: str | None = field(default=None, metadata={"help": "module whose input is the FFN input (parallel adapter), e.g. 'intermediate'"})


@dataclass
class LayerSites:
    """Dotted names relative to the model of one layer's places (see modules/kinds.py TARGETS)."""

    query: str
    key: str
    value: str
    attn_out: str
    ffn_up: list[str]
    ffn_out: str
    ffn_in: str  # the module whose input is the FFN input

    def linears(self, target: str) -> list[str]:
        """The Linear names of one target (q, k, v, o, ffn_in, ffn_out)."""
        return {"q": [self.query], "k": [self.key], "v": [self.value], "o": [self.attn_out],
                "ffn_in": list(self.ffn_up), "ffn_out": [self.ffn_out]}[target]


@dataclass
class ArchInfo:
    layers_path: str
    sites: list[LayerSites]
    head: list[str]

    @property
    def num_layers(self) -> int:
        return len(self.sites)


def _find_layer_list(model: nn.Module) -> str:
    """The longest ModuleList whose entries share one class and hold Linears: the layer stack."""
    best, best_len = None, 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        if not any(isinstance(m, nn.Linear) for m in module[0].modules()):
            continue
        if len(module) > best_len:
            best, best_len = name, len(module)
    if best is None:
        raise _arch_error(model, "the list of transformer layers", "layers_path")
    return best


def _arch_error(model: nn.Module, what: str, key: str) -> UserError:
    return UserError(
        f"cannot find {what} in {type(model).__name__}: its structure is not one prunepeft recognises "
        f"(BERT, RoBERTa, DeBERTa-v2, Llama, Qwen2 and alike). Name it with the config key "
        f"'arch.{key}' (e.g. --set arch.{key}=...)"
    )


def _linears(layer: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in layer.named_modules() if isinstance(m, nn.Linear) and n}


def _find_sites(model: nn.Module, layer: nn.Module, ov: ArchOverrides) -> tuple:
    linears = _linears(layer)

    def by_pattern(pattern, override, what, key):
        if override:
            if override not in linears:
                raise UserError(f"arch.{key}={override!r} is not a Linear inside a layer; Linears there: {sorted(linears)}")
            return override
        hits = sorted(n for n in linears if pattern.search(n))
        if len(hits) != 1:
            raise _arch_error(model, what, key)
        return hits[0]

    query = by_pattern(QUERY_PATTERN, ov.query_name, "the attention query projection", "query_name")
    key = by_pattern(KEY_PATTERN, ov.key_name, "the attention key projection", "key_name")
    value = by_pattern(VALUE_PATTERN, ov.value_name, "the attention value projection", "value_name")
    hidden = linears[query].in_features

    if ov.ffn_out_name:
        ffn_out = by_pattern(None, ov.ffn_out_name, "", "ffn_out_name")
    else:
        # FFN output: the Linear with the widest input that maps back to the hidden size.
        candidates = [n for n, m in linears.items() if m.out_features == hidden and m.in_features > hidden]
        if not candidates:
            raise _arch_error(model, "the feed-forward output projection", "ffn_out_name")
        ffn_out = max(candidates, key=lambda n: (linears[n].in_features, n))
    if ov.attn_out_name:
        attn_out = by_pattern(None, ov.attn_out_name, "", "attn_out_name")
    else:
        # attention output: the other hidden -> hidden Linear under the attention block (BERT's
        # 'attention.output.dense', Llama's 'self_attn.o_proj')
        block = query.split(".")[0]
        outs = sorted(n for n, m in linears.items() if n.split(".")[0] == block and n not in (query, key, value)
                      and m.out_features == hidden)
        if len(outs) != 1:
            raise _arch_error(model, "the attention output projection", "attn_out_name")
        attn_out = outs[0]
    if ov.ffn_up_names:
        ups = [by_pattern(None, n, "", "ffn_up_names") for n in ov.ffn_up_names]
    else:
        width = linears[ffn_out].in_features
        ups = sorted(n for n, m in linears.items() if m.out_features == width and m.in_features == hidden and n != ffn_out)
        if not ups:
            raise _arch_error(model, "the feed-forward input projection", "ffn_up_names")
    if ov.ffn_in_name:
        ffn_in = ov.ffn_in_name
        if ffn_in not in dict(layer.named_modules()):
            raise UserError(f"arch.ffn_in_name={ffn_in!r} is not a module inside a layer")
    else:
        ffn_in = _ffn_input_module(linears, ffn_out)
        if ffn_in is None:
            raise _arch_error(model, "the feed-forward input", "ffn_in_name")
    return query, key, value, attn_out, ups, ffn_out, ffn_in


def _ffn_input_module(linears: dict[str, nn.Linear], ffn_out: str) -> str | None:
    """The module whose input is the FFN input: the common parent of the up- and down-projection
    (Llama 'mlp'), or, when they live apart (BERT 'intermediate' / 'output'), the up-projection's parent."""
    width = linears[ffn_out].in_features
    ups = sorted(n for n, m in linears.items() if m.out_features == width and n != ffn_out)
    if not ups:
        return None
    up_parent = ups[0].rpartition(".")[0]
    down_parent = ffn_out.rpartition(".")[0]
    if up_parent == down_parent and up_parent:
        return up_parent
    return up_parent or ups[0]


def inspect_model(model: nn.Module, overrides: ArchOverrides | None = None) -> ArchInfo:
    ov = overrides or ArchOverrides()
    layers_path = ov.layers_path or _find_layer_list(model)
    try:
        layers = model.get_submodule(layers_path)
    except AttributeError:
        raise UserError(f"arch.layers_path={layers_path!r} is not a module of {type(model).__name__}") from None
    if not isinstance(layers, (nn.ModuleList, nn.Sequential)) or len(layers) == 0:
        raise UserError(f"arch.layers_path={layers_path!r} is a {type(layers).__name__}, not a list of transformer layers; "
                        "name the ModuleList that holds the layers")
    sites = []
    for i, layer in enumerate(layers):
        q, k, v, o, ups, fo, fi = _find_sites(model, layer, ov)
        prefix = f"{layers_path}.{i}."
        sites.append(LayerSites(prefix + q, prefix + k, prefix + v, prefix + o, [prefix + u for u in ups], prefix + fo, prefix + fi))
    head = [n for n, _ in model.named_children() if n in HEAD_NAMES]
    return ArchInfo(layers_path=layers_path, sites=sites, head=head)
