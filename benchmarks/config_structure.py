"""Does the shape of a searched configuration explain its score? Reads finished runs (trains nothing)
and writes config_structure.json/.md: per run, its dev score and how many units it keeps per target
and per layer; then, over all runs, the Pearson correlation (and its two-sided p) between the score
and each of those counts, the score taken relative to its seed's mean over the runs read (a seed
draws its own training subset and order, which moves every method alike).

    python benchmarks/config_structure.py --runs '/tmp/pp-bench*/sst2-n5000-len64-ep3/*/seed*' \
        --out benchmarks/results/config-structure-sst2

Runs whose units are not all of one kind and size are skipped (said), so searches of one space compare.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import common

TARGETS = ("q", "k", "v", "o", "ffn_in", "ffn_out")


def read_run(folder: Path) -> dict | None:
    """A finished run's score and unit counts, or None when it is not a finished search or training run."""
    conf, metrics, config = folder / "configuration.json", folder / "metrics.json", folder / "config.json"
    if not (conf.is_file() and metrics.is_file() and config.is_file()) or (folder / "INCOMPLETE").exists():
        return None
    units = json.loads(conf.read_text())["units"]
    layers = max(u["layer"] for u in units) + 1 if units else 0
    return {"run": str(folder), "seed": json.loads(config.read_text())["seed"], "score": json.loads(metrics.read_text())["score"],
            "units": len(units), "unit_kinds": sorted({f"{u['kind']}-{u['size']}" for u in units}),
            "per_target": {t: sum(1 for u in units if u["target"] == t) for t in TARGETS},
            "per_layer": dict(sorted(Counter(u["layer"] for u in units).items())), "layers": layers}


def features(run: dict, num_layers: int) -> dict[str, int]:
    f = {"units": run["units"], "ffn units": run["per_target"]["ffn_in"] + run["per_target"]["ffn_out"],
         "layers covered": len(run["per_layer"])}
    f.update({f"target {t}": n for t, n in run["per_target"].items()})
    f.update({f"layer {i}": run["per_layer"].get(i, 0) for i in range(num_layers)})
    return f


def correlations(runs: list[dict]) -> list[dict]:
    from scipy.stats import pearsonr

    seed_mean = {s: statistics.mean(r["score"] for r in runs if r["seed"] == s) for s in {r["seed"] for r in runs}}
    relative = [r["score"] - seed_mean[r["seed"]] for r in runs]
    num_layers = max(r["layers"] for r in runs)
    table = [features(r, num_layers) for r in runs]
    out = []
    for name in table[0]:
        x = [t[name] for t in table]
        if len(set(x)) < 2:
            out.append({"feature": name, "r": None, "p": None})
            continue
        r, p = pearsonr(x, relative)
        out.append({"feature": name, "r": float(r), "p": float(p)})
    return out


def markdown(payload: dict) -> str:
    md = [common.header("Configuration structure against dev score", payload)]
    md.append(f"{len(payload['runs'])} runs of one unit kind ({', '.join(payload['unit_kinds'])}); "
              f"skipped (other or mixed unit kinds): {len(payload['skipped'])}; not finished runs (no configuration, "
              f"metrics or config file, or INCOMPLETE): {len(payload['unfinished'])}. Score: dev metric in %.\n\n")
    scores = [100 * r["score"] for r in payload["runs"]]
    md.append(f"Scores: {statistics.mean(scores):.2f} ± {statistics.stdev(scores):.2f} (sample std), "
              f"{min(scores):.2f} to {max(scores):.2f}.\n\n")
    rows = [[r["run"], r["seed"], f"{100 * r['score']:.2f}", r["units"], " / ".join(str(r["per_target"][t]) for t in TARGETS),
             " / ".join(str(r["per_layer"].get(i, 0)) for i in range(r["layers"]))] for r in payload["runs"]]
    md.append(common.table(["run", "seed", "score", "units", "per target (" + " / ".join(TARGETS) + ")", "per layer"], rows))
    md.append("\n\nPearson correlation of the score, relative to its seed's mean, with each count "
              f"(n = {len(payload['runs'])}; |r| must exceed about {payload['r_at_p05']:.2f} for p < 0.05):\n\n")
    md.append(common.table(["count", "r", "p"], [[c["feature"], "-" if c["r"] is None else f"{c['r']:+.2f}",
                                                  "-" if c["p"] is None else f"{c['p']:.2f}"] for c in payload["correlations"]]))
    return "".join(md) + "\n"


def r_at_p05(n: int) -> float:
    """The |r| at which a Pearson correlation of n points reaches p = 0.05 (two-sided)."""
    from scipy.stats import t

    q = t.ppf(0.975, n - 2)
    return float(q / (q * q + n - 2) ** 0.5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders or glob patterns of them (quoted; a link counts once)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    started = time.perf_counter()
    unmatched = [pattern for pattern in args.runs if not any(Path(f).is_dir() for f in glob.glob(pattern))]
    if unmatched:
        print(f"config_structure: no folder matches {', '.join(unmatched)}; pass finished run folders", file=sys.stderr)
        return 2
    folders = {Path(f).resolve() for pattern in args.runs for f in glob.glob(pattern) if Path(f).is_dir()}
    read = {f: read_run(f) for f in sorted(folders)}
    runs = [r for r in read.values() if r]
    unfinished = [str(f) for f, r in read.items() if r is None]
    kinds = Counter(tuple(r["unit_kinds"]) for r in runs if len(r["unit_kinds"]) == 1)
    if not kinds:
        print("config_structure: no finished run of a single unit kind among --runs; pass finished run folders", file=sys.stderr)
        return 2
    kind = kinds.most_common(1)[0][0]
    kept = [r for r in runs if tuple(r["unit_kinds"]) == kind]
    if len(kept) < 4:
        print(f"config_structure: {len(kept)} runs of {kind[0]}; a correlation needs at least 4", file=sys.stderr)
        return 2
    payload = {"benchmark": "config_structure", "command": common.command_line(), "environment": common.environment(),
               "seeds": sorted({r["seed"] for r in kept}), "wall_seconds": time.perf_counter() - started,
               "unit_kinds": list(kind), "runs": kept, "skipped": [r["run"] for r in runs if r not in kept],
               "unfinished": unfinished,
               "correlations": correlations(kept), "r_at_p05": r_at_p05(len(kept))}
    common.write_results(args.out, "config_structure", payload, markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
