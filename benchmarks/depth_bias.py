"""Does a criterion prune by depth? Reads finished search folders (trains nothing) and writes
depth_bias.json/.md: for each criterion, where round 1 puts each layer's units in its prune order
(the search's own peer-relative rule, `criteria/fair.py`; the mean percentile of the layer's units,
0 = pruned last, 1 = pruned first, 0.5 for a criterion blind to depth), and how many units each
run kept in each layer.

With a [CLS] head the last layer's query, output and FFN units get gradient through one position,
so gradient-type scores may fall with depth for a reason that has nothing to do with usefulness.

    python benchmarks/depth_bias.py RUN_DIR [RUN_DIR ...] --out benchmarks/results/depth-bias
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from scipy.stats import rankdata

from prunepeft.criteria.fair import relative_prunability
from prunepeft.space.units import Unit


def run_rows(run: Path) -> dict:
    trace = [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]
    first = trace[0]
    layers = 1 + max(Unit.parse(u).layer for u in first["alive"])
    by_layer = {}
    for criterion, raw in sorted(first["scores"].items()):
        q = relative_prunability(criterion, {Unit.parse(u): v for u, v in raw.items()})
        percentile = dict(zip(q, rankdata(list(q.values())) - 1)) if len(set(q.values())) > 1 else dict.fromkeys(q, None)
        if None in percentile.values():  # a criterion that scores every unit alike has no order
            continue
        percentile = {u: r / (len(q) - 1) for u, r in percentile.items()}
        by_layer[criterion] = [statistics.fmean(v for u, v in percentile.items() if u.layer == layer) for layer in range(layers)]
    kept = json.loads((run / "search.json").read_text())["units"]
    per_layer = Counter(Unit.parse(u).layer for u in kept)
    strategy = json.loads((run / "strategy.json").read_text())["strategy"]
    return {"run": str(run), "strategy": strategy, "prunability_by_layer": by_layer,
            "kept_by_layer": [per_layer[layer] for layer in range(layers)]}


def markdown(payload: dict) -> str:
    md = ["# Depth bias: round-1 peer-relative prunability by layer, and kept units by layer", "",
          f"- command: `{payload['command']}`", f"- date (UTC): {payload['date']}", "",
          "Each cell: the mean percentile of the layer's units in the criterion's round-1 prune order, by the search's own "
          "peer-relative rule (criteria/fair.py); 0 = pruned last, 1 = pruned first, 0.5 = blind to depth. "
          "Criteria that score every unit alike (zeros on LoRA) are left out.", ""]
    for row in payload["rows"]:
        layers = len(row["kept_by_layer"])
        md += [f"## {row['run']}", "", "strategy: " + "; ".join(f"{p}: {'+'.join(c)}" for p, c in sorted(row["strategy"].items())), "",
               "| criterion | " + " | ".join(f"layer {i}" for i in range(layers)) + " |", "|---|" + "---|" * layers]
        md += [f"| {c} | " + " | ".join(f"{v:.2f}" for v in vals) + " |" for c, vals in row["prunability_by_layer"].items()]
        md += ["| units kept | " + " | ".join(str(k) for k in row["kept_by_layer"]) + " |", ""]
    return "\n".join(md)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished search folders (trace.jsonl, search.json, strategy.json)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    missing = [str(r) for r in args.runs if not all((r / f).is_file() for f in ("trace.jsonl", "search.json", "strategy.json"))]
    if missing:
        print(f"error: no finished search in {', '.join(missing)} (needs trace.jsonl, search.json and strategy.json)", file=sys.stderr)
        return 2
    payload = {"command": "python benchmarks/depth_bias.py " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "rows": [run_rows(r) for r in args.runs]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "depth_bias.json").write_text(json.dumps(payload, indent=2))
    (args.out / "depth_bias.md").write_text(markdown(payload))
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
