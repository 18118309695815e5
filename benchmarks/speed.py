"""Training-step speed and memory of prunepeft's modules, on all-MiniLM-L6-v2 or (--model smollm2) the
decoder SmolLM2-135M-Instruct (30 Llama layers, sequence classification head):

(a) one LoRA configuration (r=8 on query+value of every layer) trained by prunepeft's Supernet
    vs the same configuration built with Hugging Face peft, same model, same batches, the two
    alternated in one process: median step time ratio prunepeft/peft (target <= 1.05);
(b) the full supernet (lora-8 + adapter-32 in every layer) with the criteria's statistics
    collection on vs off (target <= 1.10);
(c) peak resident memory of a training step of the full supernet vs peft LoRA-everywhere, each in
    a fresh subprocess (target <= 1.15);
(d) train.gradient_checkpointing: the full supernet (statistics on) with vs without, step time
    (alternated) and peak memory (fresh subprocesses);
(e) no backward below the lowest unit: LoRA r=8 on q,v of the top quarter of the layers vs of all
    layers, and the top quarter again with the input embeddings requiring grad (what transformers'
    `enable_input_require_grads` does), which pulls backward down to the embeddings: step time and
    peak memory.

    python benchmarks/speed.py [--model smollm2] [--steps 30] [--warmup 3] [--batch-size 32] [--max-length 64]

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
        import torch

        self.name, self.model, self.optimizer, self.params, self.supernet = name, model, optimizer, params, supernet
        # wall-clock and CPU seconds of the kept steps: on a shared machine a process also waits for a
        # core, which wall time counts and CPU time (one thread) does not
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self.keep = False  # off during warm-up
        self.losses: list[float] = []
        # Each side draws its dropout masks from its own random stream, the same for every side: sides
        # that should train identically do so, however they are interleaved.
        self.rng = torch.Generator().manual_seed(0).get_state()
        self.model.train()

    def step(self, batch) -> float:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = self.model(**batch).loss
            loss.backward()
            if self.supernet is not None:
                self.supernet.accumulate_gradients()  # a no-op unless statistics are on, as in the product loop
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            self.rng = torch.get_rng_state()
        self.losses.append(loss.item())
        if self.keep:
            self.times.append(elapsed)
            self.cpu_times.append(cpu)
        return elapsed

    def trainable(self) -> int:
        return sum(p.numel() for p in self.params)


def prunepeft_side(name: str, model_path: str, families, statistics_on: bool = False, seed: int = 0, layers=None,
                   checkpointing: bool = False, input_grads: bool = False) -> Side:
    """The way prunepeft builds and trains a configuration: Supernet + units + param_groups + AdamW.
    `layers`: the layers that get units (default all); `checkpointing`: train.gradient_checkpointing;
    `input_grads`: the embeddings' output requires grad (transformers' enable_input_require_grads)."""
    import torch

    from prunepeft.space.units import Unit
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.checkpointing import enable_gradient_checkpointing
    from prunepeft.supernet.loading import load_classifier, load_tokenizer
    from prunepeft.supernet.supernet import Supernet, UnitOptions
    from prunepeft.train.loop import TrainConfig, param_groups, seed_everything

    seed_everything(seed)
    model = load_classifier(model_path, 2, False, load_tokenizer(model_path))
    supernet = Supernet(model, inspect_model(model), UnitOptions())
    for layer in range(supernet.arch.num_layers) if layers is None else layers:
        for kind, size in families:
            supernet.add(Unit(layer, kind, size))
    supernet.set_trainable()
    if checkpointing:
        enable_gradient_checkpointing(model)
    if input_grads:
        model.enable_input_require_grads()
    groups = param_groups(supernet, TrainConfig(learning_rate=LR, head_learning_rate=LR))
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    if statistics_on:
        supernet.start_statistics(activation=True, gradients=True)
    return Side(name, model, optimizer, [p for g in groups for p in g["params"]], supernet)


def top_layers(model_path: str) -> list[int]:
    """The top quarter of the layers (at least one): where (e) puts its units."""
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import classifier_skeleton

    n = inspect_model(classifier_skeleton(model_path, 2, False)).num_layers
    return list(range(n - max(1, n // 4), n))


def peft_side(name: str, model_path: str, head_from: Side | None = None, seed: int = 0) -> Side:
    """The same LoRA configuration with Hugging Face peft (optionally with the head weights of a prunepeft side)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_classifier, load_tokenizer
    from prunepeft.train.loop import seed_everything

    seed_everything(seed)
    model = load_classifier(model_path, 2, False, load_tokenizer(model_path))
    if head_from is not None:
        for head in head_from.supernet.arch.head:
            model.get_submodule(head).load_state_dict(head_from.model.get_submodule(head).state_dict())
    sites = inspect_model(model).sites[0]  # peft matches the last name part: query/value (BERT), q_proj/v_proj (Llama)
    targets = [name.rpartition(".")[2] for name in (sites.query, sites.value)]
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, target_modules=targets, task_type="SEQ_CLS"))
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


