"""Export LoRA/DoRA units as a standard HF peft adapter, built and saved by peft itself.

Several LoRA sizes on one module are exported exactly as one LoRA of the summed rank:
sum_i s_i B_i A_i = B A with A = [A_1; A_2], B = [s_1/s B_1, s_2/s B_2], s = alpha/r.
Kinds peft cannot express (bottleneck adapters, per-projection biases, DoRA mixed with LoRA) are reported, never dropped
silently: the caller decides whether that is an error.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import torch

from prunepeft.errors import UserError
from prunepeft.modules.kinds import get_kind
from prunepeft.supernet.loading import peft_task_type
from prunepeft.supernet.supernet import Supernet


def peft_coverage(supernet: Supernet) -> tuple[list, list, str]:
    """(units peft can hold, units it cannot, kind used) for this supernet."""
    lora_like = [u for u in supernet.alive if get_kind(u.kind).peft]
    kinds = {u.kind for u in lora_like}
    if len(kinds) > 1:  # peft's use_dora is per adapter: keep DoRA, report LoRA (or vice versa)
        chosen = next(k for k in sorted(kinds) if get_kind(k).peft_dora)
        lora_like = [u for u in lora_like if u.kind == chosen]
    else:
        chosen = kinds.pop() if kinds else "lora"
    left = [u for u in supernet.alive if u not in lora_like]
    return lora_like, left, chosen


def _combined_modules(supernet: Supernet, units) -> dict[str, list]:
    """Module name -> [(unit, delta module)] of the units on it (mixed targets and ranks)."""
    per_module = defaultdict(list)
    for unit in units:
        for name, delta in supernet.deltas(unit):
            per_module[name].append((unit, delta))
    return per_module


def build_peft_model(supernet: Supernet, base_model):
    """A peft PeftModel on `base_model` (a fresh copy of the pretrained classifier) holding the
    supernet's LoRA/DoRA units and head. Returns (peft_model, units not exported)."""
    from peft import LoraConfig, get_peft_model

    units, left, kind = peft_coverage(supernet)
    if not units:
        raise UserError("this configuration has no LoRA/DoRA unit: peft has no format for bottleneck adapters or per-projection biases; "
                        "use --format prunepeft")
    per_module = _combined_modules(supernet, units)
    ranks = {name: sum(d.r for _, d in parts) for name, parts in per_module.items()}
    first = next(iter(per_module.values()))[0][1]
    # alpha = ratio * r keeps every module's scaling equal; with mixed ratios each unit's scaling
    # is folded into its B and the export uses scaling 1 (exact: DoRA's norm depends on s*B*A only).
    alpha_per_rank = first.alpha / first.r
    if any(abs(d.alpha / d.r - alpha_per_rank) > 1e-12 for parts in per_module.values() for _, d in parts):
        alpha_per_rank = 1.0
    default_r = max(set(ranks.values()), key=list(ranks.values()).count)
    config = LoraConfig(
        r=default_r,
        lora_alpha=alpha_per_rank * default_r,
        target_modules=sorted(per_module),
        rank_pattern={re.escape(n): r for n, r in ranks.items() if r != default_r},
        alpha_pattern={re.escape(n): alpha_per_rank * r for n, r in ranks.items() if r != default_r},
        lora_dropout=first.dropout.p if hasattr(first.dropout, "p") else 0.0,
        use_dora=bool(get_kind(kind).peft_dora),
        modules_to_save=list(supernet.arch.head) or None,  # a causal LM keeps its pretrained LM head: nothing new to save
        task_type=peft_task_type(base_model),
        init_lora_weights=True,
    )
    peft_model = get_peft_model(base_model, config)
    params = dict(peft_model.named_parameters())
    with torch.no_grad():
        for name, parts in per_module.items():
            prefix = f"base_model.model.{name}"
            scaling = alpha_per_rank  # alpha/r of the combined LoRA
            a = torch.cat([d.lora_A.weight for _, d in parts], dim=0)
            b = torch.cat([d.lora_B.weight * (d.scaling / scaling) for _, d in parts], dim=1)
            params[f"{prefix}.lora_A.default.weight"].copy_(a)
            params[f"{prefix}.lora_B.default.weight"].copy_(b)
            if get_kind(kind).peft_dora:
                if len(parts) > 1:
                    raise UserError(f"{name} holds several DoRA sizes; peft cannot merge DoRA units exactly")
                params[f"{prefix}.lora_magnitude_vector.default.weight"].copy_(parts[0][1].magnitude)
        for head in supernet.arch.head:
            src = dict(supernet.model.get_submodule(head).named_parameters())
            for pname, p in src.items():
                params[f"base_model.model.{head}.modules_to_save.default.{pname}"].copy_(p)
    return peft_model, left


def export_peft(supernet: Supernet, base_model, out_dir: Path) -> list:
    peft_model, left = build_peft_model(supernet, base_model)
    peft_model.save_pretrained(str(out_dir))
    return left


def foldable(supernet: Supernet, units) -> list:
    """The units a merged model can hold although peft cannot: bias units whose every Linear has a
    bias of its own (BERT-like models; Llama's projections have none)."""
    return [u for u in units if get_kind(u.kind).folds_into_bias
            and all(supernet.base_linear(name).bias is not None for name in supernet.linear_names(u))]


def export_merged(supernet: Supernet, base_model, out_dir: Path, tokenizer=None) -> list:
    peft_model, left = build_peft_model(supernet, base_model)
    merged = peft_model.merge_and_unload()
    folded = foldable(supernet, left)
    with torch.no_grad():
        for unit in folded:
            for name, delta in supernet.deltas(unit):
                merged.get_submodule(name).bias.add_(delta.delta_bias())
    left = [u for u in left if u not in folded]
    merged.save_pretrained(str(out_dir))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out_dir))
    return left
