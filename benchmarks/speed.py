"""Training-step speed and memory of prunepeft's modules on all-MiniLM-L6-v2:

(a) one LoRA configuration (r=8 on query+value of every layer) trained by prunepeft's Supernet
    vs the same configuration built with Hugging Face peft, same model, same batches, the two
    alternated in one process: median step time ratio prunepeft/peft (target <= 1.05);
(b) the full supernet (lora-8 + adapter-32 in every layer) with the criteria's statistics
    collection on vs off (target <= 1.10);
(c) peak resident memory (ru_maxrss) of a training step of the full supernet vs peft
    LoRA-everywhere, each in a fresh subprocess (target <= 1.15).

    python benchmarks/speed.py [--steps 30] [--warmup 3] [--batch-size 32] [--max-length 64]

A step is forward, backward, (statistics), gradient clipping, AdamW step, zero_grad: what
prunepeft.train.loop.train does per batch, without accelerate's wrappers (no-ops on one CPU).
Runs on one torch thread unless --threads says otherwise.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

TARGETS = {"lora_vs_peft": 1.05, "statistics_on_vs_off": 1.10, "memory_supernet_vs_peft": 1.15}
LR = 1e-3


# ---------------------------------------------------------------- building the two sides

def load_batches(model_path: str, data_dir: Path, n: int, batch_size: int, max_length: int) -> list[dict]:
    """n batches of real SST-2 training sentences (a fixed random sample), padded per batch as prunepeft does."""
    from prunepeft.data.encode import encode_rows, make_loader
    from prunepeft.data.tasks import load_task
    from prunepeft.supernet.loading import load_tokenizer

    tokenizer = load_tokenizer(model_path)
    task = load_task("glue/sst2", str(data_dir))
    rows = random.Random(0).sample(task.train, min(len(task.train), n * batch_size))
    encoded = encode_rows(rows, tokenizer, task.text_fields, max_length, False)
    return list(make_loader(encoded, tokenizer, batch_size, shuffle=False, seed=0))


class Side:
    """A model, its optimizer and trainable parameters; `step` times one training step."""

    def __init__(self, name, model, optimizer, params, supernet=None):
        self.name, self.model, self.optimizer, self.params, self.supernet = name, model, optimizer, params, supernet
        self.times: list[float] = []
        self.model.train()

    def step(self, batch) -> float:
        import torch

        start = time.perf_counter()
        loss = self.model(**batch).loss
        loss.backward()
        if self.supernet is not None:
            self.supernet.accumulate_gradients()  # a no-op unless statistics are on, as in the product loop
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def trainable(self) -> int:
        return sum(p.numel() for p in self.params)


def prunepeft_side(name: str, model_path: str, families, statistics_on: bool = False, seed: int = 0) -> Side:
    """The way prunepeft builds and trains a configuration: Supernet + units + param_groups + AdamW."""
    import torch

    from prunepeft.space.units import Unit
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_classifier
    from prunepeft.supernet.supernet import Supernet, UnitOptions
    from prunepeft.train.loop import TrainConfig, param_groups, seed_everything

    seed_everything(seed)
    model = load_classifier(model_path, 2, False)
    supernet = Supernet(model, inspect_model(model), UnitOptions())
    for layer in range(supernet.arch.num_layers):
        for kind, size in families:
            supernet.add(Unit(layer, kind, size))
    supernet.set_trainable()
    groups = param_groups(supernet, TrainConfig(learning_rate=LR, head_learning_rate=LR))
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    if statistics_on:
        supernet.start_statistics(activation=True, gradients=True)
    return Side(name, model, optimizer, [p for g in groups for p in g["params"]], supernet)


def peft_side(name: str, model_path: str, head_from: Side | None = None, seed: int = 0) -> Side:
    """The same LoRA configuration with Hugging Face peft (optionally with the head weights of a prunepeft side)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from prunepeft.supernet.loading import load_classifier
    from prunepeft.train.loop import seed_everything

    seed_everything(seed)
    model = load_classifier(model_path, 2, False)
    if head_from is not None:
        for head in head_from.supernet.arch.head:
            model.get_submodule(head).load_state_dict(head_from.model.get_submodule(head).state_dict())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, target_modules=["query", "value"], task_type="SEQ_CLS"))
    params = [p for p in model.parameters() if p.requires_grad]
    return Side(name, model, torch.optim.AdamW(params, lr=LR, weight_decay=0.0), params)


def initial_difference(a: Side, b: Side, batch) -> float:
    """Max |logit difference| of the two untrained sides in eval mode (0 up to float error: same function)."""
    import torch

    a.model.eval(), b.model.eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        diff = (a.model(**inputs).logits - b.model(**inputs).logits).abs().max().item()
    a.model.train(), b.model.train()
    return diff