def alternate(*sides: Side, batches, warmup: int, steps: int) -> None:
    """Step every side on the same batch, rotating who goes first each time; warm-up steps are not kept."""
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        k = i % len(sides)
        for side in sides[k:] + sides[:k]:
            side.keep = i >= warmup
            side.step(batch)


def timing(side: Side) -> dict:
    t = sorted(side.times)
    q = statistics.quantiles(t, n=4) if len(t) >= 2 else [t[0]] * 3
    return {"median_s": statistics.median(t), "mean_s": statistics.fmean(t), "q1_s": q[0], "q3_s": q[2],
            "min_s": t[0], "max_s": t[-1], "steps": len(t), "trainable_params": side.trainable(),
            "cpu_median_s": statistics.median(side.cpu_times) if side.cpu_times else None}


def compare(a: Side, b: Side, target: float | None = None) -> dict:
    ta, tb = timing(a), timing(b)
    ratio = ta["median_s"] / tb["median_s"]
    out = {a.name: ta, b.name: tb, "ratio": ratio, "cpu_ratio": ta["cpu_median_s"] / tb["cpu_median_s"]}
    return {**out, "target": target, "verdict": common.passfail(ratio, target)} if target is not None else out


def same_training(a: Side, b: Side) -> dict:
    """How far two sides that should train identically drift apart: max |loss difference| over all
    steps, and the max relative difference of their units' mean |activation| statistics."""
    loss = max(abs(x - y) for x, y in zip(a.losses, b.losses))
    sa, sb = a.supernet.unit_stats(), b.supernet.unit_stats()
    acts = [(sa[u].mean_abs_activation, sb[u].mean_abs_activation) for u in sa if sa[u].mean_abs_activation]
    rel = max((abs(x - y) / abs(x) for x, y in acts), default=None)
    return {"max_abs_loss_diff": loss, "max_rel_activation_stat_diff": rel, "units_with_activation_stats": len(acts),
            "activation_counts_equal": dict(a.supernet._act_count) == dict(b.supernet._act_count)}


# ---------------------------------------------------------------- memory, one subprocess per configuration

FAMILIES = [("lora", 8), ("adapter", 32)]  # the full supernet of (b), (c), (d)


def memory_child(kind: str, model_path: str, data_dir: Path, batch_size: int, max_length: int, steps: int) -> dict:
    batches = load_batches(model_path, data_dir, steps, batch_size, max_length)
    side = None
    if kind == "peft-lora":
        side = peft_side(kind, model_path)
    elif kind in ("supernet", "supernet-checkpointing"):  # statistics on, as in a search round with the hybrid criteria
        side = prunepeft_side(kind, model_path, FAMILIES, statistics_on=True, checkpointing=kind.endswith("checkpointing"))
    elif kind in ("lora-top", "lora-top-input-grads", "lora-all"):
        layers = None if kind == "lora-all" else top_layers(model_path)
        side = prunepeft_side(kind, model_path, [("lora", 8)], layers=layers, input_grads=kind.endswith("input-grads"))
    elif kind == "loaded":  # model and batches in memory, no training: the common floor
        from prunepeft.supernet.loading import load_classifier

        model = load_classifier(model_path, 2, False)
    else:
        raise ValueError(kind)
    _page_in(side.model if side else model)
    # Loading (safetensors, tokenizer, the data set) peaks above any training step; Linux lets a
    # process reset its peak RSS (VmHWM) so that the peak of the training steps alone is measured.
    reset = _reset_peak_rss()
    start_kb = _status_kb("VmRSS")
    for i in range(steps if side else 0):
        side.step(batches[i % len(batches)])
    return {"kind": kind, "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "steps": steps if side else 0,
            "peak_reset": reset, "rss_before_steps_kb": start_kb, "peak_during_steps_kb": _status_kb("VmHWM")}


