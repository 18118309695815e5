"""Dev-set quality of PrunePEFT against equal-budget PEFT baselines (LoRA on q,v, LoRA on all
linears, AdaLoRA, adapter, DoRA) on SST-2, QNLI, RTE and the movie-sentiment set, with the
measured search/train cost, and the ablations of the paper: no pruning, random pruning, each
single criterion, and the hybrid without block partitions.

    python benchmarks/quality.py                       # all tasks, main methods, seeds 1 2 3
    python benchmarks/quality.py --ablations           # ... plus the ablations
    python benchmarks/quality.py --tasks rte --methods lora dora --seeds 1   # a piece
    python benchmarks/quality.py --report-only         # tabulate what the work dir holds

Every (task, method, seed) run has its own folder under --work-dir and is skipped when its
metrics.json exists, so the benchmark can be resumed or run in pieces.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

from scipy.stats import t as student_t
from scipy.stats import ttest_1samp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

TASKS = {  # the task's data name, train subset (stratified, a function of the seed; None = all) and max_length; dev sets are complete
    "sst2": {"data": "glue/sst2", "max_train_samples": 5000, "max_length": 64},
    "qnli": {"data": "glue/qnli", "max_train_samples": None, "max_length": 128},
    "rte": {"data": "glue/rte", "max_train_samples": None, "max_length": 128},
    "movie": {"data": "movie-sentiment", "max_train_samples": None, "max_length": 64},
    # issue 9's decoder evidence: SmolLM2-135M-Instruct learns SST-2 posed as prompt -> label word (a stated subset:
    # 512 training sentences, 200 dev sentences; exact match of the greedy answer)
    "sst2-llm": {"data": "glue/sst2", "model": "smollm2", "task_type": "causal-lm", "max_train_samples": 512,
                 "max_eval_samples": 200, "max_length": 64},
}
SMOKE_TASK = {"max_train_samples": 48, "max_length": 32}
# a tiny random model learns little: a higher learning rate and a lower "has learned" bar
SMOKE_EXTRA = ["train.per_device_train_batch_size=16", "search.warmup_samples=16", "train.learning_rate=1e-2",
               "train.head_learning_rate=1e-2", "search.learned_ratio=1.0"]
EPOCHS, SMOKE_EPOCHS = 3, 1

BASELINES = ["lora", "lora-all", "adalora", "adapter", "dora"]  # at the same budget (sizes derived from it)
PRUNEPEFT = ["prunepeft", "prunepeft-low"]
ABLATIONS = ["none", "random", "weight", "zeros", "threshold", "activation", "taylor", "gradient", "hybrid-global", "removal"]
OTHER = ["full", "parallel-adapter"]  # run only when asked for with --methods
MAIN = BASELINES + PRUNEPEFT
COST_TARGETS = {"prunepeft": 0.30, "prunepeft-low": 0.05}
LABELS = {
    "lora": "LoRA r=8 on q,v (the habit)", "lora-all": "LoRA on all linears, ranks filling the budget",
    "adalora": "AdaLoRA (peft), all linears, same final count", "dora": "DoRA on q,v (largest rank that fits)",
    "adapter": "Adapter (widest that fits)", "parallel-adapter": "Parallel adapter (widest that fits)",
    "prunepeft": "**PrunePEFT** (full fidelity)", "prunepeft-low": "PrunePEFT low fidelity",
    "none": "ablation: no pruning (whole supernet)", "random": "ablation: random pruning",
    "hybrid-global": "ablation: hybrid, no block partitions", "removal": "single criterion `removal` (loss change, across targets)", "full": "full fine-tuning",
}


def method_spec(method: str, budget: int) -> tuple[list[str], bool]:
    """(prunepeft overrides, is a search run) of one method."""
    if method in BASELINES + OTHER:
        return [f"method={method}", f"search.budget={budget}"], False
    search = [f"search.budget={budget}"]
    if method == "prunepeft":
        return search + ["search.strategy=hybrid", "search.fidelity=full"], True
    if method == "prunepeft-low":
        return search + ["search.strategy=hybrid", "search.fidelity=low"], True
    if method in ABLATIONS:
        return search + [f"search.strategy={method}", "search.fidelity=full"], True
    raise ValueError(f"unknown method {method!r}")


def task_settings(task: str, smoke: bool, max_train: int | None = None) -> dict:
    s = {**TASKS[task], **(SMOKE_TASK if smoke else {})}
    if max_train:
        s["max_train_samples"] = max_train
    s["epochs"] = SMOKE_EPOCHS if smoke else EPOCHS
    return s


def task_key(task: str, s: dict) -> str:
    return f"{task}-n{s['max_train_samples'] or 'all'}-len{s['max_length']}-ep{s['epochs']:g}"


def make_job(task: str, method: str, seed: int, *, settings: dict, model: str, data_dir: Path, work: Path,
             budget: int, extra: list[str], method_overrides=None, name: str | None = None) -> dict:
    overrides, search = method_overrides or method_spec(method, budget)
    base = [f"model={settings.get('model', model)}", f"data.task={settings['data']}", f"data.data_dir={data_dir}",
            f"data.max_train_samples={settings['max_train_samples']}", f"data.max_length={settings['max_length']}",
            f"train.num_train_epochs={settings['epochs']}", f"seed={seed}"]
    base += [f"data.{key}={settings[key]}" for key in ("task_type", "max_eval_samples") if key in settings]
    name = name or method
    return {"task": task, "method": name, "seed": seed, "search": search, "overrides": base + overrides + extra,
            "run_dir": work / task_key(task, settings) / name / f"seed{seed}"}


class BadImport(ValueError):
    """A --runs-from file that cannot be used."""


def imported_runs(paths: list[Path]) -> list[dict]:
    """Finished runs recorded in earlier quality.json files (their run folders may be gone: a benchmark
    machine's work dir does not outlive it), each marked with the file and the commit it reports."""
    runs = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            commit, recorded = payload["environment"]["git_commit"], payload["runs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadImport(f"--runs-from {path}: not a readable quality.json ({type(e).__name__}: {e}); "
                             "give a quality.json that benchmarks/quality.py wrote") from None
        # a run that file itself took from an earlier one keeps its first source
        runs += [{"imported_from": str(path), "imported_commit": commit, **r} for r in recorded]
    return runs


def _settings_key(job: dict) -> tuple:
    """What must match for an imported run to answer a job: task, method, seed and every override but
    the data folder's location."""
    return (job["task"], job["method"], job["seed"], tuple(o for o in job["overrides"] if not o.startswith("data.data_dir=")))


def answer_from_imports(jobs: list[dict], imported: list[dict]) -> tuple[list[dict], list[dict]]:
    """(imported records that answer a job whose run folder holds no finished run, the jobs left to run)."""
    by_key = {}
    for r in imported:
        key = _settings_key(r)
        if key in by_key and by_key[key]["metrics"]["score"] != r["metrics"]["score"]:
            raise BadImport(f"--runs-from: {by_key[key]['imported_from']} and {r['imported_from']} record "
                             f"{r['task']} {r['method']} seed {r['seed']} with different scores; give only one of them")
        by_key.setdefault(key, r)
    answered, left = [], []
    for job in jobs:
        found = by_key.get(_settings_key(job))
        if found is not None and not (Path(job["run_dir"]) / "metrics.json").is_file():
            answered.append(found)
        else:
            left.append(job)
    return answered, left


def summarise(records: list[dict], tasks, methods) -> dict:
    """summary[task][method] = score mean/std over seeds, params, seconds."""
    out = {}
    for task in tasks:
        out[task] = {}
        for method in methods:
            ms = [r["metrics"] for r in records if r["task"] == task and r["method"] == method]
            if not ms:
                continue
            mean, std = common.mean_std(m["score"] for m in ms)
            total = [m["train_seconds"] + m.get("search_seconds", 0.0) for m in ms]
            ratios = [m["search_train_ratio"] for m in ms if "search_train_ratio" in m]
            out[task][method] = {
                "search_train_ratio": common.mean_std(ratios)[0] if ratios else None,
                "metric": ms[0]["metric"], "n": len(ms), "seeds": [m.get("seed") for m in ms],
                "scores": [m["score"] for m in ms], "mean": mean, "std": std,
                "trainable_params": common.mean_std(m["trainable_params"] for m in ms)[0],
                "train_seconds": common.mean_std(m["train_seconds"] for m in ms)[0],
                "total_seconds": common.mean_std(total)[0],
            }
    return out


def verdicts(summary: dict, budgets: dict) -> dict:
    """Does PrunePEFT (each fidelity) beat the best equal-budget baseline, per task?"""
    out = {}
    for task, by_method in summary.items():
        base = {m: v for m, v in by_method.items() if m in BASELINES}
        if not base:
            continue
        best = max(base, key=lambda m: base[m]["mean"])
        out[task] = {"best_baseline": best, "best_baseline_mean": base[best]["mean"], "best_baseline_std": base[best]["std"]}
        for p in PRUNEPEFT:
            if p in by_method:
                v = by_method[p]
                out[task][p] = {"mean": v["mean"], "std": v["std"], "beats": v["mean"] >= base[best]["mean"],
                                "margin": v["mean"] - base[best]["mean"], "within_budget": v["trainable_params"] <= budgets[task],
                                "paired": paired(v, base[best])}
    return out


def paired(method: dict, baseline: dict) -> dict:
    """Per-seed differences over the seeds both ran (a seed draws the same training subset and order
    for every method, so pairing removes the noise they share) and a two-sided paired t-test."""
    theirs = dict(zip(baseline["seeds"], baseline["scores"]))
    diffs = [score - theirs[seed] for seed, score in zip(method["seeds"], method["scores"]) if seed in theirs]
    mean, std = common.mean_std(diffs) if diffs else (math.nan, math.nan)
    testable = len(diffs) >= 2 and std > 0
    p = float(ttest_1samp(diffs, 0.0).pvalue) if testable else math.nan
    # the smallest mean difference this spread and number of seeds would call clear (two-sided, p < 0.05)
    clear_margin = float(student_t.ppf(0.975, len(diffs) - 1) * std / math.sqrt(len(diffs))) if testable else math.nan
    return {"n": len(diffs), "diffs": diffs, "mean": mean, "std": std, "p": p, "clear_margin": clear_margin}


def _verdict_lines(verdict: dict) -> list[str]:
    b = verdict["best_baseline"]
    lines = []
    for p in PRUNEPEFT:
        if p not in verdict:
            continue
        v = verdict[p]
        noise = _paired_text(v["paired"])
        word = "is at or above" if v["beats"] else "is BELOW"
        lines.append(f"- {LABELS[p].replace('**', '')} {word} the best equal-budget baseline "
                     f"({LABELS[b]}, {common.pm(verdict['best_baseline_mean'], verdict['best_baseline_std'])}): "
                     f"{common.pm(v['mean'], v['std'])}, margin {v['margin'] * 100:+.2f} points{noise}"
                     + ("" if v["within_budget"] else " (PrunePEFT is OVER the budget!)") + ".\n")
    return lines


MAJORITY_MARGIN = 0.01  # a run within 1 point of always answering the dev set's most common class has learned nothing useful


def majority_share(data: str, data_dir) -> float | None:
    """Dev score of always answering the most common class (None for regression and causal LM tasks)."""
    from prunepeft.data.tasks import load_task

    task = load_task(data, str(data_dir))
    if task.is_regression or task.is_causal_lm:
        return None
    counts = Counter(row["label"] for row in task.dev)
    return max(counts.values()) / len(task.dev)


def target(summary: dict, verdict: dict, majority: dict, seeds: list) -> dict:
    """Issue 8's target over the tasks of one report: PrunePEFT's mean at or above the best baseline's
    on at least 3 of 4 tasks and on the average over tasks, and no PrunePEFT seed at the majority
    class where the habit learns; shown only when every method ran every seed on every task."""
    tasks = [t for t in summary if "prunepeft" in verdict.get(t, {})]
    complete = len(tasks) >= 4 and all(summary[t].get(m, {}).get("n", 0) >= len(seeds) for t in tasks for m in MAIN)
    at_or_above = [t for t in tasks if verdict[t]["prunepeft"]["beats"]]
    averages = {m: sum(summary[t][m]["mean"] for t in tasks) / len(tasks) for m in MAIN if tasks and all(m in summary[t] for t in tasks)}
    best_average = max((m for m in BASELINES if m in averages), key=averages.get, default=None)
    at_majority = {t: {m: [seed for seed, score in zip(summary[t][m]["seeds"], summary[t][m]["scores"])
                           if majority.get(t) is not None and score <= majority[t] + MAJORITY_MARGIN]
                       for m in ("lora", *PRUNEPEFT) if m in summary[t]} for t in tasks}
    learned_where_habit_did = all(seed in at_majority[t].get("lora", []) for t in tasks for seed in at_majority[t].get("prunepeft", []))
    average_ok = best_average is not None and "prunepeft" in averages and averages["prunepeft"] >= averages[best_average]
    return {"tasks": tasks, "complete": complete, "at_or_above": at_or_above, "averages": averages, "best_average": best_average,
            "majority": majority, "at_majority": at_majority,
            "shown": complete and len(at_or_above) >= 3 and average_ok and learned_where_habit_did}


def _target_markdown(tg: dict, summary: dict, verdict: dict) -> str:
    rows = []
    for t in tg["tasks"]:
        v, pair = verdict[t], verdict[t]["prunepeft"]["paired"]
        p_text = "—" if math.isnan(pair["p"]) else f"{pair['p']:.2f}"
        share = tg["majority"].get(t)
        rows.append([t, f"{LABELS[v['best_baseline']]} {common.pm(v['best_baseline_mean'], v['best_baseline_std'])}",
                     common.pm(v["prunepeft"]["mean"], v["prunepeft"]["std"]), f"{v['prunepeft']['margin'] * 100:+.2f}", p_text,
                     " / ".join(str(summary[t].get(m, {}).get("n", 0)) for m in MAIN),
                     "—" if share is None else f"{share * 100:.2f}",
                     ", ".join(f"{m} seed {s}" for m, seeds in tg["at_majority"][t].items() for s in seeds) or "none"])
    md = ["\n## Across tasks: issue 8's target\n\n",
          common.table(["task", "best baseline", "PrunePEFT", "margin (points)", "paired p", "seeds run (" + ", ".join(MAIN) + ")",
                        "majority class (%)", f"seeds within {MAJORITY_MARGIN * 100:g} point of it"], rows)]
    avg = tg["averages"]
    if tg["best_average"] and "prunepeft" in avg:
        md.append(f"\nAverage over the {len(tg['tasks'])} tasks of each method's mean (methods run on all of them, over the seeds in the "
                  f"table): PrunePEFT {avg['prunepeft'] * 100:.2f}, "
                  f"the best baseline on the average {LABELS[tg['best_average']]} {avg[tg['best_average']] * 100:.2f}; "
                  + ", ".join(f"{m} {a * 100:.2f}" for m, a in avg.items() if m not in ("prunepeft", tg["best_average"])) + ".\n")
    md.append(f"\nPrunePEFT is at or above the best baseline on {len(tg['at_or_above'])} of {len(tg['tasks'])} tasks"
              f" ({', '.join(tg['at_or_above']) or 'none'}). Target (at or above on at least 3 of 4 tasks and on the average, "
              "no PrunePEFT seed at the majority class where the habit learns, every method on every seed): "
              + ("**shown**." if tg["shown"] else "**not shown**" + ("" if tg["complete"] else " (the tables are incomplete)") + ".") + "\n")
    return "".join(md)


def _imports_markdown(runs: list[dict]) -> list[str]:
    sources = {}  # (file, commit) -> (task, method) -> seeds
    for r in runs:
        if "imported_from" in r:
            sources.setdefault((r["imported_from"], r["imported_commit"]), {}).setdefault((r["task"], r["method"]), []).append(str(r["seed"]))
    if not sources:
        return []
    return ["\nRuns tabulated from earlier results, not rerun here (same task, method, seed and settings; their run folders "
            "are not in the work dir):\n"] + [f"- `{path}` (reported at commit {commit[:7]}): "
                                             + "; ".join(f"{t} {m} seed {', '.join(seeds)}" for (t, m), seeds in by_run.items()) + "\n"
                                             for (path, commit), by_run in sources.items()]


def _paired_text(pair: dict) -> str:
    if pair["n"] < 2 or math.isnan(pair["p"]):
        return f"; {pair['n']} paired seed(s): no estimate of the noise, so not a clear difference"
    diffs = " / ".join(f"{d * 100:+.2f}" for d in pair["diffs"])
    clear = "a clear difference" if pair["p"] < 0.05 else "not a clear difference"
    return (f"; paired by seed {diffs} (mean {pair['mean'] * 100:+.2f} ± {pair['std'] * 100:.2f}), "
            f"paired t-test p = {pair['p']:.2f}: {clear} at p < 0.05 (which needs a mean beyond ±{pair['clear_margin'] * 100:.2f})")


def _space_text(extra: list[str]) -> str:
    def last(key):
        values = [o.split("=", 1)[1] for o in extra if o.startswith(f"{key}=")]
        return values[-1] if values else None

    space, floor = last("search.space"), last("search.floor")
    text = f"`{space}` (`--set`)" if space else "the default space (`prunepeft config`)"
    return text + (f" above the floor `{floor}` (`--set`), kept in every configuration" if floor else "")


def markdown(payload: dict) -> str:
    s = payload["settings"]
    md = [common.header("Quality: dev score of PrunePEFT vs equal-budget baselines", payload)]
    md.append(f"Model `{s['model']}`; unit budget {s['budget']:,} parameters (LoRA r=8 on query+value of every layer); "
              "every method runs at prunepeft's defaults (one learning rate for all, docs/method-notes.md) and sizes its "
              f"units from the budget. PrunePEFT searches {_space_text(s.get('extra_overrides', []))}. "
              "The classification head is trained in every method and not counted. "
              "Train sets are stratified subsets drawn with the run's seed (every method sees the same subset for a "
              "given seed), or all of it; dev sets are complete. Scores are percentages, mean ± sample std over seeds (n runs), "
              "with every seed's score; the best mean per task is bold. Seconds: final training (without the per-epoch dev "
              "evaluation); search/train is the measured ratio of seconds (targets: full fidelity <= 0.30, low <= 0.05 "
              "on data of realistic size). Below each table PrunePEFT is compared with the best baseline seed by seed "
              "(a seed draws the same training subset and order for every method); a difference is called clear only "
              "when a two-sided paired t-test over the seeds gives p < 0.05.\n")
    md += _imports_markdown(payload["runs"])
    if not any(payload["summary"].values()):
        md.append(f"\nNo finished runs in {s['work_dir']} yet.\n")
    for task in payload["tasks"]:
        ts = payload["task_settings"][task]
        rows_by = payload["summary"].get(task, {})
        if not rows_by:
            continue
        other_model = f"model {ts['model']} as {ts.get('task_type', 'classification')}, budget {s.get('budgets', {}).get(task, 0):,}; " if "model" in ts else ""
        dev = f", dev {ts['max_eval_samples']}" if ts.get("max_eval_samples") else ""
        md.append(f"\n## {ts['data']} ({other_model}{next(iter(rows_by.values()))['metric']}; train {ts['max_train_samples'] or 'all'}{dev}, "
                  f"max_length {ts['max_length']}, epochs {ts['epochs']:g})\n\n")
        best = max(v["mean"] for v in rows_by.values())
        rows = []
        for method, v in rows_by.items():
            label = LABELS.get(method, f"ablation: {method} criterion only")
            score = common.pm(v["mean"], v["std"])
            ratio = v.get("search_train_ratio")
            ratio_text = "—" if ratio is None else f"{ratio:.2f}" + (f" ({common.passfail(ratio, COST_TARGETS[method])})" if method in COST_TARGETS else "")
            rows.append([label, f"**{score}**" if v["mean"] == best else score, v["n"], " / ".join(f"{x * 100:.2f}" for x in v["scores"]),
                         f"{v['trainable_params']:,.0f}", common.secs(v["train_seconds"]), ratio_text])
        md.append(common.table(["method", "score", "n", "per seed", "trainable unit params", "train s", "search / train"], rows))
        if task in payload["verdicts"]:
            md.append("\n" + "".join(_verdict_lines(payload["verdicts"][task])))
    if "target" in payload:
        md.append(_target_markdown(payload["target"], payload["summary"], payload["verdicts"]))
    md += common.failures_markdown(payload["failures"])
    return "".join(md)


def main(argv=None) -> int:
    p = common.parser(__doc__.split("\n\n")[0])
    common.add_work_dir(p)
    p.add_argument("--tasks", nargs="+", default=None, choices=list(TASKS), help="default: the four classification tasks on MiniLM (--smoke: sst2 rte)")
    p.add_argument("--methods", nargs="+", default=None, choices=MAIN + ABLATIONS + OTHER,
                   help="default: the baselines and PrunePEFT (+ the ablations with --ablations)")
    p.add_argument("--ablations", action="store_true", help="add the ablation runs")
    p.add_argument("--max-train-samples", type=int, default=None, help="override the per-task train subset size")
    p.add_argument("--runs-from", nargs="+", type=Path, default=[], metavar="QUALITY_JSON",
                   help="earlier results' quality.json: a run recorded there with the same task, method, seed and "
                        "settings is tabulated, not rerun (the report names the file and its commit)")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds = args.seeds[:1]
    args.tasks = args.tasks or (["sst2", "rte"] if args.smoke else [t for t in TASKS if "model" not in TASKS[t]])
    common.set_threads(args.threads, args.smoke)
    started = time.perf_counter()
    methods = args.methods or (MAIN + (ABLATIONS if args.ablations else []))
    with common.workspace(args, args.tasks) as (model, data_dir, work):
        extra = (SMOKE_EXTRA if args.smoke else []) + args.extra
        settings = {t: task_settings(t, args.smoke, args.max_train_samples) for t in args.tasks}
        budgets = {t: common.unit_params(settings[t].get("model", model), "lora", 8) for t in args.tasks}
        budget = budgets[args.tasks[0]] if len(set(budgets.values())) == 1 else common.unit_params(model, "lora", 8)
        jobs = [make_job(t, m, seed, settings=settings[t], model=model, data_dir=data_dir, work=work, budget=budgets[t],
                         extra=extra)
                for seed in args.seeds for t in args.tasks for m in methods]
        order = {(j["task"], j["method"], j["seed"]): i for i, j in enumerate(jobs)}
        try:
            answered, jobs = answer_from_imports(jobs, imported_runs(args.runs_from))
        except BadImport as e:
            print(f"quality: {e}", file=sys.stderr)
            return 2
        records, failures = common.run_many(jobs, args.report_only)
        records = sorted(answered + records, key=lambda r: order[(r["task"], r["method"], r["seed"])])
    summary = summarise(records, args.tasks, methods)
    payload = common.base_payload("quality", args, started)
    payload.update({
        "settings": {"model": model, "budget": budget, "budgets": budgets, "extra_overrides": extra,
                     "work_dir": str(work), "report_only": args.report_only, "runs_from": [str(p) for p in args.runs_from]},
        "tasks": args.tasks, "methods": methods, "task_settings": settings,
        "summary": summary, "verdicts": verdicts(summary, budgets), "runs": records, "failures": failures,
    })
    if len(args.tasks) > 1:
        majority = {t: majority_share(settings[t]["data"], data_dir) for t in args.tasks}
        payload["target"] = target(summary, payload["verdicts"], majority, args.seeds)
    common.write_results(args.out, "quality", payload, markdown(payload))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
