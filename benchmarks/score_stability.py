"""How stable and how telling are the search's scores? Reads the traces of searches already in a
quality.py work dir (trains nothing) and writes score_stability.json/.md:

- per criterion, the Spearman rank correlation of the alive units' scores between consecutive
  rounds (1 = the same order every round, 0 = a new order every round);
- per criterion, the rank correlation of round 1's scores as the search ranks them (peer-relative
  but for `removal`) between runs of other seeds (other data subset and initialisation: does it
  see the task, or the seed?);
- per round 1, the rank correlation between every two criteria (do they agree?);
- the warm-up's strategy (criteria per partition) of every run;
- the final configurations: their overlap across seeds and with the random ablation of the same
  seed (Jaccard), beside each run's dev score.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import common
from quality import TASKS, task_key, task_settings


def _spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 4 or len(set(a)) < 2 or len(set(b)) < 2:
        return None  # too few units, or a criterion that cannot tell them apart
    return float(spearmanr(a, b).statistic)


def _pairs(x: dict, y: dict) -> tuple[list[float], list[float]]:
    common_units = sorted(set(x) & set(y))
    return [x[u] for u in common_units], [y[u] for u in common_units]


def round_to_round(trace: list[dict]) -> dict[str, list[float | None]]:
    """criterion -> rank correlation between round t and t+1 over the units alive in both."""
    return {c: [_spearman(*_pairs(a["scores"][c], b["scores"][c])) for a, b in zip(trace, trace[1:])]
            for c in trace[0]["scores"]}


def across_seeds(runs: dict) -> dict[str, float | None]:
    """criterion -> median rank correlation of round 1's prunability, as the search ranks it (peer-relative but
    for `removal`), between runs of other seeds."""
    from prunepeft.criteria.fair import oriented
    from prunepeft.space.units import Unit

    def first_round(run, c):
        return oriented(c, {Unit.parse(n): v for n, v in run["trace"][0]["scores"][c].items()}, fair=True)

    out = {}
    for c in sorted({c for r in runs.values() for c in r["trace"][0]["scores"]}):
        pairs = [(a, b) for (a, b) in itertools.combinations(runs, 2) if a[1] != b[1]
                 and c in runs[a]["trace"][0]["scores"] and c in runs[b]["trace"][0]["scores"]]
        out[c] = _median(_spearman(*_pairs(first_round(runs[a], c), first_round(runs[b], c))) for a, b in pairs)
    return out


def criteria_agreement(first_round: dict) -> dict[str, float | None]:
    scores = first_round["scores"]
    return {f"{a}~{b}": _spearman(*_pairs(scores[a], scores[b])) for a, b in itertools.combinations(sorted(scores), 2)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def load_run(run_dir: Path) -> dict | None:
    from prunepeft.space.units import load_configuration

    trace_path, config_path, metrics_path = (run_dir / n for n in ("trace.jsonl", "configuration.json", "metrics.json"))
    if not (trace_path.is_file() and config_path.is_file() and metrics_path.is_file()):
        return None
    trace = [json.loads(line) for line in trace_path.read_text().splitlines() if line.strip()]
    units = {u.name for u in load_configuration(config_path)}
    strategy_path = run_dir / "strategy.json"
    strategy = json.loads(strategy_path.read_text())["strategy"] if strategy_path.is_file() else None
    return {"trace": trace, "units": units, "score": json.loads(metrics_path.read_text()).get("score"), "strategy": strategy}


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def analyse(work: Path, tasks, methods, seeds, smoke: bool) -> dict:
    out = {}
    for task in tasks:
        key = task_key(task, task_settings(task, smoke))
        runs = {(m, s): load_run(work / key / m / f"seed{s}") for m in methods for s in seeds}
        runs = {k: v for k, v in runs.items() if v and v["trace"]}
        if not runs:
            continue
        per_run = {}
        for (m, s), r in runs.items():
            per_run[f"{m}/seed{s}"] = {"rounds": len(r["trace"]), "score": r["score"], "units": sorted(r["units"]), "strategy": r["strategy"],
                                       "round_to_round": round_to_round(r["trace"]), "criteria_agreement": criteria_agreement(r["trace"][0])}
        criteria = sorted({c for r in per_run.values() for c in r["round_to_round"]})
        stability = {c: _median(v for r in per_run.values() for v in r["round_to_round"].get(c, [])) for c in criteria}
        consistency = across_seeds(runs)
        pairs = sorted({p for r in per_run.values() for p in r["criteria_agreement"]})
        agreement = {p: _median(r["criteria_agreement"].get(p) for r in per_run.values()) for p in pairs}
        overlap = {}
        for m in methods:
            seeds_of = [s for s in seeds if (m, s) in runs]
            overlap[f"{m} across seeds"] = _median(jaccard(runs[(m, a)]["units"], runs[(m, b)]["units"])
                                                   for a, b in itertools.combinations(seeds_of, 2))
        for a, b in itertools.combinations(methods, 2):
            overlap[f"{a} vs {b}, same seed"] = _median(jaccard(runs[(a, s)]["units"], runs[(b, s)]["units"])
                                                        for s in seeds if (a, s) in runs and (b, s) in runs)
        out[task] = {"work_key": key, "runs": per_run, "stability": stability, "across_seeds": consistency, "agreement": agreement, "overlap": overlap}
    return out


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(payload: dict) -> str:
    md = [common.header("Score stability and configuration overlap (from existing search traces)", payload)]
    for task, t in payload["tasks"].items():
        md.append(f"\n## {task} ({t['work_key']})\n\nRuns: " + ", ".join(
            f"{name} ({r['rounds']} rounds, dev {_fmt(r['score'])})" for name, r in t["runs"].items()) + "\n")
        md.append("\n| criterion | median rank correlation, round t vs t+1 | round 1 across seeds (as ranked) |\n|---|---|---|\n")
        md += [f"| {c} | {_fmt(v)} | {_fmt(t['across_seeds'].get(c))} |\n" for c, v in t["stability"].items()]
        strategies = {name: r["strategy"] for name, r in t["runs"].items() if r["strategy"]}
        if strategies:
            partitions = sorted({p for st in strategies.values() for p in st})
            md.append("\n| warm-up strategy of | " + " | ".join(partitions) + " |\n|---|" + "---|" * len(partitions) + "\n")
            md += [f"| {name} | " + " | ".join(", ".join(st.get(p, [])) for p in partitions) + " |\n" for name, st in strategies.items()]
        md.append("\n| criteria at round 1 | median rank correlation |\n|---|---|\n")
        md += [f"| {p} | {_fmt(v)} |\n" for p, v in t["agreement"].items()]
        md.append("\n| final configurations | median Jaccard overlap |\n|---|---|\n")
        md += [f"| {p} | {_fmt(v)} |\n" for p, v in t["overlap"].items()]
    md.append("\n`-`: undefined (a criterion that scores every unit alike, e.g. `zeros` once no weight is exactly 0, "
              "or fewer than 4 common units).\n")
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--work-dir", type=Path, required=True, help="the quality.py work dir whose search runs to read")
    p.add_argument("--tasks", nargs="+", default=["sst2", "rte", "qnli", "movie"], choices=list(TASKS))
    p.add_argument("--methods", nargs="+", default=["prunepeft", "random"], help="search methods (folders with a trace.jsonl)")
    args = p.parse_args(argv)
    started = time.perf_counter()
    tasks = analyse(args.work_dir, args.tasks, args.methods, args.seeds, args.smoke)
    if not tasks:
        print(f"score_stability: no finished search run of {args.methods} for {args.tasks} in {args.work_dir}; "
              "run benchmarks/quality.py with that --work-dir first", file=sys.stderr)
        return 2
    payload = common.base_payload("score_stability", args, started)
    payload.update({"work_dir": str(args.work_dir), "methods": args.methods, "tasks": tasks})
    common.write_results(args.out, "score_stability", payload, markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