def alternate(a: Side, b: Side, batches, warmup: int, steps: int) -> None:
    """Step a and b on the same batch, swapping who goes first each time; warm-up steps are not kept."""
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        for side in ((a, b) if i % 2 == 0 else (b, a)):
            t = side.step(batch)
            if i >= warmup:
                side.times.append(t)


def timing(side: Side) -> dict:
    t = sorted(side.times)
    q = statistics.quantiles(t, n=4) if len(t) >= 2 else [t[0]] * 3
    return {"median_s": statistics.median(t), "mean_s": statistics.fmean(t), "q1_s": q[0], "q3_s": q[2],
            "min_s": t[0], "max_s": t[-1], "steps": len(t), "trainable_params": side.trainable()}


def compare(a: Side, b: Side, target: float) -> dict:
    ta, tb = timing(a), timing(b)
    ratio = ta["median_s"] / tb["median_s"]
    return {a.name: ta, b.name: tb, "ratio": ratio, "target": target, "verdict": common.passfail(ratio, target)}


# ---------------------------------------------------------------- memory, one subprocess per configuration

def memory_child(kind: str, model_path: str, data_dir: Path, batch_size: int, max_length: int, steps: int) -> dict:
    batches = load_batches(model_path, data_dir, steps, batch_size, max_length)
    if kind == "peft-lora":
        side = peft_side(kind, model_path)
    elif kind == "supernet":  # statistics on, as in a search round with the hybrid criteria
        side = prunepeft_side(kind, model_path, [("lora", 8), ("adapter", 32)], statistics_on=True)
    elif kind == "loaded":  # model and batches in memory, no training: the common floor
        from prunepeft.supernet.loading import load_classifier

        load_classifier(model_path, 2, False)
        side = None
    else:
        raise ValueError(kind)
    # Loading (safetensors, tokenizer, the data set) peaks above any training step; Linux lets a
    # process reset its peak RSS (VmHWM) so that the peak of the training steps alone is measured.
    reset = _reset_peak_rss()
    start_kb = _status_kb("VmRSS")
    for i in range(steps if side else 0):
        side.step(batches[i % len(batches)])
    return {"kind": kind, "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "steps": steps if side else 0,
            "peak_reset": reset, "rss_before_steps_kb": start_kb, "peak_during_steps_kb": _status_kb("VmHWM")}


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_memory(args, model_path: str, data_dir: Path) -> dict:
    results = {}
    for kind in ("loaded", "peft-lora", "supernet"):
        cmd = [sys.executable, __file__, "--memory-child", kind, "--model", model_path, "--data-dir", str(data_dir),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--memory-steps", str(args.memory_steps)] + (["--threads", str(args.threads)] if args.threads else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    key = "peak_during_steps_kb" if all(r["peak_reset"] for r in results.values()) else "ru_maxrss_kb"
    floor = results["loaded"][key]
    ratio = results["supernet"][key] / results["peft-lora"][key]
    extra = [results[k][key] - floor for k in ("supernet", "peft-lora")]
    return {"children": results, "ratio": ratio, "measure": key, "target": TARGETS["memory_supernet_vs_peft"],
            "verdict": common.passfail(ratio, TARGETS["memory_supernet_vs_peft"]),
            "ratio_above_loaded_model": extra[0] / extra[1] if extra[1] > 0 else None}


# ---------------------------------------------------------------- report

def markdown(payload: dict) -> str:
    s, r = payload["settings"], payload["results"]
    ms = lambda x: f"{x * 1000:.1f}"
    md = [common.header("Speed and memory of a training step", payload)]
    md.append(f"Model `{s['model']}`, batches of {s['batch_size']} real SST-2 training sentences (max_length "
              f"{s['max_length']}, padded per batch; mean padded length {s['mean_padded_length']:.1f}), "
              f"{s['warmup']} warm-up + {s['steps']} timed steps per side, the two sides alternated on the same batches. "
              "Step = forward, backward, clip, AdamW, zero_grad. Times in ms.\n\n")
    rows = []
    for key, title in (("lora_vs_peft", "(a) LoRA r=8 on q,v everywhere: A = prunepeft, B = HF peft"),
                       ("statistics_on_vs_off", "(b) supernet lora-8 + adapter-32: A = statistics on, B = off")):
        c = r[key]
        a, b = [k for k in c if isinstance(c[k], dict)]
        rows.append([title, f"{ms(c[a]['median_s'])} [{ms(c[a]['q1_s'])}–{ms(c[a]['q3_s'])}]",
                     f"{ms(c[b]['median_s'])} [{ms(c[b]['q1_s'])}–{ms(c[b]['q3_s'])}]",
                     f"**{c['ratio']:.3f}**", f"<= {c['target']:.2f}", c["verdict"]])
    md.append(common.table(["comparison", "A: median [IQR] ms", "B: median [IQR] ms", "ratio A/B (medians)", "target", "verdict"], rows))
    a = r["lora_vs_peft"]
    md.append(f"\nTrainable parameters (units + head): prunepeft {a['prunepeft-lora']['trainable_params']:,}, "
              f"peft {a['peft-lora']['trainable_params']:,}; max |logit difference| of the untrained pair "
              f"{a['initial_max_abs_logit_diff']:.2e} (same function).\n")
    m = r.get("memory")
    if m:
        c = m["children"]
        mb = lambda kb: f"{kb / 1024:.0f}"
        k = m.get("measure", "ru_maxrss_kb")
        what = ("peak RSS during the training steps (VmHWM reset after loading)" if k == "peak_during_steps_kb"
                else "peak RSS of the whole process (ru_maxrss)")
        md.append(f"\n(c) Memory, MiB: {what}, fresh process per row, {c['supernet']['steps']} "
                  "training steps (supernet with statistics on):\n\n")
        md.append(common.table(["process", "peak MiB", "above model-loaded floor, MiB"], [
            ["model + batches loaded, no training", mb(c["loaded"][k]), "0"],
            ["HF peft LoRA r=8 everywhere", mb(c["peft-lora"][k]), mb(c["peft-lora"][k] - c["loaded"][k])],
            ["prunepeft supernet lora-8 + adapter-32", mb(c["supernet"][k]), mb(c["supernet"][k] - c["loaded"][k])],
        ]))
        extra = m["ratio_above_loaded_model"]
        md.append(f"\nRatio supernet / peft: **{m['ratio']:.3f}** (target <= {m['target']:.2f}) {m['verdict']}. "
                  "It includes the interpreter, libraries, data and frozen model, which both share; ")
        md.append(f"the ratio of the memory above the loaded-model floor is {extra:.2f}.\n" if extra is not None
                  else "the floor is not below the peft process, so no ratio above it.\n")
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0], default_seeds=(0,))
    p.add_argument("--steps", type=int, default=30, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--memory-steps", type=int, default=3, help="training steps in each memory subprocess")
    p.add_argument("--no-memory", action="store_true", help="skip (c)")
    p.set_defaults(threads=None)  # resolved to 1 below
    p.add_argument("--model", default=None, help=argparse_hidden())
    p.add_argument("--memory-child", default=None, help=argparse_hidden())
    args = p.parse_args(argv)
    # One thread unless told otherwise: with two cores and other jobs running, a second thread mostly
    # waits for a busy core, which makes step times noisy; the ratios are what matter here.
    args.threads = args.threads or 1
    common.set_threads(args.threads)
    if args.memory_child:  # internal: one memory measurement, printed as JSON
        print(json.dumps(memory_child(args.memory_child, args.model, args.data_dir, args.batch_size, args.max_length,
                                      args.memory_steps)))
        return 0
    if args.smoke:
        args.steps, args.warmup, args.batch_size, args.memory_steps = min(args.steps, 4), 1, 8, 2
    started = time.perf_counter()
    with common.workspace(args, ("sst2",)) as (model, data_dir, _):
        from prunepeft.supernet.loading import resolve_model_path

        model_path = resolve_model_path(model)
        batches = load_batches(model_path, data_dir, args.warmup + args.steps, args.batch_size, args.max_length)
        seed = args.seeds[0]  # initialisation of units and heads; the batches are a fixed sample
        lora = prunepeft_side("prunepeft-lora", model_path, [("lora", 8)], seed=seed)
        peft = peft_side("peft-lora", model_path, head_from=lora, seed=seed)
        diff = initial_difference(lora, peft, batches[0])
        alternate(lora, peft, batches, args.warmup, args.steps)
        results = {"lora_vs_peft": {**compare(lora, peft, TARGETS["lora_vs_peft"]), "initial_max_abs_logit_diff": diff}}
        del lora, peft
        families = [("lora", 8), ("adapter", 32)]
        on = prunepeft_side("statistics-on", model_path, families, statistics_on=True, seed=seed)
        off = prunepeft_side("statistics-off", model_path, families, seed=seed)
        alternate(on, off, batches, args.warmup, args.steps)
        results["statistics_on_vs_off"] = compare(on, off, TARGETS["statistics_on_vs_off"])
        del on, off
        if not args.no_memory:
            results["memory"] = measure_memory(args, model_path, data_dir)
    payload = common.base_payload("speed", args, started)
    payload.update({"settings": {"model": model, "steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size,
                                 "max_length": args.max_length, "memory_steps": args.memory_steps,
                                 "mean_padded_length": statistics.fmean(b["input_ids"].shape[1] for b in batches)},
                    "targets": TARGETS, "results": results})
    common.write_results(args.out, "speed", payload, markdown(payload))
    return 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
