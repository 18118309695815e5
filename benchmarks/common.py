"""Shared pieces of the benchmarks: command-line flags, the machine description, atomic result
files, the tiny smoke-mode model and data, running one prunepeft run (skipped when done), and
small statistics/Markdown helpers."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GLUE_DIR = Path(__file__).resolve().parents[2] / "shared/data/glue"
DEFAULT_OUT = BENCH_DIR / "results"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "prunepeft-bench"
DEFAULT_MODEL = "packaged:all-MiniLM-L6-v2"


# ---------------------------------------------------------------- command line

def parser(description: str, default_seeds=(1, 2, 3)) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny model and tiny data: a < 60 s check that the script works")
    p.add_argument("--seeds", type=int, nargs="+", default=list(default_seeds), help="seeds (smoke: the first one only)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for <name>.json and <name>.md")
    p.add_argument("--data-dir", type=Path, default=GLUE_DIR, help="GLUE data (<task>/train.jsonl.gz, validation.jsonl.gz)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice; 1 in --smoke and in speed.py)")
    return p


def add_work_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-dir", type=Path, default=None,
                   help=f"one folder per run; finished runs (metrics.json present) are skipped "
                        f"(default {DEFAULT_WORK}; in --smoke a temporary folder)")
    p.add_argument("--report-only", action="store_true", help="train nothing: tabulate the runs already in --work-dir")
    p.add_argument("--set", dest="extra", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="extra prunepeft config overrides for every run (see `prunepeft config`); repeat --set or give several")


def set_threads(n: int | None, smoke: bool = False) -> None:
    """--threads, else 1 thread in smoke mode (tiny models run fastest on one thread)."""
    n = n or (1 if smoke else None)
    if n:
        import torch

        torch.set_num_threads(n)


def command_line() -> str:
    return shlex.join(["python", *sys.argv])


# ---------------------------------------------------------------- environment and results

def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or no __version__
        return None


def _git_commit() -> str | None:
    try:  # read-only
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {m: _version(m) for m in ("torch", "transformers", "peft", "accelerate", "prunepeft")},
        "git_commit": _git_commit(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }


def header(title: str, payload: dict) -> str:
    env = payload["environment"]
    v = env["versions"]
    lines = [
        f"# {title}",
        "",
        f"- command: `{payload['command']}`",
        f"- date (UTC): {env['date_utc']}; wall time of this invocation: {payload.get('wall_seconds', 0):.0f} s",
        f"- machine: {env['platform']}, {env['cpu_count']} CPUs ({env['usable_cpus']} usable), "
        f"torch threads {env['torch_threads']}, load average at start {env['load_average']}",
        f"- versions: python {env['python']}, torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}, "
        f"accelerate {v['accelerate']}, prunepeft {v['prunepeft']} (commit {env['git_commit']})",
        f"- seeds: {payload.get('seeds')}" + ("  **(smoke mode: tiny model and data, numbers mean nothing)**" if payload.get("smoke") else ""),
        "",
    ]
    return "\n".join(lines) + "\n"  # a blank line: the text after it is not part of the list


def write_results(out: Path, name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """<out>/<name>.json and <name>.md, each written atomically (temp file + rename)."""
    from prunepeft.io import atomic_write_bytes

    out = Path(out)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    text = json.dumps(_finite(payload), indent=2, default=str, allow_nan=False)
    atomic_write_bytes(json_path, (text + "\n").encode())
    atomic_write_bytes(md_path, markdown.encode())
    print(f"wrote {json_path} and {md_path}")
    return json_path, md_path


def _finite(obj):
    """NaN/inf -> None, so the JSON is strict (a std of one seed is undefined, not NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def base_payload(name: str, args, started: float) -> dict:
    return {"benchmark": name, "smoke": bool(args.smoke), "command": command_line(), "seeds": list(args.seeds),
            "environment": environment(), "wall_seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- tiny model and data (smoke mode)

def minilm_dir() -> Path:
    from prunepeft.supernet.loading import packaged_minilm_path

    return packaged_minilm_path()


def make_tiny_model(path: Path) -> Path:
    """A random BERT (hidden 32, 2 layers, vocab 30522) saved with the packaged MiniLM tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        vocab_size=30522, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(path)
    return path


def make_tiny_glue(src: Path, dst: Path, tasks=("sst2", "rte"), n_train: int = 64, n_dev: int = 32) -> Path:
    """The first rows of each task's real GLUE files, in the same layout."""
    for task in tasks:
        for split, n in (("train", n_train), ("validation", n_dev)):
            target = Path(dst) / task / f"{split}.jsonl.gz"
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(Path(src) / task / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
                lines = [line for _, line in zip(range(n), f)]
            with gzip.open(target, "wt", encoding="utf-8") as f:
                f.writelines(lines)
    return Path(dst)


@contextlib.contextmanager
def workspace(args, tasks=("sst2", "rte")):
    """(model, data_dir, work_dir) for this invocation. --smoke builds the tiny model and data in a
    temporary folder (removed afterwards unless --work-dir was given)."""
    work = getattr(args, "work_dir", None)
    if not args.smoke:
        yield DEFAULT_MODEL, Path(args.data_dir), Path(work or DEFAULT_WORK)
        return
    temp = None
    if work is None:
        work = temp = Path(tempfile.mkdtemp(prefix="prunepeft-smoke-"))
    work = Path(work)
    try:
        model = make_tiny_model(work / "tiny-bert")
        data = make_tiny_glue(args.data_dir, work / "tiny-glue", tasks)
        yield str(model), data, work
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------- budgets

def unit_params(model: str, kind: str, size: int) -> int:
    """Trainable parameters of `kind`-`size` units in every layer of `model` (prunepeft's own count)."""
    from prunepeft.space.units import Unit
    from prunepeft.supernet.arch import inspect_model
    from prunepeft.supernet.loading import load_classifier, resolve_model_path
    from prunepeft.supernet.supernet import Supernet

    m = load_classifier(resolve_model_path(model), 2, False)
    sn = Supernet(m, inspect_model(m))
    return sum(sn.param_count(Unit(layer, kind, size)) for layer in range(sn.arch.num_layers))


# ---------------------------------------------------------------- one run

class SettingsMismatch(RuntimeError):
    pass


def _comparable(config: dict, defaults: dict | None = None) -> dict:
    """A run's settings minus where things live (the output folder, the GLUE folder's path). A key
    the run's config.json lacks (added to prunepeft after the run) counts as its default."""
    config = json.loads(json.dumps(config, default=str))
    for key, value in (defaults or {}).items():
        if isinstance(value, dict):
            config[key] = {**value, **config.get(key, {})}
        else:
            config.setdefault(key, value)
    config.pop("output_dir", None)
    config.get("data", {}).pop("data_dir", None)
    search = config.get("search", {})
    if search.get("warmup_turns") is None:  # the fidelity's default; runs from before that rule stored 2
        from prunepeft.config import SearchConfig

        search["warmup_turns"] = SearchConfig(fidelity=search.get("fidelity", "full")).turns()
    return config


def run_once(run_dir: Path, overrides: list[str], *, search: bool, report_only: bool = False) -> dict | None:
    """Train (`search=False`: prunepeft train) or search + retrain (`search=True`: prunepeft run)
    one configuration in `run_dir`. A run whose metrics.json exists is not repeated; its settings
    must equal the requested ones. An interrupted search resumes from its checkpoint.
    Returns the metrics, or None when `report_only` and the run is missing."""
    from prunepeft.commands import run_command, train_command
    from prunepeft.config import RunConfig, apply_overrides, to_dict

    run_dir = Path(run_dir)
    cfg = RunConfig()
    apply_overrides(cfg, [*overrides, f"output_dir={run_dir}"])
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        saved = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else None
        defaults = json.loads(json.dumps(to_dict(RunConfig()), default=str))
        if saved is not None and _comparable(saved, defaults) != _comparable(to_dict(cfg)):
            raise SettingsMismatch(f"{run_dir} holds a finished run with other settings; delete it or use another --work-dir")
        metrics = json.loads(metrics_path.read_text())
        if search and "search_train_ratio" not in metrics and metrics.get("train_seconds"):
            metrics["search_train_ratio"] = metrics["search_seconds"] / metrics["train_seconds"]
        print(f"skip (done): {run_dir}")
        return metrics
    if report_only:
        return None
    print(f"run: {run_dir}  [{' '.join(overrides)}]", flush=True)
    if search:
        return run_command(cfg, resume=(run_dir / "search_state.json").is_file())
    return train_command(cfg)


def run_many(jobs: list[dict], report_only: bool) -> tuple[list[dict], list[dict]]:
    """Run each job {"run_dir", "overrides", "search", ...}; a failing run is recorded and skipped.
    Returns (records with metrics, failures)."""
    records, failures = [], []
    for job in jobs:
        try:
            metrics = run_once(job["run_dir"], job["overrides"], search=job["search"], report_only=report_only)
        except Exception as e:  # keep going: one broken run must not lose hours of others
            traceback.print_exc()
            failures.append({**_public(job), "error": f"{type(e).__name__}: {e}"})
            continue
        if metrics is not None:
            records.append({**_public(job), "metrics": metrics})
    return records, failures


def _public(job: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in job.items()}


# ---------------------------------------------------------------- statistics and Markdown

def mean_std(values) -> tuple[float, float]:
    values = [float(v) for v in values if v is not None]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def pm(mean: float, std: float, digits: int = 2, scale: float = 100.0) -> str:
    """'81.23 ± 0.45' (scores as percentages); '—' for no value."""
    if mean is None or math.isnan(mean):
        return "—"
    s = f"{mean * scale:.{digits}f}"
    return s if std is None or math.isnan(std) else f"{s} ± {std * scale:.{digits}f}"


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def secs(x: float) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.1f}" if x < 10 else f"{x:,.0f}"


def passfail(value: float, target: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "PASS" if value <= target else "MISS"


def failures_markdown(failures: list[dict]) -> list[str]:
    """The "Failed runs" section of a results file (empty when every run finished)."""
    if not failures:
        return []
    return ["\n## Failed runs\n\n"] + [f"- {f['task']} / {f['method']} / seed {f['seed']}: {f['error']}\n" for f in failures]
