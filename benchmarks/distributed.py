"""Wall time of the search's warm-up (and of the whole search) on several processes against one,
on the packaged all-MiniLM-L6-v2 and real SST-2 sentences, at the same GLOBAL batch:

    1 process,  1 thread,  batch 32          (the reference)
    1 process,  N threads, batch 32          (the same cores used by threads instead)
    N processes, 1 thread each, batch 32/N   (torchrun --standalone --nproc_per_node N)

With N processes the warm-up's six independent criterion runs are shared out among them (each
runs its criteria alone at the global batch) and the rest of the search is data parallel. The
times are prunepeft's own (`search.json`: warmup_seconds, search_seconds) plus the wall time of
the command. Whether each run chose the same configuration and strategy as the reference is
recorded: with MiniLM's dropout the processes draw other masks than one process does, so the
search follows another random path and may choose another configuration (without dropout it
chooses the same: tests/test_distributed.py).

    python benchmarks/distributed.py [--processes 2] [--train-samples 1000] [--out benchmarks/results/distributed]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

NAME = "distributed"
NOTE = ("The warm-up's criteria go round-robin to the processes (process p runs criteria p, p+N, ...). A criterion that cannot "
        "tell the units apart at the shared turn trains nothing (here `zeros`, which pruned nothing), so with 2 processes 3 criteria "
        "train on one and 2 on the other: 5/3 = 1.67x is the bound for the warm-up on two idle cores. The 2-process search chose "
        "another configuration than the 1-process one because MiniLM has dropout (each process draws its own masks); without "
        "dropout it chooses the same (tests/test_distributed.py).\n\n")


def run(label: str, launcher: list[str], args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(common.REPO / "src"), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", *launcher, "prunepeft", *args]
    print(f"{label}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
    out = Path(args[args.index("--output-dir") + 1])
    search = json.loads((out / "search.json").read_text())
    strategy = json.loads((out / "strategy.json").read_text())
    return {"label": label, "command": " ".join(["python", "-m", *launcher, "prunepeft", *args]), "threads_per_process": threads,
            "wall_seconds": wall, "warmup_seconds": search["warmup_seconds"], "search_seconds": search["search_seconds"],
            "units": search["units"], "strategy": strategy["strategy"], "warmup_pruned": strategy["warmup_pruned"]}


def main() -> None:
    p = common.parser(__doc__.splitlines()[0], default_seeds=(1,))
    p.add_argument("--processes", type=int, default=2, help="processes of the parallel run (and threads of the threaded one)")
    p.add_argument("--train-samples", type=int, default=1000, help="SST-2 training sentences (a stratified subset)")
    p.add_argument("--batch-size", type=int, default=32, help="GLOBAL training batch of every run")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats of every setup (medians reported)")
    p.set_defaults(out=common.DEFAULT_OUT / NAME)
    args = p.parse_args()
    started = time.perf_counter()
    n, seed = args.processes, args.seeds[0]
    if args.batch_size % n:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of --processes {n}")
    with common.workspace(args, tasks=("sst2",)) as (model, data_dir, _), tempfile.TemporaryDirectory(prefix="pp-dist-") as work:
        train_samples = 64 if args.smoke else args.train_samples
        base = ["search", "--model", str(model), "--task", "glue/sst2", "--data-dir", str(data_dir), "--max-train-samples", str(train_samples),
                "--max-eval-samples", "32", "--max-length", str(args.max_length), "--seed", str(seed)]
        if args.smoke:
            base += ["--space", "lora-4", "adapter-8", "--budget", "1000", "--warmup-samples", "32", "--set", "search.learned_ratio=1.0"]

        def args_for(tag: str, batch: int) -> list[str]:
            return [*base, "--per-device-train-batch-size", str(batch), "--output-dir", str(Path(work) / tag)]

        torchrun = ["torch.distributed.run", "--standalone", "--nproc_per_node", str(n), "-m"]
        setups = [("1 process, 1 thread", [], args.batch_size, 1), (f"1 process, {n} threads", [], args.batch_size, n),
                  (f"{n} processes, 1 thread each", torchrun, args.batch_size // n, 1)]
        runs = []
        for repeat in range(1 if args.smoke else args.repeats):  # interleaved: a change of the machine's load hits every setup
            for i, (label, launcher, batch, threads) in enumerate(setups):
                runs.append({**run(label, launcher, args_for(f"{i}-{repeat}", batch), threads), "repeat": repeat})
    reference = runs[0]
    for r in runs:
        r["same_units_as_reference"] = r["units"] == reference["units"]
        r["same_strategy_as_reference"] = r["strategy"] == reference["strategy"]
    summary = {}
    for label, *_ in setups:
        mine = [r for r in runs if r["label"] == label]
        summary[label] = {key: statistics.median(r[key] for r in mine) for key in ("warmup_seconds", "search_seconds", "wall_seconds")}
    base = summary[setups[0][0]]
    for row in summary.values():
        row["warmup_speedup"] = base["warmup_seconds"] / row["warmup_seconds"]
        row["search_speedup"] = base["search_seconds"] / row["search_seconds"]
    payload = {**common.base_payload(NAME, args, started), "processes": n, "train_samples": train_samples,
               "global_batch": args.batch_size, "max_length": args.max_length, "summary": summary, "runs": runs}
    payload["wall_seconds"] = time.perf_counter() - started
    rows = [[label, common.secs(s["warmup_seconds"]), f"{s['warmup_speedup']:.2f}x", common.secs(s["search_seconds"]),
             f"{s['search_speedup']:.2f}x", common.secs(s["wall_seconds"]),
             ", ".join(common.secs(r["warmup_seconds"]) for r in runs if r["label"] == label),
             ", ".join("yes" if r["same_units_as_reference"] else "no" for r in runs if r["label"] == label)] for label, s in summary.items()]
    md = common.header("Warm-up and search on several processes vs one (SST-2, MiniLM)", payload)
    md += (f"SST-2, {train_samples:,} training sentences, max length {args.max_length}, global batch {args.batch_size}, "
           f"prunepeft's default search (space, budget, warm-up), seed {seed}. **This machine has {payload['environment']['cpu_count']} "
           f"cores shared with other jobs** (load average at start {payload['environment']['load_average']}): the parallel runs "
           "compete with them, so the speed-ups are a lower bound of what idle cores give.\n\n")
    md += (f"Medians over {1 if args.smoke else args.repeats} interleaved repeats; seconds as prunepeft measures them (`search.json`: "
           "warm-up = the per-criterion turns after the shared one; search = shared turn + warm-up + rounds) and the wall time of "
           "the whole command (loading included). \"same units\": the configuration equals the first run's.\n\n")
    md += common.table(["run", "warm-up", "speed-up", "search", "speed-up", "command wall", "warm-up of each repeat", "same units"], rows)
    md += "\n" + NOTE
    md += "\nCommands:\n\n" + "".join(f"- {r['label']}: `OMP_NUM_THREADS={r['threads_per_process']} {r['command']}`\n" for r in runs)
    common.write_results(args.out, NAME, payload, md)


if __name__ == "__main__":
    main()
