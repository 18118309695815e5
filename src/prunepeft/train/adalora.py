"""The AdaLoRA baseline (Zhang et al. 2023), trained by HF peft itself on the same harness (data,
optimiser, schedule, seeds, evaluation) as every other method, ending at the same parameter count.

AdaLoRA starts every linear of every layer (as `lora-all`) at rank `INIT_R` and prunes rank
triplets during training by an EMA of |w * dL/dw| with an uncertainty term, on a cubic schedule.
peft counts its budget in rank triplets, but a triplet on a module (d_in -> d_out) costs
d_in + d_out + 1 parameters: on MiniLM an FFN triplet costs 2.5x an attention one, so a triplet
budget ended anywhere from 78% to 106% of the parameter budget, depending on where the triplets
survived. prunepeft keeps peft's scores and cubic schedule but counts the schedule in parameters:
each masking keeps the most important triplets whose summed cost fits (`budget_in_parameters`), so
AdaLoRA ends within one triplet below the budget; the parameters kept (nonzero triplets) are reported.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from prunepeft.config import to_dict
from prunepeft.distributed import is_main_process, steps_per_epoch
from prunepeft.io import append_jsonl, remove, write_json
from prunepeft.logs import get_logger
from prunepeft.modules.kinds import TARGETS
from prunepeft.search.budget import parse_budget
from prunepeft.supernet.arch import inspect_model
from prunepeft.supernet.loading import load_for_task, peft_task_type
from prunepeft.train.fixed import STAGE_FINAL
from prunepeft.train.loop import seed_everything, train

INIT_R = 4
TINIT, TFINAL, DELTA_T = 0.1, 0.25, 10  # shares of the steps, and steps between allocations (AdaLoRA paper's habits)


class PeftTrainee:
    """What `train` needs from a model whose trainable parameters peft manages."""

    train_backbone = False

    def __init__(self, model):
        self.model = model

    def set_trainable(self) -> None:  # peft already froze the base and left its own tensors trainable
        pass

    def accumulate_gradients(self) -> None:
        pass


def triplet_cost(module) -> int:
    """Parameters of one rank triplet of a Linear (a column of A, a row of B, one E)."""
    return module.in_features + module.out_features + 1


def kept_params(model) -> tuple[int, int, int]:
    """(parameters in nonzero rank triplets, parameters allocated, nonzero triplets) of an AdaLoRA model."""
    kept = allocated = triplets = 0
    for module in model.modules():
        if hasattr(module, "lora_E") and "default" in module.lora_E:
            e = module.lora_E["default"]
            cost = triplet_cost(module)
            triplets += int((e != 0).sum())
            kept += int((e != 0).sum()) * cost
            allocated += e.numel() * cost
    return kept, allocated, triplets


def _triplet_scores(allocator, model) -> tuple[torch.Tensor, torch.Tensor]:
    """(importance, parameter cost) of every rank triplet, with peft's own per-triplet importance."""
    name = allocator.adapter_name
    vectors, values = {}, {}
    for n, _ in model.named_parameters():
        if f"lora_A.{name}" in n:
            vectors.setdefault(n.replace("lora_A", "%s"), []).append(allocator._element_score(n).mean(dim=1, keepdim=True))
        elif f"lora_B.{name}" in n:
            vectors.setdefault(n.replace("lora_B", "%s"), []).append(allocator._element_score(n).mean(dim=0).view(-1, 1))
        elif f"lora_E.{name}" in n:
            values[n.replace("lora_E", "%s")] = allocator._element_score(n)
    scores = [allocator._combine_ipt(values[key], torch.cat(parts, dim=1)) for key, parts in vectors.items()]
    costs = [torch.full_like(score, triplet_cost(model.get_submodule(key.split(".%s")[0]))) for key, score in zip(vectors, scores)]
    return torch.cat(scores), torch.cat(costs)


