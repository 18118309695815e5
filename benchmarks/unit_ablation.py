"""Do the search's criteria see which units matter? Writes unit_ablation.json/.md.

For each task and seed it takes the whole supernet trained without pruning (quality.py method `none`:
every unit of the space, trained as a final training is) and measures each unit's importance as the
rise of the dev loss when that unit alone is removed (Molchanov et al. 2019 measure it the same way,
and approximate it to first order). It compares that importance with:

- the prunability each criterion gave the units at the search's first round (method `prunepeft`, same
  task and seed: round 1 of its trace.jsonl, peer-relative as the search ranks it), and the hybrid's
  pruning probability there;
- the units the search kept in the end (its configuration.json), against the importance-ordered units.

A seed without that search gets the importance alone (benchmarks/placement_oracle.py reads it).

The dev set measures the importance here, so this is an analysis of the criteria, not a way to choose
units. Trains nothing; each unit costs one pass over the dev set.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import common
from quality import TASKS, task_key, task_settings
from score_stability import _spearman


def dev_loss(model, loader) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a classifier over a dev loader."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            labels = batch.pop("labels")
            logits = model(**batch).logits.float()
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(-1) == labels).sum().item()
            n += len(labels)
    return total / n, correct / n


def unit_importance(run_dir: Path, progress=print) -> dict:
    """The dev loss and accuracy of a trained run with all its units, and each unit's rise of the loss
    (and fall of the accuracy) when it alone is removed."""
    from prunepeft.run_folder import load_trained, read_run
    from prunepeft.session import open_session

    cfg, _, units = read_run(run_dir)
    supernet, _, _, _ = load_trained(run_dir)
    session = open_session(cfg)
    loader = session.loader(session.dev_encoded, train=False)
    base_loss, base_acc = dev_loss(supernet.model, loader)
    trained = supernet.unit_state_dict()
    rise = {}
    for i, unit in enumerate(units, 1):
        supernet.remove(unit)
        loss, acc = dev_loss(supernet.model, loader)
        supernet.add(unit)
        supernet.load_unit_state_dict(trained)
        rise[unit.name] = {"loss_rise": loss - base_loss, "accuracy_drop": base_acc - acc}
        progress(f"  {i}/{len(units)} {unit.name}: dev loss {loss - base_loss:+.4f}, accuracy {acc - base_acc:+.4f}")
    if abs(dev_loss(supernet.model, loader)[0] - base_loss) > 1e-6 * max(1.0, base_loss):
        raise RuntimeError(f"{run_dir}: the supernet did not come back to its trained state after the removals")
    return {"dev_loss": base_loss, "dev_accuracy": base_acc, "units": rise}


def criteria_against_importance(search_dir: Path, importance: dict[str, float]) -> dict:
    """Rank correlation of each round-1 ranking (as a keep order: the least prunable first) with the
    importance, over the units both hold; +1 = the criterion would prune the least important first."""
    from prunepeft.criteria.fair import oriented
    from prunepeft.space.units import Unit

    first = json.loads((search_dir / "trace.jsonl").read_text().splitlines()[0])
    out = {}
    for criterion, raw in sorted(first["scores"].items()):
        prunability = {u.name: v for u, v in oriented(criterion, {Unit.parse(n): v for n, v in raw.items()}, fair=True).items()}
        names = sorted(set(prunability) & set(importance))
        out[criterion] = _spearman([-prunability[n] for n in names], [importance[n] for n in names])
    names = sorted(set(first["hybrid"]) & set(importance))
    out["hybrid (pruning probability)"] = _spearman([-first["hybrid"][n] for n in names], [importance[n] for n in names])
    return out


def kept_against_importance(search_dir: Path, importance: dict[str, float]) -> dict:
    """Where the search's kept units stand in the importance order: their mean percentile (1 = the most
    important unit, 0.5 = what a random choice averages) and the share of the most important units of
    the same count that they are."""
    from prunepeft.space.units import load_configuration

    kept = {u.name for u in load_configuration(search_dir / "configuration.json")} & set(importance)
    order = sorted(importance, key=importance.get, reverse=True)
    percentile = {n: 1 - i / (len(order) - 1) for i, n in enumerate(order)} if len(order) > 1 else {n: 1.0 for n in order}
    top = set(order[:len(kept)])
    return {"kept": sorted(kept), "mean_percentile": statistics.mean(percentile[n] for n in kept) if kept else None,
            "share_of_top": len(kept & top) / len(kept) if kept else None, "chance_share_of_top": len(kept) / len(order) if order else None}


def against_search(search: Path, measured: dict) -> dict:
    """The search of the same seed against the importance; empty values when that search did not run
    (the importance alone still serves benchmarks/placement_oracle.py)."""
    if not ((search / "trace.jsonl").is_file() and (search / "metrics.json").is_file()):
        return {"search_run": None, "search_score": None, "criteria": {}, "kept": {"kept": [], "mean_percentile": None,
                                                                                   "share_of_top": None, "chance_share_of_top": None}}
    importance = {n: r["loss_rise"] for n, r in measured["units"].items()}
    return {"search_run": str(search), "search_score": json.loads((search / "metrics.json").read_text()).get("score"),
            "criteria": criteria_against_importance(search, importance), "kept": kept_against_importance(search, importance)}


def analyse(work: Path, tasks, seeds, smoke: bool, progress=print) -> dict:
    out = {}
    for task in tasks:
        key = task_key(task, task_settings(task, smoke))
        runs = {}
        for seed in seeds:
            trained, search = work / key / "none" / f"seed{seed}", work / key / "prunepeft" / f"seed{seed}"
            if not (trained / "metrics.json").is_file():
                continue
            progress(f"{task} seed {seed}: removing each unit of {trained}")
            measured = unit_importance(trained, progress)
            runs[f"seed{seed}"] = {**measured, "trained_run": str(trained), **against_search(search, measured)}
        if runs:
            out[task] = {"work_key": key, "runs": runs}
    return out


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(payload: dict) -> str:
    md = [common.header("Unit importance by removal against the search's criteria", payload)]
    md.append("\nImportance of a unit: the rise of the dev loss when it alone is removed from the whole supernet trained "
              "without pruning (method `none`). Correlations are Spearman's over the units, between a round-1 ranking "
              "read as a keep order and the importance: +1 = it would prune the least important units first, 0 = no "
              "better than a random order.\n")
    for task, t in payload["tasks"].items():
        seeds = list(t["runs"])
        md.append(f"\n## {task} ({t['work_key']})\n\n| | " + " | ".join(seeds) + " |\n|---|" + "---|" * len(seeds) + "\n")
        md.append("| dev loss / accuracy, all units | " + " | ".join(f"{r['dev_loss']:.4f} / {100 * r['dev_accuracy']:.2f}"
                                                          for r in t["runs"].values()) + " |\n")
        criteria = sorted({c for r in t["runs"].values() for c in r["criteria"]})
        md += [f"| {c} | " + " | ".join(_fmt(r["criteria"].get(c)) for r in t["runs"].values()) + " |\n" for c in criteria]
        md.append("| the search's kept units: mean importance percentile (chance 0.50) | "
                  + " | ".join(_fmt(r["kept"]["mean_percentile"]) for r in t["runs"].values()) + " |\n")
        md.append("| the search's kept units: share among as many most important (chance in brackets) | "
                  + " | ".join(f"{_fmt(r['kept']['share_of_top'])} ({_fmt(r['kept']['chance_share_of_top'])})" for r in t["runs"].values()) + " |\n")
        md.append("| the search's dev score (%) | " + " | ".join(_fmt(100 * r["search_score"]) if r["search_score"] is not None else "-"
                                                         for r in t["runs"].values()) + " |\n")
        for seed, r in t["runs"].items():
            ranked = sorted(r["units"].items(), key=lambda kv: kv[1]["loss_rise"], reverse=True)
            md.append(f"\n{seed}, units by importance (dev loss rise): " + ", ".join(
                f"{n}{'*' if n in r['kept']['kept'] else ''} {v['loss_rise']:+.4f}" for n, v in ranked) + " (* kept by the search)\n")
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--work-dir", type=Path, required=True, help="the quality.py work dir holding `none` runs (and `prunepeft` runs of the same seeds)")
    p.add_argument("--tasks", nargs="+", default=["sst2"], choices=list(TASKS))
    args = p.parse_args(argv)
    common.set_threads(args.threads, args.smoke)
    started = time.perf_counter()
    tasks = analyse(args.work_dir, args.tasks, args.seeds, args.smoke)
    if not tasks:
        print(f"unit_ablation: no seed of {args.tasks} with a finished `none` run in {args.work_dir}; "
              "run benchmarks/quality.py --methods none (and prunepeft, for the criteria) with that --work-dir first", file=sys.stderr)
        return 2
    payload = common.base_payload("unit_ablation", args, started)
    payload.update({"work_dir": str(args.work_dir), "tasks": tasks})
    common.write_results(args.out, "unit_ablation", payload, markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
