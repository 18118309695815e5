"""Can any choice of units beat LoRA on all linears at this budget? Writes placement_oracle.json/.md.

For each task and seed of a unit_ablation.json it builds two configurations from the units of the
whole supernet that fill the budget: the units whose removal raised the dev loss most (`top`) and
least (`bottom`), each added in that order while it fits. It trains each as a final training with the
settings and seed of quality.py's runs, and sets the scores beside those of the same task and seed in
quality.json files (`--scores-from`). The dev set chose `top`, so it is an oracle no search may use:
if it does not beat LoRA on all linears, choosing units by their importance in the supernet cannot.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import common
from quality import LABELS, SMOKE_EXTRA, make_job, task_settings

ORDERS = {"top": True, "bottom": False}  # name -> most important first
COMPARED = ["lora-all", "lora", "prunepeft", "random"]


class UntrainableOracle(ValueError):
    """An oracle configuration that cannot be trained as asked: none fits the budget, or the work dir
    holds one that the given importances would not choose."""


def fill(importance: dict[str, float], params: dict[str, int], budget: int, most_first: bool) -> list[str]:
    """Units in importance order (ties by name), each taken while it still fits the budget."""
    kept, used = [], 0
    for name in sorted(importance, key=lambda n: (-importance[n] if most_first else importance[n], n)):
        if used + params[name] <= budget:
            kept.append(name)
            used += params[name]
    return kept


def unit_sizes(model: str, names) -> dict[str, int]:
    """Each unit's trainable parameters on `model`, prunepeft's own count."""
    from prunepeft.space.units import Unit
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_classifier, resolve_model_path
    from prunepeft.supernet.supernet import Supernet

    loaded = load_classifier(resolve_model_path(model), 2, False)
    supernet = Supernet(loaded, inspect_model(loaded))
    return {n: supernet.param_count(Unit.parse(n)) for n in names}


def importances(ablations: list[dict], seeds) -> list[tuple[str, int, dict[str, float], float]]:
    """(task, seed, each unit's rise of the dev loss, the whole supernet's dev score) for every seed asked
    for, over the unit_ablation.json files in order."""
    return [(task, int(name.removeprefix("seed")), {n: u["loss_rise"] for n, u in r["units"].items()}, r["dev_accuracy"])
            for a in ablations for task, t in a["tasks"].items() for name, r in t["runs"].items()
            if int(name.removeprefix("seed")) in seeds]


def jobs(picked: list[tuple], args, model: str, data_dir: Path, work: Path) -> list[dict]:
    from prunepeft.space.units import Unit, load_configuration, save_configuration

    out = []
    extra = SMOKE_EXTRA if args.smoke else []
    budget = args.budget if args.budget is not None else common.unit_params(model, "lora", 8)
    for task, seed, importance, whole_score in picked:
        sizes = unit_sizes(model, importance)
        for order, most_first in ORDERS.items():
            kept = fill(importance, sizes, budget, most_first)
            if not kept:
                raise UntrainableOracle(f"no unit of {task} seed {seed} fits the budget of {budget:,} parameters "
                                           f"(the smallest has {min(sizes.values()):,}); give a larger --budget")
            path = work / "configurations" / f"{task}-{order}-seed{seed}.json"
            if path.is_file() and sorted(u.name for u in load_configuration(path)) != sorted(kept):
                raise UntrainableOracle(f"{path} holds other units than {task} seed {seed}'s importances choose now "
                                           "(another unit_ablation.json?); use another --work-dir")  # its run trained those
            path.parent.mkdir(parents=True, exist_ok=True)
            save_configuration([Unit.parse(n) for n in kept], path)
            job = make_job(task, order, seed, settings=task_settings(task, args.smoke), model=model, data_dir=data_dir,
                           work=work, budget=budget, extra=extra, name=f"oracle-{order}",
                           method_overrides=([f"configuration={path}", f"search.budget={budget}"], False))
            out.append({**job, "order": order, "budget": budget, "units": kept,
                        "unit_params": sum(sizes[n] for n in kept), "whole_supernet_score": whole_score})
    return out


def recorded_scores(paths: list[Path]) -> dict:
    """scores[(task, method, seed)] from quality.json files (the first file that records a run wins)."""
    scores = {}
    for path in paths:
        for r in json.loads(Path(path).read_text())["runs"]:
            scores.setdefault((r["task"], r["method"], r["seed"]), r["metrics"]["score"])
    return scores


def markdown(payload: dict) -> str:
    md = [common.header("Placement oracle: the units the dev set ranks most important, against LoRA on all linears", payload)]
    budgets = sorted({r["budget"] for r in payload["runs"]})
    md.append(f"\nBudget {', '.join(f'{b:,}' for b in budgets)} unit parameters. `top`: the whole supernet's units by the rise of the dev loss "
              "when each alone is removed (benchmarks/unit_ablation.py), most important first, each taken while it fits; "
              "`bottom`: least important first. Both are trained as a final training (same settings and seed as quality.py). "
              "The dev set chose `top`: an oracle, not a search. Scores in % dev accuracy.\n\n")
    compared = [m for m in COMPARED if any(r["recorded"].get(m) is not None for r in payload["runs"])]
    headers = ["task", "seed", "top (units, params)", "bottom (units, params)", "whole supernet (all units, unpruned)"]
    headers += [LABELS.get(m, m) for m in compared]
    rows = []
    for task, by_seed in _by_task_seed(payload["runs"]).items():
        for seed, rs in by_seed.items():
            cell = {r["order"]: f"{100 * r['score']:.2f} ({len(r['units'])}, {r['unit_params']:,})" for r in rs}
            rows.append([task, seed, cell.get("top", "-"), cell.get("bottom", "-"), _pct(rs[0]["whole_supernet_score"])]
                        + [_pct(rs[0]["recorded"].get(m)) for m in compared])
        if len(by_seed) > 1:
            runs = [r for rs in by_seed.values() for r in rs]
            rows.append([task, "mean", *(_mean(r["score"] for r in runs if r["order"] == o) for o in ORDERS),
                         _mean(rs[0]["whole_supernet_score"] for rs in by_seed.values())]
                        + [_mean(rs[0]["recorded"].get(m) for rs in by_seed.values()) for m in compared])
    md.append(common.table(headers, rows))
    md += common.failures_markdown(payload["failures"])
    return "".join(md)


def _by_task_seed(runs: list[dict]) -> dict:
    out = {}
    for r in runs:
        out.setdefault(r["task"], {}).setdefault(r["seed"], []).append(r)
    return out


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _mean(values) -> str:
    values = list(values)
    return "-" if not values or None in values else _pct(sum(values) / len(values))


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0], default_seeds=(1, 2))
    p.add_argument("--ablation", type=Path, nargs="+", required=True, help="unit_ablation.json files (the unit importances)")
    p.add_argument("--scores-from", type=Path, nargs="*", default=[], help="quality.json files to compare with (same task and seed)")
    p.add_argument("--work-dir", type=Path, required=True,
                   help="one folder per oracle run, skipped when done (in --smoke: the work dir of the ablation's runs, "
                        "for its tiny model and data)")
    p.add_argument("--budget", type=int, default=None, help="unit parameters (default: LoRA r=8 on q,v of the model, as quality.py)")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    common.set_threads(args.threads, args.smoke)
    started = time.perf_counter()
    try:
        picked = importances([json.loads(path.read_text()) for path in args.ablation], args.seeds)
        tasks = sorted({task for task, *_ in picked})
        scores = recorded_scores(args.scores_from)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        print(f"placement_oracle: cannot read an --ablation or --scores-from file ({type(e).__name__}: {e}); "
              "give the unit_ablation.json and quality.json files those benchmarks wrote", file=sys.stderr)
        return 2
    if args.budget is not None and args.budget <= 0:
        print(f"placement_oracle: --budget {args.budget} must be a positive number of unit parameters", file=sys.stderr)
        return 2
    if not picked:
        print(f"placement_oracle: no seed of {args.seeds} in {' '.join(map(str, args.ablation))}; give --seeds that unit_ablation.py measured",
              file=sys.stderr)
        return 2
    try:
        with common.workspace(args, tasks) as (model, data_dir, work):
            records, failures = common.run_many(jobs(picked, args, model, data_dir, work), args.report_only)
    except UntrainableOracle as e:
        print(f"placement_oracle: {e}", file=sys.stderr)
        return 2
    runs = [{**{k: r[k] for k in ("task", "seed", "order", "budget", "units", "unit_params", "whole_supernet_score", "run_dir")},
             "score": r["metrics"]["score"], "recorded": {m: scores.get((r["task"], m, r["seed"])) for m in COMPARED}}
            for r in records]
    payload = common.base_payload("placement_oracle", args, started)
    payload.update({"ablation": [str(path) for path in args.ablation], "scores_from": [str(s) for s in args.scores_from],
                    "runs": runs, "failures": failures})
    common.write_results(args.out, "placement_oracle", payload, markdown(payload))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
