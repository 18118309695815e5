"""`prunepeft export RUN_DIR --format peft|merged|prunepeft --out DIR`: rebuild the trained model
of a run folder and write it in a format the ecosystem loads. The output folder appears whole
or not at all (written under a temporary name, then renamed)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from prunepeft.config import from_dict
from prunepeft.errors import UserError
from prunepeft.io import write_json
from prunepeft.runfolder import check_finished
from prunepeft.space.units import load_configuration
from prunepeft.supernet.arch import inspect_model
from prunepeft.supernet.loading import (
    load_for_task,
    load_tokenizer,
    resolve_model_path,
)
from prunepeft.supernet.supernet import Supernet

RUN_FILES = ("config.json", "configuration.json", "metrics.json", "weights.safetensors")


def load_base(model_path: str, metrics: dict, tokenizer):
    """The pristine pretrained model a run trained on (runs before causal-LM tasks are classifiers)."""
    return load_for_task(model_path, metrics.get("task_type", "classification"), metrics["num_labels"], metrics["is_regression"], tokenizer)


def load_trained(run_dir: Path):
    """(supernet with the run's trained units and head, tokenizer, model path, metrics)."""
    check_finished(run_dir, "load")
    missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished prunepeft training run (missing {', '.join(missing)}); "
                        "export a folder written by `prunepeft train` or `prunepeft run`")
    cfg = from_dict(json.loads((run_dir / "config.json").read_text()))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    units = load_configuration(run_dir / "configuration.json", allow_empty=cfg.method == "full")
    model_path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(model_path)
    model = load_base(model_path, metrics, tokenizer)
    supernet = Supernet(model, inspect_model(model, cfg.arch), cfg.units)
    supernet.train_backbone = cfg.method == "full"
    for unit in units:
        supernet.add(unit)
    try:
        tensors = load_file(str(run_dir / "weights.safetensors"))
        supernet.load_unit_state_dict(tensors)
        supernet.load_head_state_dict(tensors)
    except Exception as e:  # safetensors' own error type, or keys/shapes that do not match the configuration
        raise UserError(f"{run_dir / 'weights.safetensors'} is damaged or does not match configuration.json ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); retrain the run (prunepeft train --configuration {run_dir})") from None
    if supernet.train_backbone:  # a full fine-tune saved the whole backbone too
        supernet.load_backbone_state_dict(tensors)
    model.eval()
    return supernet, tokenizer, model_path, metrics


def export_run(run_dir: Path, fmt: str, out: Path) -> None:
    from prunepeft.export.peft_format import export_merged, export_peft, peft_coverage

    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    if (run_dir / "adalora" / "adapter_config.json").is_file():
        raise UserError(f"{run_dir} is an AdaLoRA baseline run: peft saved its adapter in {run_dir / 'adalora'} already; "
                        "load it with PeftModel.from_pretrained(base_model, that folder)")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out} exists and is not empty; choose a new folder")
    supernet, tokenizer, model_path, metrics = load_trained(run_dir)
    _, left, _ = peft_coverage(supernet)
    if supernet.train_backbone and fmt == "peft":
        raise UserError("this run is a full fine-tune: there is no adapter to export; use --format merged "
                        "(a plain Hugging Face model folder) or --format prunepeft")
    if fmt == "merged" and left:
        raise UserError(f"cannot merge {', '.join(u.name for u in left)} into the weights: only LoRA/DoRA merge; "
                        "use --format prunepeft to keep every unit")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as e:
        raise UserError(f"cannot write to {out.parent}: {e.strerror}; choose a writable --out") from None
    try:
        if fmt == "prunepeft":
            for name in RUN_FILES:
                shutil.copy2(run_dir / name, tmp / name)
        elif supernet.train_backbone:  # a full fine-tune has no units: the trained model is the merged model
            supernet.model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
        else:
            base = load_base(model_path, metrics, tokenizer)
            if fmt == "peft":
                export_peft(supernet, base, tmp)
                tokenizer.save_pretrained(str(tmp))
            else:
                export_merged(supernet, base, tmp, tokenizer)
            if left:  # reported, never silently dropped
                write_json(tmp / "units_not_in_peft.json", {"reason": "HF peft has no bottleneck-adapter type; use --format prunepeft for them",
                                                             "units": [u.to_dict() for u in left]})
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"exported {fmt} to {out}")
    if left:
        print(f"WARNING: {len(left)} units are not in the peft adapter (peft cannot express them): "
              f"{', '.join(u.name for u in left)}; listed in {out / 'units_not_in_peft.json'}")
