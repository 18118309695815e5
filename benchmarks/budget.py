"""Dev score against the parameter budget on GLUE SST-2: a LoRA rank sweep (r = 2, 4, 8, 16 on
query+value of every layer) and PrunePEFT searching at each of those budgets.

    python benchmarks/budget.py [--ranks 2 4 8 16] [--seeds 1] [--task sst2]

PrunePEFT searches its default space (LoRA r=4 on every linear: 165,888 parameters on MiniLM, above
every budget of the sweep). Runs share quality.py's work dir and settings: the r = 8 runs are
quality.py's `lora` and `prunepeft`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import quality

SMOKE_RANKS = [2, 4]


def space(smoke: bool) -> list[str]:  # the same in smoke mode: above the tiny model's budgets too
    from prunepeft.config import DEFAULT_SPACE

    return list(DEFAULT_SPACE)


def jobs_for(rank: int, budget: int, *, smoke: bool, seeds, common_kw: dict) -> list[dict]:
    lora_name = "lora" if rank == 8 else f"lora-r{rank}"
    family = space(smoke)
    search_name = "prunepeft" if rank == 8 else f"prunepeft-b{budget}"
    searched = quality.method_spec("prunepeft", budget)[0] + [f"search.space={' '.join(family)}"]
    out = []
    for seed in seeds:
        out.append({**quality.make_job(method="lora", seed=seed, name=lora_name,
                                       method_overrides=(["method=lora", f"rank={rank}"], False), **common_kw),
                    "series": "lora", "rank": rank, "budget": budget})
        out.append({**quality.make_job(method="prunepeft", seed=seed, name=search_name,
                                       method_overrides=(searched, True), **common_kw),
                    "series": "prunepeft", "rank": rank, "budget": budget, "space": family})
    return out


def summarise(records: list[dict], ranks, budgets) -> list[dict]:
    rows = []
    for rank in ranks:
        row = {"rank": rank, "budget": budgets[rank]}
        for series in ("lora", "prunepeft"):
            ms = [r["metrics"] for r in records if r["series"] == series and r["rank"] == rank]
            if ms:
                mean, std = common.mean_std(m["score"] for m in ms)
                row[series] = {"n": len(ms), "scores": [m["score"] for m in ms], "mean": mean, "std": std,
                               "trainable_params": common.mean_std(m["trainable_params"] for m in ms)[0],
                               "seconds": common.mean_std(m["train_seconds"] + m.get("search_seconds", 0.0) for m in ms)[0]}
        rows.append(row)
    return rows


def plot(rows: list[dict], path: Path, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for series, label, marker in (("lora", "LoRA rank sweep (q,v everywhere)", "o"), ("prunepeft", "PrunePEFT at the same budgets", "s")):
        pts = [r[series] for r in rows if series in r]
        if not pts:
            continue
        x = [p["trainable_params"] for p in pts]
        y = [100 * p["mean"] for p in pts]
        err = [100 * p["std"] if p["std"] == p["std"] else 0.0 for p in pts]  # NaN (one seed) -> no bar
        ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("trainable unit parameters (head excluded)")
    ax.set_ylabel(f"glue/{task} dev score (%)")
    ax.set_title("Dev score vs parameter budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def markdown(payload: dict) -> str:
    ts = payload["task_settings"]
    md = [common.header(f"Budget: dev score vs parameter budget on glue/{payload['task']}", payload)]
    md.append(f"Model `{payload['settings']['model']}`; train subset {ts['max_train_samples']} (stratified, by seed), "
              f"max_length {ts['max_length']}, epochs {ts['epochs']:g}; full dev set. Budget = the unit parameters of "
              "LoRA r on query+value of every layer. Scores in %, mean ± sample std over seeds.\n\n")
    rows = []
    for r in payload["summary"]:
        lo, pp = r.get("lora"), r.get("prunepeft")
        diff = f"{(pp['mean'] - lo['mean']) * 100:+.2f}" if lo and pp else "—"
        rows.append([f"{r['budget']:,}", f"r={r['rank']}",
                     common.pm(lo["mean"], lo["std"]) if lo else "—", f"{lo['trainable_params']:,.0f}" if lo else "—",
                     common.pm(pp["mean"], pp["std"]) if pp else "—", f"{pp['trainable_params']:,.0f}" if pp else "—",
                     " + ".join(payload["spaces"][str(r["rank"])]), diff])
    md.append(common.table(["budget", "LoRA", "LoRA score", "LoRA params", "PrunePEFT score", "PrunePEFT params",
                            "PrunePEFT space", "PrunePEFT − LoRA (points)"], rows))
    md.append("\n![dev score vs budget](budget.png)\n")
    if payload["failures"]:
        md.append("\n## Failed runs\n\n")
        md += [f"- {f['method']} / seed {f['seed']}: {f['error']}\n" for f in payload["failures"]]
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0], default_seeds=(1,))
    common.add_work_dir(p)
    p.add_argument("--task", default="sst2", choices=list(quality.TASKS))
    p.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--max-train-samples", type=int, default=None, help="override the train subset size")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds, args.ranks = args.seeds[:1], [r for r in args.ranks if r in SMOKE_RANKS] or SMOKE_RANKS
    common.set_threads(args.threads, args.smoke)
    started = time.perf_counter()
    with common.workspace(args, (args.task,)) as (model, data_dir, work):
        budgets = {r: common.unit_params(model, "lora", r) for r in args.ranks}
        extra = [o for o in quality.SMOKE_EXTRA if not o.startswith("search.space=")] if args.smoke else []
        settings = quality.task_settings(args.task, args.smoke, args.max_train_samples)
        kw = {"task": args.task, "settings": settings, "model": model, "data_dir": data_dir, "work": work,
              "budget": 0, "extra": extra + args.extra}
        jobs = [j for r in args.ranks for j in jobs_for(r, budgets[r], smoke=args.smoke, seeds=args.seeds, common_kw=kw)]
        records, failures = common.run_many(jobs, args.report_only)
    summary = summarise(records, args.ranks, budgets)
    payload = common.base_payload("budget", args, started)
    payload.update({"settings": {"model": model, "extra_overrides": extra + args.extra, "work_dir": str(work),
                                 "report_only": args.report_only},
                    "task": args.task, "task_settings": settings, "ranks": args.ranks,
                    "budgets": {str(r): b for r, b in budgets.items()},
                    "spaces": {str(r): space(args.smoke) for r in args.ranks},
                    "summary": summary, "runs": records, "failures": failures})
    plot(summary, Path(args.out) / "budget.png", args.task)
    common.write_results(args.out, "budget", payload, markdown(payload))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
