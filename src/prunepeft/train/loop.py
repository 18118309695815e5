"""The training and evaluation loop, on accelerate: AdamW with a learning rate per unit kind and
for the head, linear warm-up and decay, gradient clipping, evaluation every epoch."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from prunepeft.distributed import accelerator, mean_over_processes, process_random_stream, reduce_statistics
from prunepeft.errors import UserError
from prunepeft.logs import progress_enabled
from prunepeft.supernet.checkpointing import enable_gradient_checkpointing
from prunepeft.supernet.supernet import Supernet
from prunepeft.train.metrics import compute_metrics


def seed_everything(seed: int, stage: int = 0) -> None:
    """The single seeding point. Each stage (warm-up turn, round, retrain) seeds from (seed, stage)
    so a resumed search replays exactly what an uninterrupted one would have done."""
    s = (seed * 1_000_003 + stage) % (2**32)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


@dataclass
class TrainConfig:
    # one rule for every method, chosen on SST-2 train/dev with the habit (LoRA r=8 on q,v): docs/method-notes.md
    learning_rate: float = field(default=3e-3, metadata={"help": "learning rate of PEFT units (every method alike)"})
    kind_learning_rates: dict = field(default_factory=dict, metadata={"help": "per-kind override, e.g. {adapter: 5e-4}"})
    head_learning_rate: float = field(default=3e-3, metadata={"help": "learning rate of the classification head"})
    full_learning_rate: float = field(default=5e-5, metadata={"help": "backbone learning rate of --method full"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "share of the steps with a linearly rising learning rate, in [0, 1)"})
    num_train_epochs: float = field(default=3.0, metadata={"help": "passes over the training data (fractions allowed)"})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "training examples per step and process"})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "dev examples per forward pass"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradients are clipped to this norm"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute each layer's activations in backward: less memory, about one more forward of time"})


def tail_loss(losses: list[float]) -> float:
    """Mean loss over the second half of the steps: where training has got to."""
    tail = losses[len(losses) // 2:]
    return sum(tail) / max(1, len(tail))


def param_groups(supernet: Supernet, cfg: TrainConfig) -> list[dict]:
    by_kind: dict[str, list] = {}
    for unit in supernet.alive:
        by_kind.setdefault(unit.kind, []).extend(supernet.unit_parameters(unit))
    groups = [{"params": ps, "lr": cfg.kind_learning_rates.get(k, cfg.learning_rate), "name": k} for k, ps in by_kind.items()]
    groups.append({"params": supernet.head_parameters(), "lr": cfg.head_learning_rate, "name": "head"})
    if supernet.train_backbone:
        groups.append({"params": supernet.backbone_parameters(), "lr": cfg.full_learning_rate, "name": "backbone"})
    return [g for g in groups if g["params"]]


def _diverged(desc: str, what: str, epoch: int, step: int, bar):
    bar.close()  # else the error is printed on the progress bar's line
    raise UserError(f"{desc}: {what} at epoch {epoch + 1}, step {step + 1}; the run stopped and its folder is marked incomplete. "
                    "Lower the learning rate (--learning-rate) or check the data for extreme values")


def evaluate(model, loader, task) -> dict[str, float]:
    if getattr(task, "is_causal_lm", False):  # generation and likelihood, not logits vs labels
        from prunepeft.train.causal_eval import evaluate_causal_lm

        return evaluate_causal_lm(model, loader)
    acc = accelerator()
    # gather_for_metrics trims the padding of the last batch only on a loader accelerate prepared
    loader = acc.prepare(loader)
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            preds.append(acc.gather_for_metrics(logits).float().cpu())
            labels.append(acc.gather_for_metrics(batch["labels"]).cpu())
    p = torch.cat(preds).numpy()
    y = torch.cat(labels).numpy()
    if len(y) != len(loader.dataset):
        raise RuntimeError(f"evaluated {len(y)} examples of {len(loader.dataset)}")
    if task.is_regression:
        p = p.reshape(-1)
    return compute_metrics(task.name, task.is_regression, p, y)


def train(
    supernet: Supernet,
    train_loader,
    cfg: TrainConfig,
    *,
    epochs: float,
    task=None,
    dev_loader=None,
    collect: tuple[bool, bool] | None = None,
    desc: str = "train",
    on_epoch: Callable[[dict], None] | None = None,
    show_progress: bool = True,
    groups: list[dict] | None = None,
    after_step: Callable[[int], None] | None = None,
    local: bool = False,
    stop: Callable[[list[float]], bool] | None = None,
    warmup_steps: int | None = None,
) -> list[dict]:
    """Train the alive units and the head for `epochs` (fractions allowed). `collect` =
    (activation, gradients) turns on the statistics the pruning criteria need. `groups` replaces
    the supernet's parameter groups and `after_step(step)` runs after each optimiser step (both
    for peft-trained baselines such as AdaLoRA). With several processes the data is sharded and
    the losses and statistics are reduced over them; `local` trains on this process alone (all of
    `train_loader`, no wrapper, nothing reduced: the warm-up gives each process its own criteria).
    `stop(losses)`, given this epoch's step losses after each step, ends training early when it
    returns True (the losses are the global batch's, so every process stops at the same step);
    `warmup_steps` replaces the warm-up of `cfg.warmup_ratio` x the steps."""
    acc = accelerator()
    supernet.set_trainable()
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(supernet.model)
    groups = groups or param_groups(supernet, cfg)
    adamw = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    if local:
        model, optimizer, loader = supernet.model.to(acc.device), acc.prepare(adamw), train_loader
    else:
        model, optimizer, loader = acc.prepare(supernet.model, adamw, train_loader)
    # steps from the loader each process iterates: accelerate shards it over the processes
    total_steps = max(1, math.ceil(epochs * len(loader)))
    from transformers import get_linear_schedule_with_warmup

    # not prepared: accelerate's scheduler wrapper steps once per process per step (it counts steps
    # of the unsharded loader); this one counts the steps actually taken
    warmup = int(cfg.warmup_ratio * total_steps) if warmup_steps is None else warmup_steps
    scheduler = get_linear_schedule_with_warmup(adamw, warmup, total_steps)
    trainable = [p for g in groups for p in g["params"]]
    if collect:
        supernet.start_statistics(activation=collect[0], gradients=collect[1])
    history, step, epoch = [], 0, 0
    random_stream = contextlib.ExitStack()
    if not local:  # dropout masks: each process its own; the random state after training alike on all
        random_stream.enter_context(process_random_stream())
    bar = tqdm(total=total_steps, desc=desc, disable=not show_progress or not progress_enabled() or not acc.is_local_main_process, leave=False)
    start = time.perf_counter()
    while step < total_steps:
        model.train()
        running, n, losses = 0.0, 0, []
        for batch in loader:
            if local:
                batch = {k: v.to(acc.device) for k, v in batch.items()}
            with acc.autocast() if local else contextlib.nullcontext():
                loss = model(**batch).loss
            # the global batch's loss, the same on every process: decisions read it, and a
            # non-finite loss must stop every process, not only the one that saw it
            step_loss = (loss.detach() if local else mean_over_processes(loss)).item()
            if not math.isfinite(step_loss):
                _diverged(desc, f"the training loss became {step_loss}", epoch, step, bar)
            acc.backward(loss)
            supernet.accumulate_gradients()
            if cfg.max_grad_norm:
                norm = acc.clip_grad_norm_(trainable, cfg.max_grad_norm)
                if norm is not None and not torch.isfinite(torch.as_tensor(norm)):
                    _diverged(desc, f"the gradient norm became {float(norm)}", epoch, step, bar)
            optimizer.step()
            scheduler.step()
            if after_step:
                after_step(step + 1)
            optimizer.zero_grad(set_to_none=True)
            running += step_loss
            losses.append(step_loss)
            n += 1
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / n:.4f}")
            if stop is not None and stop(losses):
                total_steps = step
            if step >= total_steps:
                break
        epoch += 1
        record = {"epoch": epoch, "steps": step, "train_loss": running / max(n, 1), "tail_loss": tail_loss(losses),
                  "seconds": time.perf_counter() - start}
        if dev_loader is not None and task is not None:
            eval_start = time.perf_counter()
            record["dev"] = evaluate(model, dev_loader, task)
            start += time.perf_counter() - eval_start  # "seconds" counts training only
        history.append(record)
        if on_epoch:
            on_epoch(record)
    bar.close()
    random_stream.close()
    if collect:
        if not local:
            reduce_statistics(supernet)
        supernet.stop_statistics()
    acc.free_memory()  # drop accelerate's references to this round's optimizer and scheduler
    return history