def _page_in(model) -> None:
    """Read every weight once. safetensors weights are memory-mapped and count in RSS only once read:
    without this, the loaded-model floor would lack the weights and every training process would
    seem to use them on top of it (and only the embedding rows a batch looks up would count)."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.sum()


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


def memory_children(args, model_path: str, data_dir: Path, kinds) -> dict:
    """One fresh subprocess per kind; its memory_child record."""
    results = {}
    for kind in kinds:
        cmd = [sys.executable, __file__, "--memory-child", kind, "--model", model_path, "--data-dir", str(data_dir),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--memory-steps", str(args.memory_steps)] + (["--threads", str(args.threads)] if args.threads else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def memory_measure(children: dict) -> str:
    return "peak_during_steps_kb" if all(r["peak_reset"] for r in children.values()) else "ru_maxrss_kb"


def memory_ratio(children: dict, a: str, b: str, floor: dict) -> dict:
    """Peak of a / peak of b, and the same for the memory above the loaded-model floor."""
    key = memory_measure({**children, "loaded": floor})
    extra = [children[k][key] - floor[key] for k in (a, b)]
    return {"ratio": children[a][key] / children[b][key], "ratio_above_loaded_model": extra[0] / extra[1] if extra[1] > 0 else None,
            "saved_mib": (children[b][key] - children[a][key]) / 1024}


def measure_memory(args, model_path: str, data_dir: Path) -> dict:
    results = memory_children(args, model_path, data_dir, ("loaded", "peft-lora", "supernet"))
    r = memory_ratio(results, "supernet", "peft-lora", results["loaded"])
    return {"children": results, "ratio": r["ratio"], "measure": memory_measure(results), "target": TARGETS["memory_supernet_vs_peft"],
            "verdict": common.passfail(r["ratio"], TARGETS["memory_supernet_vs_peft"]),
            "ratio_above_loaded_model": r["ratio_above_loaded_model"]}


# ---------------------------------------------------------------- report

def markdown(payload: dict) -> str:
    s, r = payload["settings"], payload["results"]
    ms = lambda x: f"{x * 1000:.1f}"
    md = [common.header("Speed and memory of a training step", payload)]
    md.append(f"Model `{s['model']}`, batches of {s['batch_size']} real SST-2 training sentences (max_length "
              f"{s['max_length']}, padded per batch; mean padded length {s['mean_padded_length']:.1f}), "
              f"{s['warmup']} warm-up + {s['steps']} timed steps per side, the two sides alternated on the same batches. "
              "Step = forward, backward, clip, AdamW, zero_grad. Times in ms. The machine was shared with other "
              "jobs (load average in the header), so absolute times are noisy; the ratios compare sides stepped in "
              "turn in one process.\n\n")
    rows = []
    for key, title in (("lora_vs_peft", "(a) LoRA r=8 on q,v everywhere: A = prunepeft, B = HF peft"),
                       ("statistics_on_vs_off", "(b) supernet lora-8 + adapter-32: A = statistics on, B = off")):
        c = r[key]
        a, b = [k for k in c if isinstance(c[k], dict)]
        rows.append([title, f"{ms(c[a]['median_s'])} [{ms(c[a]['q1_s'])}–{ms(c[a]['q3_s'])}]",
                     f"{ms(c[b]['median_s'])} [{ms(c[b]['q1_s'])}–{ms(c[b]['q3_s'])}]",
                     f"**{c['ratio']:.3f}**", f"<= {c['target']:.2f}", c["verdict"], f"{c['cpu_ratio']:.3f}"])
    md.append(common.table(["comparison", "A: median [IQR] ms", "B: median [IQR] ms", "ratio A/B (medians)", "target", "verdict",
                            "CPU-time ratio A/B (medians)"], rows))
    md.append("\nThe verdict reads wall-clock time; the CPU-time ratio (seconds this process ran, one thread) leaves out "
              "the time it waited for a core while other jobs ran, so it is the steadier of the two here.\n")
    a = r["lora_vs_peft"]
    md.append(f"\nTrainable parameters (units + head): prunepeft {a['prunepeft-lora']['trainable_params']:,}, "
              f"peft {a['peft-lora']['trainable_params']:,}; max |logit difference| of the untrained pair "
              f"{a['initial_max_abs_logit_diff']:.2e} (same function).\n")
    m = r.get("memory")
    if m:
        c = m["children"]
        mb = lambda kb: f"{kb / 1024:.0f}"
        k = m.get("measure", "ru_maxrss_kb")
        what = ("peak RSS during the training steps (VmHWM reset after loading and reading every weight once)" if k == "peak_during_steps_kb"
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
        same = m.get("same_configuration")
        if same:
            above = same["ratio_above_loaded_model"]
            md.append(f"\nLike for like, prunepeft's LoRA r=8 on q,v everywhere (a's configuration; process `lora-all` of (e)) "
                      f"peaks at {mb(same['children']['lora-all'][k])} MiB against peft's {mb(same['children']['peft-lora'][k])}: "
                      f"ratio **{same['ratio']:.3f}**" + (f", above the floor {above:.2f}.\n" if above is not None else ".\n"))
    md += checkpointing_markdown(r["checkpointing"], ms) + lowest_unit_markdown(r["lowest_unit"], ms)
    return "".join(md)


def _timing_row(title: str, c: dict, a: str, b: str, ms) -> list:
    iqr = lambda t: f"{ms(t['median_s'])} [{ms(t['q1_s'])}–{ms(t['q3_s'])}]"
    return [title, iqr(c[a]), iqr(c[b]), f"**{c['ratio']:.3f}**", f"{c['cpu_ratio']:.3f}"]


def _memory_cells(m: dict | None, a: str, b: str, key: str | None = None) -> list:
    """Peak MiB of a and b, their ratio, the ratio above the loaded-model floor and the MiB saved."""
    if not m:
        return ["—"] * 5
    r = m[key] if key else m
    k = memory_measure(m["children"])
    above = r["ratio_above_loaded_model"]
    return [f"{m['children'][a][k] / 1024:.0f}", f"{m['children'][b][k] / 1024:.0f}", f"{r['ratio']:.3f}",
            f"{above:.2f}" if above is not None else "—", f"{r['saved_mib']:.0f}"]


def checkpointing_markdown(c: dict, ms) -> list[str]:
    same = c["same_training"]
    return ["\n(d) train.gradient_checkpointing on the full supernet (lora-8 + adapter-32 everywhere, statistics on); "
            "A = checkpointing, B = none. Memory: peak RSS of the training steps in fresh processes.\n\n",
            common.table(["", "A: median [IQR] ms", "B: median [IQR] ms", "time ratio A/B", "CPU-time ratio", "A peak MiB", "B peak MiB",
                          "memory ratio A/B", "above floor A/B", "MiB saved"],
                         [_timing_row("checkpointing vs none", c, "checkpointing", "no-checkpointing", ms)
                          + _memory_cells(c.get("memory"), "supernet-checkpointing", "supernet")]),
            f"\nThe two trained the same: max |loss difference| over all steps {same['max_abs_loss_diff']:.1e}, activation "
            f"statistics of {same['units_with_activation_stats']} units within {same['max_rel_activation_stat_diff'] or 0:.1e} "
            f"(relative), activation counts {'equal' if same['activation_counts_equal'] else 'DIFFERENT'} "
            "(the recomputed forward is not counted twice).\n"]


def lowest_unit_markdown(e: dict, ms) -> list[str]:
    layers = e["top_layers"]
    m = e.get("memory")
    return [f"\n(e) No backward below the lowest unit: LoRA r=8 on q,v of layers {layers[0]}–{layers[-1]} (top "
            f"{len(layers)} of {e['num_layers']}) = A, vs B = the same in every layer, and vs B = the same top layers "
            "with the input embeddings requiring grad (transformers' `enable_input_require_grads`: backward runs "
            "down to the embeddings).\n\n",
            common.table(["A vs B", "A: median [IQR] ms", "B: median [IQR] ms", "time ratio A/B", "CPU-time ratio", "A peak MiB", "B peak MiB",
                          "memory ratio A/B", "above floor A/B", "MiB saved"],
                         [_timing_row("top layers vs all layers", e["top_vs_all"], "lora-top", "lora-all", ms)
                          + _memory_cells(m, "lora-top", "lora-all", "top_vs_all"),
                          _timing_row("top layers vs top layers + input grads", e["top_vs_top_input_grads"], "lora-top",
                                      "lora-top-input-grads", ms)
                          + _memory_cells(m, "lora-top", "lora-top-input-grads", "top_vs_top_input_grads")]),
            f"\nThe top-layer pair trained the same (max |loss difference| {e['max_abs_loss_diff_top_vs_top_input_grads']:.1e}); "
            "only where backward stops differs.\n"]


# ---------------------------------------------------------------- the comparisons

def lora_vs_peft(model_path: str, batches, args, seed: int) -> dict:
    lora = prunepeft_side("prunepeft-lora", model_path, [("lora", 8)], seed=seed)
    peft = peft_side("peft-lora", model_path, head_from=lora, seed=seed)
    diff = initial_difference(lora, peft, batches[0])
    alternate(lora, peft, batches=batches, warmup=args.warmup, steps=args.steps)
    return {**compare(lora, peft, TARGETS["lora_vs_peft"]), "initial_max_abs_logit_diff": diff}


def statistics_on_vs_off(model_path: str, batches, args, seed: int) -> dict:
    on = prunepeft_side("statistics-on", model_path, FAMILIES, statistics_on=True, seed=seed)
    off = prunepeft_side("statistics-off", model_path, FAMILIES, seed=seed)
    alternate(on, off, batches=batches, warmup=args.warmup, steps=args.steps)
    return compare(on, off, TARGETS["statistics_on_vs_off"])


def checkpointing_on_vs_off(model_path: str, batches, args, seed: int) -> dict:
    """(d): the full supernet with statistics on, as a search round runs it, with and without checkpointing."""
    on = prunepeft_side("checkpointing", model_path, FAMILIES, statistics_on=True, seed=seed, checkpointing=True)
    off = prunepeft_side("no-checkpointing", model_path, FAMILIES, statistics_on=True, seed=seed)
    alternate(on, off, batches=batches, warmup=args.warmup, steps=args.steps)
    return {**compare(on, off), "same_training": same_training(on, off)}


def lowest_unit(model_path: str, batches, args, seed: int) -> dict:
    """(e): units in the top layers only vs in all layers, and vs the top layers with backward forced down to the embeddings."""
    layers = top_layers(model_path)
    top = prunepeft_side("lora-top", model_path, [("lora", 8)], seed=seed, layers=layers)
    grads = prunepeft_side("lora-top-input-grads", model_path, [("lora", 8)], seed=seed, layers=layers, input_grads=True)
    every = prunepeft_side("lora-all", model_path, [("lora", 8)], seed=seed)
    alternate(top, grads, every, batches=batches, warmup=args.warmup, steps=args.steps)
    return {"top_layers": layers, "num_layers": every.supernet.arch.num_layers, "top_vs_all": compare(top, every),
            "top_vs_top_input_grads": compare(top, grads), "max_abs_loss_diff_top_vs_top_input_grads": same_training(top, grads)["max_abs_loss_diff"]}


def with_memory(args, model_path: str, data_dir: Path, results: dict) -> None:
    """(c), and the memory halves of (d) and (e), each configuration in a fresh subprocess."""
    results["memory"] = measure_memory(args, model_path, data_dir)
    floor, supernet = results["memory"]["children"]["loaded"], results["memory"]["children"]["supernet"]
    children = memory_children(args, model_path, data_dir, ("supernet-checkpointing",))
    results["checkpointing"]["memory"] = {"children": {**children, "supernet": supernet},
                                          **memory_ratio({**children, "supernet": supernet}, "supernet-checkpointing", "supernet", floor)}
    children = memory_children(args, model_path, data_dir, ("lora-top", "lora-top-input-grads", "lora-all"))
    results["lowest_unit"]["memory"] = {"children": children, "top_vs_all": memory_ratio(children, "lora-top", "lora-all", floor),
                                        "top_vs_top_input_grads": memory_ratio(children, "lora-top", "lora-top-input-grads", floor)}
    # prunepeft's LoRA everywhere is (a)'s configuration: its memory against peft's, like for like
    same = {"lora-all": children["lora-all"], "peft-lora": results["memory"]["children"]["peft-lora"]}
    results["memory"]["same_configuration"] = {"children": same, **memory_ratio(same, "lora-all", "peft-lora", floor)}


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0], default_seeds=(0,))
    p.add_argument("--model", default=None, help="packaged:all-MiniLM-L6-v2 (default), smollm2, or a model folder (ignored with --smoke)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--memory-steps", type=int, default=3, help="training steps in each memory subprocess")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses of (c), (d), (e)")
    p.set_defaults(threads=None)  # resolved to 1 below
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

        model = model if args.smoke or not args.model else args.model
        model_path = resolve_model_path(model)
        batches = load_batches(model_path, data_dir, args.warmup + args.steps, args.batch_size, args.max_length)
        seed = args.seeds[0]  # initialisation of units and heads; the batches are a fixed sample
        results = {}
        for key, run in (("lora_vs_peft", lora_vs_peft), ("statistics_on_vs_off", statistics_on_vs_off),
                         ("checkpointing", checkpointing_on_vs_off), ("lowest_unit", lowest_unit)):
            print(f"{key} ...", flush=True)
            results[key] = run(model_path, batches, args, seed)
        if not args.no_memory:
            print("memory ...", flush=True)
            with_memory(args, model_path, data_dir, results)
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
