"""Train one fixed configuration from a fresh initialisation, evaluate it, write the run folder."""

from __future__ import annotations

import time
from pathlib import Path

from safetensors.torch import save

from prunepeft.config import to_dict
from prunepeft.io import append_jsonl, atomic_write_bytes, remove, write_json
from prunepeft.logs import get_logger
from prunepeft.space.units import save_configuration
from prunepeft.supernet.supernet import Supernet
from prunepeft.train.loop import train

log = get_logger(__name__)
STAGE_FINAL = 999_999  # seeding stage of the final training, apart from search stages


def parameter_accounting(supernet: Supernet) -> dict:
    """peft-style numbers: trainable unit params, head params, backbone params, percent."""
    units = supernet.trainable_unit_params()
    head = sum(p.numel() for p in supernet.head_parameters())
    backbone = supernet.backbone_params()
    trainable = units + head + (backbone if supernet.train_backbone else 0)
    return {
        "trainable_params": units if not supernet.train_backbone else backbone,
        "head_params": head,
        "backbone_params": backbone,
        "trainable_percent": 100.0 * (units if not supernet.train_backbone else backbone) / backbone,
        "all_trainable_params": trainable,
    }


def save_weights(supernet: Supernet, path: Path) -> None:
    """Units and head; a full fine-tune adds the backbone (each tensor under exactly one key)."""
    tensors = {**supernet.unit_state_dict(), **supernet.head_state_dict()}
    if supernet.train_backbone:
        tensors.update(supernet.backbone_state_dict())
    atomic_write_bytes(path, save(tensors))


def configuration_meta(session, supernet: Supernet) -> dict:
    from dataclasses import asdict

    return {"model": session.cfg.model, "num_layers": supernet.arch.num_layers, "unit_options": asdict(supernet.options)}


def train_configuration(session, units, out_dir: Path, *, full: bool = False, extra_metrics: dict | None = None) -> dict:
    return fit_configuration(session, units, out_dir, full=full, extra_metrics=extra_metrics)[0]


def fit_configuration(session, units, out_dir: Path, *, full: bool = False, extra_metrics: dict | None = None,
                      on_epoch=None, warm: dict | None = None) -> tuple[dict, Supernet]:
    """Train `units` from a fresh initialisation (or, for the units and head whose tensors `warm` holds, from
    those), evaluate on dev, write the run folder. Returns (metrics, the trained supernet, in eval mode);
    `on_epoch(record)` also gets each epoch's record (for trackers)."""
    cfg = session.cfg
    out_dir = Path(out_dir)
    write_json(out_dir / "config.json", to_dict(cfg))
    supernet = session.build_supernet(units, stage=STAGE_FINAL)
    supernet.train_backbone = full
    warm_units = supernet.warm_start(warm) if warm is not None else []
    if warm is not None:
        log.info(f"warm start: the head and {len(warm_units)} of {len(supernet.alive)} units start from the search's weights")
    log_path = out_dir / "epochs.jsonl"
    remove(log_path)
    accounting = parameter_accounting(supernet)
    log.info(f"training {len(supernet.alive)} units: {accounting['trainable_params']:,} trainable unit params "
          f"({accounting['trainable_percent']:.3f}% of {accounting['backbone_params']:,}), head {accounting['head_params']:,}")
    start = time.perf_counter()

    def log_epoch(record):
        append_jsonl(log_path, record)
        if on_epoch:
            on_epoch(record)
        log.info(f"  epoch {record['epoch']}: loss {record['train_loss']:.4f}  dev {record.get('dev')}")

    history = train(
        supernet,
        session.loader(session.train_encoded, train=True, stage=STAGE_FINAL),
        cfg.train,
        epochs=cfg.train.num_train_epochs,
        task=session.task,
        dev_loader=session.loader(session.dev_encoded, train=False),
        desc="train",
        on_epoch=log_epoch,
    )
    seconds = time.perf_counter() - start
    train_seconds = history[-1]["seconds"]  # without the per-epoch dev evaluation
    save_configuration(supernet.alive, out_dir / "configuration.json", configuration_meta(session, supernet))
    save_weights(supernet, out_dir / "weights.safetensors")
    metrics = {
        "task": session.task.name,
        "metric": session.task.metric,
        "metrics": history[-1]["dev"],
        "score": history[-1]["dev"][session.task.metric],
        **accounting,
        "num_units": len(supernet.alive),
        "train_samples": len(session.train_encoded),
        "dev_samples": len(session.dev_encoded),
        "num_labels": session.task.num_labels,
        "label_names": session.task.label_names,
        "is_regression": session.task.is_regression,
        "task_type": session.task.task_type,
        "seconds": seconds,
        "train_seconds": train_seconds,
        "seed": cfg.seed,
        "warm_started_units": len(warm_units) if warm is not None else None,
    }
    metrics.update(extra_metrics or {})
    if "search_seconds" in metrics:
        metrics["search_train_ratio"] = metrics["search_seconds"] / train_seconds
        metrics["search_train_epoch_ratio"] = metrics["search_epochs"] / cfg.train.num_train_epochs
    write_json(out_dir / "metrics.json", metrics)
    supernet.model.eval()
    return metrics, supernet
