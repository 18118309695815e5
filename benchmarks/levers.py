"""What each lever changes in the PrunePEFT search, on SST-2: the benchmark's default search next to
variants that change one setting, and the LoRA r=8 baseline at the same budget. It trains nothing:
it reads the quality.json files that `benchmarks/run_all.sh` writes (one results folder per lever).

    python benchmarks/levers.py            # writes benchmarks/results/levers.{json,md}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

RESULTS = Path(__file__).resolve().parent / "results"

# (label, results folder, method, the one setting that differs from the benchmark's search)
LEVERS = [
    ("LoRA r=8 on q,v everywhere", "sst2", "lora", "baseline, no search"),
    ("PrunePEFT as benchmarked", "sst2", "prunepeft", "space lora-8 + adapter-32, k=4, re-init, 1-epoch rounds, d=128"),
    ("finer space", "sst2-fine-space", "prunepeft", "search.space=[lora-8,adapter-16]"),
    ("LoRA-only space, three ranks", "sst2-lora-space", "prunepeft", "search.space=[lora-4,lora-8,lora-16]"),
    ("adapter learning rate 1e-3", "sst2-adapter-lr", "prunepeft", "train.kind_learning_rates={adapter: 1e-3}"),
    ("keep weights between rounds", "sst2-lever-keep", "prunepeft", "search.reinit=keep"),
    ("k = 2 (more rounds)", "sst2-lever-k2", "prunepeft", "search.prune_per_round=2"),
    ("0.3-epoch rounds", "sst2-lever-round0.3", "prunepeft", "search.round_epochs=0.3"),
    ("warm-up subset d = 256", "sst2-lever-warmup256", "prunepeft", "search.warmup_samples=256"),
    ("one warm-up turn per criterion", "sst2-lever-turns1", "prunepeft", "search.warmup_turns=1"),
]


def majority_rate(data_dir: Path) -> float:
    """Dev accuracy of always answering the most frequent label: a run at this score learned nothing."""
    from collections import Counter

    from prunepeft.data.tasks import load_task

    labels = [row["label"] for row in load_task("glue/sst2", str(data_dir)).dev]
    return max(Counter(labels).values()) / len(labels)


def lever_row(label: str, folder: str, method: str, change: str, results: Path, majority: float) -> dict:
    row = {"lever": label, "folder": folder, "method": method, "change": change, "n": 0}
    path = results / folder / "quality.json"
    if not path.is_file():
        return row
    payload = json.loads(path.read_text())
    runs = [r for r in payload["runs"] if r["task"] == "sst2" and r["method"] == method]
    if not runs:
        return row
    budget = payload["settings"]["budget"]
    metrics = [r["metrics"] for r in runs]
    row.update({"n": len(runs), "seeds": [r["seed"] for r in runs], "commit": payload["environment"]["git_commit"],
                "command": payload["command"], "scores": [m["score"] for m in metrics]})
    row["score"], row["score_std"] = common.mean_std(row["scores"])
    row["collapsed"] = sum(score < majority + 0.01 for score in row["scores"])
    row["params"], _ = common.mean_std(m["trainable_params"] for m in metrics)
    row["budget_used"] = row["params"] / budget
    if all("search_train_ratio" in m for m in metrics):
        row["ratio_seconds"], row["ratio_seconds_std"] = common.mean_std(m["search_train_ratio"] for m in metrics)
        row["ratio_epochs"], _ = common.mean_std(m["search_train_epoch_ratio"] for m in metrics)
    return row


def markdown(payload: dict) -> str:
    md = [common.header("Levers: what one setting changes in the PrunePEFT search (glue/sst2)", payload)]
    md.append("Each row reads one results folder under `benchmarks/results/` (its `quality.md` names the exact command). "
              "All rows: packaged all-MiniLM-L6-v2, 500 stratified SST-2 training sentences, full dev set, 3 epochs, "
              "lr 1e-2, budget 73,728 unit parameters. Scores are dev accuracy, mean ± sample std over the seeds; "
              "the last column is the margin to LoRA r=8 in points. 'collapsed' counts the seeds that ended within 1 point of "
              f"the majority-class rate ({100 * payload['majority_rate']:.2f}%): they learned nothing, and they dominate a large std.\n\n")
    base = next((r for r in payload["rows"] if r["method"] == "lora" and r["n"]), None)
    rows = []
    for r in payload["rows"]:
        if not r["n"]:
            rows.append([r["lever"], f"`{r['change']}`", 0, "not run", "", "", "", "", ""])
            continue
        ratio = f"{common.pm(r['ratio_seconds'], r['ratio_seconds_std'], 2, 1)} / {r['ratio_epochs']:.2f}" if "ratio_seconds" in r else "-"
        margin = f"{100 * (r['score'] - base['score']):+.2f}" if base and r is not base else ""
        rows.append([r["lever"], f"`{r['change']}`", r["n"], common.pm(r["score"], r["score_std"]), r["collapsed"],
                     f"{r['params']:,.0f}", f"{100 * r['budget_used']:.0f}%", ratio, margin])
    md.append(common.table(["lever", "setting", "seeds", "dev accuracy", "collapsed", "unit params", "budget used",
                            "search/retrain (seconds / epochs)", "vs LoRA r=8"], rows))
    md.append("\n")
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="folder holding the per-lever results folders")
    args = p.parse_args(argv)
    started = time.perf_counter()
    payload = common.base_payload("levers", args, started)
    payload["majority_rate"] = majority_rate(args.data_dir)
    payload["rows"] = [lever_row(*lever, results=args.results, majority=payload["majority_rate"]) for lever in LEVERS]
    payload["seeds"] = sorted({s for r in payload["rows"] for s in r.get("seeds", [])})
    common.write_results(args.out, "levers", payload, markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
