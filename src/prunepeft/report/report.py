"""`write_report(run_dir)`: read whatever a run folder holds, draw the figures, write report.md.

A run folder may come from `run` (everything), `search` (no metrics/epochs) or `train`
(no trace/strategy/search). Each missing or unreadable file becomes a one-line note in the
report; only a folder with neither configuration.json nor metrics.json is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from prunepeft.errors import UserError
from prunepeft.io import atomic_write_bytes
from prunepeft.space.units import Unit

KEPT = "kept"
WHAT = {
    "configuration.json": "the final configuration",
    "metrics.json": "no final training/evaluation (a `search`-only folder?)",
    "search.json": "no search cost numbers (a `train`-only folder?)",
    "strategy.json": "no warm-up tendency matrix or hybrid strategy",
    "trace.jsonl": "no pruning rounds (a `train`-only folder, or strategy `none`)",
    "epochs.jsonl": "no per-epoch log of the final training",
}


@dataclass
class Run:
    path: Path
    configuration: dict | None = None
    metrics: dict | None = None
    search: dict | None = None
    strategy: dict | None = None
    trace: list[dict] | None = None
    epochs: list[dict] | None = None
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path, notes: list[str]) -> dict | None:
    if not path.is_file():
        notes.append(f"`{path.name}` is missing: {WHAT[path.name]}.")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        notes.append(f"`{path.name}` is unreadable ({e}); ignored.")
        return None
    if not isinstance(data, dict):
        notes.append(f"`{path.name}` is not a JSON object; ignored.")
        return None
    return data


def _read_jsonl(path: Path, notes: list[str]) -> list[dict] | None:
    if not path.is_file():
        notes.append(f"`{path.name}` is missing: {WHAT[path.name]}.")
        return None
    rows, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    if bad:
        notes.append(f"`{path.name}`: skipped {bad} unreadable line(s) (an interrupted write?).")
    return rows


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not ((run_dir / "configuration.json").is_file() or (run_dir / "metrics.json").is_file()):
        raise UserError(
            f"{run_dir} is not a prunepeft run folder (it needs configuration.json or metrics.json); "
            "pass the --output-dir of a `prunepeft run`, `search` or `train`"
        )
    run = Run(run_dir)
    n = run.notes
    run.configuration = _read_json(run_dir / "configuration.json", n)
    run.metrics = _read_json(run_dir / "metrics.json", n)
    run.search = _read_json(run_dir / "search.json", n)
    run.strategy = _read_json(run_dir / "strategy.json", n)
    run.trace = _read_jsonl(run_dir / "trace.jsonl", n)
    run.epochs = _read_jsonl(run_dir / "epochs.jsonl", n)
    if run.trace:
        run.trace.sort(key=lambda r: r.get("round", 0))
    try:  # the full settings `run`/`train` save; only used for the search strategy name
        run.settings = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        run.settings = {}
    return run


def _parse(name) -> Unit | None:
    try:
        return name if isinstance(name, Unit) else Unit.parse(str(name))
    except (ValueError, UserError):
        return None


def _units(names) -> list[Unit]:
    return sorted({u for u in map(_parse, names) if u is not None})


def kept_units(run: Run) -> list[Unit] | None:
    """The final configuration; without configuration.json, what the trace left alive."""
    if run.configuration is not None:
        out = []
        for d in run.configuration.get("units") or []:
            try:
                out.append(Unit.from_dict(d))
            except UserError:
                pass
        return sorted(set(out))
    if run.trace:
        last = run.trace[-1]
        return _units(set(last.get("alive", [])) - set(last.get("pruned", [])))
    return None


def structure_grid(kept, trace: list[dict] | None = None, num_layers: int | None = None) -> dict[str, list]:
    """unit key (family and target) -> one cell per layer: "kept", the round (int) the unit was pruned in, or None (never in the space).

    Families are sorted by (kind, size); `kept` are units or unit names.
    """
    kept = set(_units(kept))
    pruned: dict[Unit, int] = {}
    space = set(kept)
    for row in trace or []:
        space.update(_units(row.get("alive", [])))
        for u in _units(row.get("pruned", [])):
            pruned.setdefault(u, int(row.get("round", 0)))
    space.update(pruned)
    rows = sorted({(u.kind, u.size, u.target) for u in space})
    layers = num_layers or (max((u.layer for u in space), default=-1) + 1)
    grid = {}
    for kind, size, target in rows:
        cells = []
        for layer in range(layers):
            u = Unit(layer, kind, size, target)
            cells.append(KEPT if u in kept else pruned.get(u))
        grid[u.key] = cells
    return grid


# ---------------------------------------------------------------- markdown helpers

def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _int(v) -> str:
    return f"{int(v):,}" if isinstance(v, (int, float)) else "n/a"


def _num(v, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"


def _first(*values):
    return next((v for v in values if v is not None), None)


def _dev_metric(run: Run) -> str | None:
    metric = (run.metrics or {}).get("metric")
    for row in run.trace or []:
        dev = row.get("dev") or {}
        if metric in dev:
            return metric
        if dev:
            return next(iter(dev))
    return metric


def _strategy_name(run: Run) -> str:
    name = (run.configuration or {}).get("strategy")
    if name is None and (run.search is not None or run.trace is not None):
        search = run.settings.get("search")
        name = search.get("strategy") if isinstance(search, dict) else None
    return name or "n/a"


def _summary(run: Run, kept: list[Unit] | None) -> list[str]:
    m, s, c = run.metrics or {}, run.search or {}, run.configuration or {}
    last = (run.trace or [{}])[-1]
    budget = _first(c.get("budget"), s.get("budget"), last.get("budget"))
    trainable = _first(m.get("trainable_params"), s.get("trainable_params"), c.get("trainable_params"), last.get("trainable_params"))
    search_s = _first(m.get("search_seconds"), s.get("search_seconds"))
    train_s = _first(m.get("train_seconds"), m.get("seconds"))
    ratio = _first(m.get("search_train_ratio"), search_s / train_s if search_s is not None and train_s else None)
    pct = m.get("trainable_percent")
    params = _int(trainable)
    if pct is not None:
        params += f" ({pct:.3f}% of {_int(m.get('backbone_params'))} backbone params)"
    rows = [
        ["task", m.get("task", "n/a")],
        ["model", c.get("model", "n/a")],
        ["metric", m.get("metric", "n/a")],
        ["score", _num(m.get("score"))],
    ]
    rows += [[f"dev {k}", _num(v)] for k, v in (m.get("metrics") or {}).items() if k != m.get("metric")]
    rows += [
        ["budget (unit params)", _int(budget)],
        ["trainable unit params", params],
        ["head params (always trained, not in the budget)", _int(m.get("head_params"))],
        ["units in the final configuration", len(kept) if kept is not None else "n/a"],
        ["search space params", _int(s.get("space_params"))],
        ["search strategy", _strategy_name(run)],
        ["pruning rounds", _first(s.get("search_rounds"), len(run.trace) if run.trace is not None else None, "n/a")],
        ["search seconds (warm-up + rounds)", _num(search_s, 1) + (
            f" ({_num(s['warmup_seconds'], 1)} + {_num(s['rounds_seconds'], 1)})" if "warmup_seconds" in s and "rounds_seconds" in s else "")],
        ["final training seconds", _num(train_s, 1)],
        ["search / train time", _num(ratio, 3)],
        ["search epochs (examples seen / training set)", _num(_first(m.get("search_epochs"), s.get("search_epochs")), 3)],
    ]
    if budget and trainable is not None:
        rows.insert(6, ["budget used", f"{100 * trainable / budget:.1f}%"])
    retry = _first(m.get("search_rate_retry_scale"), s.get("search_rate_retry_scale"))
    if retry not in (None, 1.0):
        rows.append(["search learning rate", f"{retry:.3g} x search.learning_rate_scale: the shared turn stayed at the label prior "
                                             "at the full rate and was retried at this one"])
    ties = _first(m.get("warmup_tie_share"), s.get("warmup_tie_share"))
    if ties is not None:
        rows.append(["warm-up: share of partitions whose strategy is a tie", f"{100 * ties:.0f}%"])
    return _table(["quantity", "value"], rows) + _compare_section(run, m)


def _compare_section(run: Run, m: dict) -> list[str]:
    """`prunepeft run --compare METHOD...`: the baselines trained on the same data at the same budget."""
    folders = sorted(p for p in (run.path / "compare").glob("*") if (p / "metrics.json").is_file()) if (run.path / "compare").is_dir() else []
    if not folders or "score" not in m:
        return []
    import json

    baselines = {f.name: json.loads((f / "metrics.json").read_text()) for f in folders}
    rows = [["**PrunePEFT (this run)**", _num(m["score"]), _int(m.get("trainable_params")), _num(m.get("train_seconds"), 1),
             _num(m.get("search_seconds"), 1)]]
    rows += [[name, _num(b.get("score")), _int(b.get("trainable_params")), _num(b.get("train_seconds"), 1), "—"]
             for name, b in baselines.items()]
    best = max(baselines, key=lambda name: baselines[name].get("score", float("-inf")))
    best_score = baselines[best].get("score")
    verdict = ("above" if m["score"] > best_score else "equal to" if m["score"] == best_score else "BELOW") + f" the best baseline ({best})"
    return ["", "### Did the search pay off?", "",
            f"The same data, seed and budget; one run each, so differences of a point or less can be noise. PrunePEFT is {verdict}.", ""] + \
        _table(["method", f"dev {m.get('metric', 'score')}", "trainable unit params", "train seconds", "search seconds"], rows)


def _configuration_table(grid: dict[str, list]) -> list[str]:
    layers = max((len(r) for r in grid.values()), default=0)
    rows = [[fam] + ["✓" if c == KEPT else "·" for c in cells] for fam, cells in grid.items()]
    return ["Rows: unit kind-size:target; columns: layers (✓ kept, · not in the configuration).", ""] + \
        _table(["unit \\ layer"] + [str(i) for i in range(layers)], rows)


def _strategy_section(st: dict) -> list[str]:
    F, strategy = st.get("tendency") or {}, st.get("strategy") or {}
    rows = []
    for p in st.get("partitions") or sorted(strategy):
        chosen = strategy.get(p, [])
        tie = " (tie)" if len(chosen) > 1 else ""
        best = _first(*(F.get(c, {}).get(p) for c in chosen)) if chosen else None
        rows.append([p, ", ".join(chosen) + tie, _num(best, 3)])
    lines = _table(["partition", "criteria", "F"], rows)
    if st.get("reused_from"):
        lines.insert(0, f"Strategy reused from `{st['reused_from']}` (no warm-up in this run).\n")
    for criterion, units in (st.get("warmup_pruned") or {}).items():
        lines.append(f"- warm-up `{criterion}` pruned: {', '.join(units) or '—'}")
    if st.get("warmup_pruned"):
        lines.append("")
    lines += _saturation_note(strategy, len(st.get("criteria") or []))
    return lines


def _saturation_note(strategy: dict, num_criteria: int) -> list[str]:
    """Say when the warm-up did not separate the criteria: a tie of most criteria in most
    partitions makes the hybrid score an average of nearly every criterion."""
    if not strategy or num_criteria < 2:
        return []
    broad = [p for p, chosen in strategy.items() if len(chosen) > num_criteria // 2]
    if 2 * len(broad) <= len(strategy):
        return []
    return [f"Note: in {len(broad)} of {len(strategy)} partitions more than half of the criteria tie, so the warm-up "
            "hardly separates them (F saturates when every criterion prunes most of a small supernet). "
            "Fewer warm-up turns (`--set search.warmup_turns=1`) prune a smaller share under each criterion.", ""]


def _rounds_table(trace: list[dict], metric: str | None) -> list[str]:
    rows = []
    for r in trace:
        alive, pruned = r.get("alive", []), r.get("pruned", [])
        dev = (r.get("dev") or {}).get(metric) if metric else None
        rows.append([r.get("round", "?"), ", ".join(pruned) or "—", len(alive) - len(pruned),
                     _int(r.get("trainable_params")), _num(r.get("train_loss")), _num(dev), _num(r.get("seconds"), 1)])
    return _table(["round", "pruned units", "units left", "params after", "train loss", f"dev {metric or 'score'}", "seconds"], rows)


def _epochs_table(epochs: list[dict], metric: str | None) -> list[str]:
    rows = [[e.get("epoch", "?"), e.get("steps", "n/a"), _num(e.get("train_loss")),
             _num((e.get("dev") or {}).get(metric) if metric else None), _num(e.get("seconds"), 1)] for e in epochs]
    return _table(["epoch", "steps", "train loss", f"dev {metric or 'score'}", "seconds"], rows)


# ---------------------------------------------------------------- figures + report

def _figures(run: Run, grid: dict[str, list] | None, metric: str | None) -> dict[str, str]:
    """Write the PNGs that the data allows; returns {file name: why it was skipped or ''}."""
    from prunepeft.report import plots

    out = {}
    if grid and any(any(c is not None for c in row) for row in grid.values()):
        atomic_write_bytes(run.path / "structure.png", plots.structure_png(grid))
        out["structure.png"] = ""
    else:
        out["structure.png"] = "no units to draw (no configuration or an empty one, e.g. full fine-tuning)"
    st = run.strategy or {}
    criteria = st.get("criteria") or list(st.get("tendency") or {})
    partitions = st.get("partitions") or sorted({p for row in (st.get("tendency") or {}).values() for p in row})
    if criteria and partitions:
        atomic_write_bytes(run.path / "tendency.png", plots.tendency_png(st["tendency"], st.get("strategy") or {}, criteria, partitions))
        out["tendency.png"] = ""
    else:
        out["tendency.png"] = "no tendency matrix (strategy.json missing or empty)"
    if run.trace:
        rounds = [int(r.get("round", i + 1)) for i, r in enumerate(run.trace)]
        params = [r.get("trainable_params") for r in run.trace]
        dev = [(r.get("dev") or {}).get(metric) if metric else None for r in run.trace]
        space = (run.search or {}).get("space_params")
        if space is not None:
            rounds, params, dev = [0] + rounds, [space] + params, [None] + dev
        budget = _first((run.search or {}).get("budget"), run.trace[-1].get("budget"))
        atomic_write_bytes(run.path / "trace.png", plots.trace_png(rounds, params, budget, dev, metric or "score"))
        out["trace.png"] = ""
    else:
        out["trace.png"] = "no pruning rounds (trace.jsonl missing or empty)"
    return out


def _image(name: str, figures: dict[str, str], alt: str) -> list[str]:
    if figures.get(name):
        return [f"_No `{name}`: {figures[name]}._", ""]
    return [f"![{alt}]({name})", ""]


def write_report(run_dir: Path) -> Path:
    """Write structure.png, tendency.png, trace.png (when the data exists) and report.md into run_dir."""
    from prunepeft.output_folder import check_finished

    check_finished(Path(run_dir), "report")
    run = load_run(run_dir)
    if not os.access(run.path, os.W_OK):
        raise UserError(f"cannot write the report into {run.path}: the folder is not writable; copy the run folder somewhere writable")
    kept = kept_units(run)
    num_layers = (run.configuration or {}).get("num_layers")
    grid = structure_grid(kept, run.trace, num_layers) if kept is not None or run.trace else None
    metric = _dev_metric(run)
    figures = _figures(run, grid, metric)

    m = run.metrics or {}
    title = " — ".join(str(x) for x in (m.get("task"), (run.configuration or {}).get("model")) if x)
    md = [f"# PrunePEFT report{': ' + title if title else ''}", "", f"Run folder: `{run.path}`", ""]
    md += ["## Summary", ""] + _summary(run, kept)

    md += ["## Final configuration", ""]
    md += _image("structure.png", figures, "searched structure (paper Fig. 3)")
    if grid:
        md += _configuration_table(grid)
    else:
        md += ["_No configuration to show._", ""]

    md += ["## Hybrid strategy (warm-up, paper Fig. 1)", ""]
    md += _image("tendency.png", figures, "tendency matrix")
    if run.strategy and run.strategy.get("strategy"):
        md += _strategy_section(run.strategy)
    else:
        strategy = _strategy_name(run)
        md += [f"_No hybrid strategy{f' (search strategy: {strategy})' if strategy != 'n/a' else ''}._", ""]

    md += ["## Pruning rounds", ""]
    md += _image("trace.png", figures, "pruning trace")
    md += _rounds_table(run.trace, metric) if run.trace else ["_No pruning rounds recorded._", ""]

    md += ["## Final training", ""]
    md += _epochs_table(run.epochs, m.get("metric") or metric) if run.epochs else ["_No per-epoch log._", ""]

    if run.notes:
        md += ["## Missing pieces", ""] + [f"- {n}" for n in run.notes] + [""]
    path = run.path / "report.md"
    atomic_write_bytes(path, "\n".join(md).encode())
    return path
