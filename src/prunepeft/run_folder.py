"""Read a finished run folder back: its settings, configuration, metrics and the trained model.

Every way a folder can be incomplete or damaged (a missing file, JSON that does not parse, weights
that are truncated or belong to another configuration) ends in one UserError naming the folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from prunepeft.errors import UserError

RUN_FILES = ("config.json", "configuration.json", "metrics.json", "weights.safetensors")


def _damaged(run_dir: Path, what: str) -> UserError:
    return UserError(f"{run_dir} holds a damaged or incomplete prunepeft run: {what}; train it again with `prunepeft train` or `prunepeft run` "
                     "(or prunepeft.train / prunepeft.run), or point at another run folder")


def _read_json(run_dir: Path, name: str) -> dict:
    try:
        payload = json.loads((run_dir / name).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _damaged(run_dir, f"{name} cannot be read ({e})") from None
    if not isinstance(payload, dict):
        raise _damaged(run_dir, f"{name} does not hold a JSON object")
    return payload


def read_run(run_dir: str | Path):
    """(RunConfig, metrics dict, units) of a finished training run."""
    from prunepeft.config import from_dict
    from prunepeft.output_folder import check_finished
    from prunepeft.space.units import load_configuration

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    check_finished(run_dir, "load")
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished prunepeft training run (missing {', '.join(missing)}); "
                        "use a folder written by `prunepeft train` or `prunepeft run` (or prunepeft.train / prunepeft.run)")
    try:
        cfg = from_dict(_read_json(run_dir, "config.json"))
        units = load_configuration(run_dir / "configuration.json", allow_empty=cfg.method == "full")
    except UserError as e:
        raise _damaged(run_dir, str(e)) from None
    metrics = _read_json(run_dir, "metrics.json")
    if not isinstance(metrics.get("num_labels"), int) or not isinstance(metrics.get("is_regression"), bool):
        raise _damaged(run_dir, "metrics.json lacks num_labels / is_regression")
    return cfg, metrics, units


def _weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(run_dir / "weights.safetensors"))
    except Exception as e:  # safetensors raises its own error type for a truncated or foreign file
        raise _damaged(run_dir, f"weights.safetensors cannot be read ({type(e).__name__}: {e})") from None


def load_base(model_path: str, metrics: dict, tokenizer):
    """The pristine pretrained model a run trained on (runs before causal-LM tasks are classifiers)."""
    from prunepeft.supernet.loading import load_for_task

    return load_for_task(model_path, metrics.get("task_type", "classification"), metrics["num_labels"], metrics["is_regression"], tokenizer)


def load_trained(run_dir: str | Path, base_model=None):
    """(supernet holding the run's trained units and head, tokenizer or None, model path, metrics).
    `base_model`: the pretrained classifier the run started from, when it was an in-memory model."""
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_tokenizer, resolve_model_path
    from prunepeft.supernet.supernet import Supernet

    run_dir = Path(run_dir)
    cfg, metrics, units = read_run(run_dir)
    tensors = _weights(run_dir)
    tokenizer = None
    if base_model is not None:
        model_path = getattr(base_model, "name_or_path", "") or cfg.model
        model = copy.deepcopy(base_model)
        for p in model.parameters():
            p.requires_grad_(False)
        if getattr(model.config, "num_labels", None) != metrics["num_labels"]:
            raise UserError(f"base_model has {model.config.num_labels} labels but the run in {run_dir} trained {metrics['num_labels']}; "
                            "pass the model the run started from")
    else:
        model_path = resolve_model_path(cfg.model)
        tokenizer = load_tokenizer(model_path)
        model = load_base(model_path, metrics, tokenizer)
    supernet = Supernet(model, inspect_model(model, cfg.arch), cfg.units)
    supernet.train_backbone = cfg.method == "full"
    try:
        for unit in units:
            supernet.add(unit)
        supernet.load_unit_state_dict(tensors)
        supernet.load_head_state_dict(tensors)
        if supernet.train_backbone:  # a full fine-tune saved the whole backbone too
            supernet.load_backbone_state_dict(tensors)
    except UserError as e:
        raise _damaged(run_dir, str(e)) from None
    except RuntimeError as e:  # shapes that do not match: weights of another model
        raise _damaged(run_dir, f"weights.safetensors does not fit {cfg.model} with this configuration ({str(e).splitlines()[0]})") from None
    names = metrics.get("label_names")
    if isinstance(names, list) and len(names) == metrics["num_labels"]:
        model.config.id2label = dict(enumerate(map(str, names)))
        model.config.label2id = {str(n): i for i, n in enumerate(names)}
    model.eval()
    return supernet, tokenizer, model_path, metrics
