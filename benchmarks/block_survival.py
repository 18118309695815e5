"""Does a partition keep units in proportion to its size, or by how many partitions share its
criterion? Reads finished search folders (trains nothing) and writes block_survival.json/.md.

Eq. 1 ranks the units of every partition that uses criterion s together, and weighs a unit by
sigmoid(tau - rank): each criterion's top few units weigh alike however many units it ranks.
A partition whose criterion no other partition uses is then ranked alone; this script compares
the share of their units such partitions keep to the share kept by partitions that share a criterion.
Units kept = alive after the last round (before the fill); units of `search.floor` are not searched.

    python benchmarks/block_survival.py RUN_DIR [RUN_DIR ...] --out benchmarks/results/block-survival
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from prunepeft.space.partition import partition_of
from prunepeft.space.units import Unit


def run_rows(run: Path) -> list[dict]:
    strategy = json.loads((run / "strategy.json").read_text())["strategy"]
    trace = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    space = trace[0]["alive"]
    kept = set(trace[-1]["alive"]) - set(trace[-1]["pruned"])
    num_layers = 1 + max(Unit.parse(u).layer for u in space)  # every layer holds units of the default space

    def label(name):
        return partition_of(Unit.parse(name), num_layers)

    size, alive = Counter(map(label, space)), Counter(map(label, kept))
    users = Counter(c for crits in strategy.values() for c in set(crits))
    return [{"run": str(run), "partition": p, "criteria": strategy[p], "units": size[p], "kept": alive[p],
             "share_kept": alive[p] / size[p], "criterion_alone": all(users[c] == 1 for c in strategy[p]),
             "run_share_kept": len(kept) / len(space)} for p in sorted(size)]


def summary(rows: list[dict]) -> dict:
    out = {}
    for alone in (True, False):
        group = [r for r in rows if r["criterion_alone"] == alone]
        # kept share relative to the run's overall kept share: 1.0 = kept in proportion to its size
        relative = [r["share_kept"] / r["run_share_kept"] for r in group]
        out["alone" if alone else "shared"] = {"partitions": len(group), "units": sum(r["units"] for r in group),
                                               "kept": sum(r["kept"] for r in group),
                                               "mean_relative_share": statistics.fmean(relative) if relative else None}
    return out


def markdown(payload: dict) -> str:
    md = ["# Block survival: kept units by partition, alone on a criterion or sharing it", "",
          f"- command: `{payload['command']}`", f"- date (UTC): {payload['date']}", "",
          "| run | partition | criteria | criterion alone | units | kept |", "|---|---|---|---|---|---|"]
    md += [f"| {r['run']} | {r['partition']} | {', '.join(r['criteria'])} | {'yes' if r['criterion_alone'] else 'no'} | "
           f"{r['units']} | {r['kept']} |" for r in payload["rows"]]
    md += ["", "| partitions | count | units | kept | kept share / the run's kept share (mean) |", "|---|---|---|---|---|"]
    for name, s in payload["summary"].items():
        share = "—" if s["mean_relative_share"] is None else f"{s['mean_relative_share']:.2f}"
        md.append(f"| criterion {name} | {s['partitions']} | {s['units']} | {s['kept']} | {share} |")
    return "\n".join(md) + "\n"


def main() -> int:
    import sys

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished search folders (with strategy.json and trace.jsonl)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not (r / "trace.jsonl").is_file() or not (r / "strategy.json").is_file()]
    if missing:
        print(f"error: no finished hybrid search in {', '.join(missing)} (needs trace.jsonl and strategy.json)", file=sys.stderr)
        return 2
    rows = [row for run in args.runs for row in run_rows(run)]
    payload = {"command": "python benchmarks/block_survival.py " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "rows": rows, "summary": summary(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "block_survival.json").write_text(json.dumps(payload, indent=2))
    (args.out / "block_survival.md").write_text(markdown(payload))
    print(markdown(payload).split("| partitions |")[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