def budget_in_parameters(allocator, model, final_params: int) -> None:
    """Make peft's rank allocator keep the most important triplets that fit a PARAMETER budget.

    peft's cubic schedule (in triplets, from all of them to `target_bgt`) is mapped linearly onto
    parameters (from all triplets' cost to `final_params`); each masking then keeps the top-scoring
    triplets whose summed cost fits, by asking peft's own masking for that many triplets."""
    mask_in_triplets = allocator.mask_to_budget
    e_name = f"lora_E.{allocator.adapter_name}"
    all_params = kept_params(model)[1]

    def mask_to_budget(model, budget: int):
        scores, costs = _triplet_scores(allocator, model)
        share = (budget - allocator.target_bgt) / max(1, allocator.init_bgt - allocator.target_bgt)
        allowed = final_params + share * max(0, all_params - final_params)
        keep = int((costs[scores.argsort(descending=True)].cumsum(0) <= allowed).sum())
        if keep >= allocator.init_bgt:  # everything fits: nothing to mask (peft's kthvalue needs k >= 1)
            return {n: [True] * p.numel() for n, p in model.named_parameters() if e_name in n}
        return mask_in_triplets(model, max(1, keep))

    allocator.mask_to_budget = mask_to_budget


def train_adalora(session, out_dir: Path) -> dict:
    from peft import AdaLoraConfig, get_peft_model

    cfg = session.cfg
    out_dir = Path(out_dir)
    write_json(out_dir / "config.json", to_dict(cfg))
    seed_everything(cfg.seed, STAGE_FINAL)
    task = session.task
    model = load_for_task(session.model_path, task.task_type, task.num_labels, task.is_regression, session.tokenizer)
    arch = inspect_model(model, cfg.arch)
    backbone = sum(p.numel() for p in model.parameters())
    budget = parse_budget(cfg.search.budget, backbone)
    targets = [n for sites in arch.sites for t in TARGETS for n in sites.linears(t)]
    costs = [triplet_cost(model.get_submodule(n)) for n in targets]
    final_ranks = max(1, round(budget / (sum(costs) / len(costs))))
    loader = session.loader(session.train_encoded, train=True, stage=STAGE_FINAL)
    total = max(1, math.ceil(cfg.train.num_train_epochs * steps_per_epoch(len(loader))))  # the steps train() will take
    config = AdaLoraConfig(init_r=INIT_R, target_r=max(1, final_ranks // len(targets)), tinit=int(TINIT * total),
                           tfinal=int(TFINAL * total), deltaT=min(DELTA_T, max(1, total // 20)), total_step=total,
                           lora_alpha=INIT_R, target_modules=targets, modules_to_save=list(arch.head) or None,
                           task_type=peft_task_type(model))
    peft_model = get_peft_model(model, config)
    peft_model.base_model.rankallocator.target_bgt = final_ranks  # the schedule's end, in triplets
    budget_in_parameters(peft_model.base_model.rankallocator, peft_model.base_model.model, budget)
    head = {id(p) for h in arch.head for p in peft_model.base_model.model.get_submodule(h).modules_to_save.parameters()}
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in head], "lr": cfg.train.learning_rate, "name": "adalora"},
              {"params": [p for p in trainable if id(p) in head], "lr": cfg.train.head_learning_rate, "name": "head"}]
    groups = [g for g in groups if g["params"]]  # a causal LM has no new head
    log_path = out_dir / "epochs.jsonl"
    remove(log_path)
    get_logger(__name__).info(f"AdaLoRA on {len(targets)} linears: rank {INIT_R} -> the rank triplets that fit {budget:,} params, {total} steps")
    start = time.perf_counter()
    history = train(PeftTrainee(peft_model), loader, cfg.train, epochs=cfg.train.num_train_epochs, task=session.task,
                    dev_loader=session.loader(session.dev_encoded, train=False), desc="train adalora",
                    on_epoch=lambda r: append_jsonl(log_path, r), groups=groups,
                    after_step=lambda step: peft_model.base_model.update_and_allocate(step))
    seconds = time.perf_counter() - start
    kept, allocated, triplets = kept_params(peft_model)
    if is_main_process():
        peft_model.save_pretrained(str(out_dir / "adalora"))
    head_params = sum(p.numel() for p in trainable if id(p) in head)
    metrics = {
        "task": session.task.name, "metric": session.task.metric, "metrics": history[-1]["dev"],
        "score": history[-1]["dev"][session.task.metric], "trainable_params": kept, "allocated_params": allocated,
        "head_params": head_params, "backbone_params": backbone, "trainable_percent": 100.0 * kept / backbone,
        "num_units": 0, "kept_rank_triplets": triplets, "train_samples": len(session.train_encoded),
        "dev_samples": len(session.dev_encoded), "num_labels": session.task.num_labels, "is_regression": session.task.is_regression, "task_type": task.task_type,
        "seconds": seconds, "train_seconds": history[-1]["seconds"], "seed": cfg.seed, "method": "adalora",
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics
