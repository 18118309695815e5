"""`prunepeft export RUN_DIR --format peft|merged|prunepeft --out DIR`: rebuild the trained model
of a run folder and write it in a format the ecosystem loads. The output folder appears whole
or not at all (written under a temporary name, then renamed)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prunepeft.errors import UserError
from prunepeft.io import write_json
from prunepeft.logs import get_logger
from prunepeft.run_folder import RUN_FILES, load_base, load_trained

__all__ = ["RUN_FILES", "export_run", "load_trained"]  # load_trained lives in run_folder; kept importable here


def export_run(run_dir: Path, fmt: str, out: Path) -> None:
    from prunepeft.export.peft_format import export_merged, export_peft, foldable, peft_coverage

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
    folded = foldable(supernet, left)
    unmergeable = [u for u in left if u not in folded]
    if fmt == "merged" and unmergeable:
        raise UserError(f"cannot merge {', '.join(u.name for u in unmergeable)} into the weights: only LoRA/DoRA, and biases "
                        "on Linears that have one, merge; use --format prunepeft to keep every unit")
    if fmt == "merged":
        left = []
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
                write_json(tmp / "units_not_in_peft.json", {"reason": "HF peft has no type for bottleneck adapters or per-projection biases; use --format prunepeft for them",
                                                             "units": [u.to_dict() for u in left]})
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log = get_logger(__name__)
    log.info(f"exported {fmt} to {out}")
    if left:
        log.warning(f"WARNING: {len(left)} units are not in the peft adapter (peft cannot express them): "
              f"{', '.join(u.name for u in left)}; listed in {out / 'units_not_in_peft.json'}")
