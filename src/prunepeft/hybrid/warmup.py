"""Warm-up math (method.md §5 steps 2-3): the tendency matrix F and the hybrid strategy S_H.

The warm-up loop itself (train on the compact subset, score, prune) lives in `search`; this
module only turns its outcome -- which units each criterion pruned -- into F and S_H, and
saves/loads them as `strategy.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from prunepeft.criteria.scores import CRITERIA, HYBRID_CRITERIA, get_criterion
from prunepeft.errors import UserError
from prunepeft.io import write_json
from prunepeft.space.units import Unit

STRATEGY_FILE = "strategy.json"
_RESERVED = ("tendency", "strategy", "criteria", "partitions")
# a warm-up strategy combines the paper's six; another criterion (removal) has no warm-up statistics
_HYBRID_ONLY = (f"a hybrid strategy combines {', '.join(HYBRID_CRITERIA)}; a criterion outside them, such as "
                "removal, runs alone with --strategy NAME")


def _criteria_in_order(names) -> list[str]:
    """Known criteria in CRITERIA order (UserError for an unknown name)."""
    names = set(names)
    for n in names:
        get_criterion(n)
    return [c for c in CRITERIA if c in names]


def tendency_matrix(
    pruned_by_criterion: dict[str, list[Unit]],
    partition: Callable[[Unit], str],
    partition_sizes: dict[str, int],
) -> dict[str, dict[str, float]]:
    """F[s][P] = (# units of P pruned by s over its warm-up turns) / (# units of P in the full supernet).

    Rows are the criteria that were run (the keys of `pruned_by_criterion`, in CRITERIA order;
    criteria not run are absent rather than 0, so they cannot win a tie); columns are all
    partitions of `partition_sizes` (sorted), 0.0 where s pruned nothing there. Each warm-up
    run starts once from the full supernet, so a unit can be pruned at most once per
    criterion: a duplicate, a unit of an unknown partition, or a partition size < 1 is a
    ValueError. Hence 0 <= F <= 1.
    """
    labels = sorted(partition_sizes)
    for label in labels:
        if int(partition_sizes[label]) < 1:
            raise ValueError(f"partition {label!r} has size {partition_sizes[label]}; sizes must be >= 1")
    F: dict[str, dict[str, float]] = {}
    for s in _criteria_in_order(pruned_by_criterion):
        units = list(pruned_by_criterion[s])
        if len(set(units)) != len(units):
            dup = sorted({u.name for u in units if units.count(u) > 1})
            raise ValueError(f"criterion {s!r} pruned the same unit more than once: {', '.join(dup)}")
        counts = dict.fromkeys(labels, 0)
        for u in units:
            label = partition(u)
            if label not in counts:
                raise ValueError(
                    f"unit {u.name} pruned by {s!r} is in partition {label!r}, which is not among "
                    f"the supernet's partitions ({', '.join(labels)})"
                )
            counts[label] += 1
        F[s] = {label: counts[label] / int(partition_sizes[label]) for label in labels}
    return F


def assign_strategy(F: dict[str, dict[str, float]], tiebreak: dict[str, dict[str, float]] | None = None) -> dict[str, list[str]]:
    """For each partition P, the criteria with the highest F[s][P] (method.md §5 step 3).

    Ties keep every tied criterion, in CRITERIA order (exact equality: within one partition
    all entries share the denominator, so equal counts give equal floats). With `tiebreak`
    (the mean prunability percentile of P's units under s, see `search/warmup_run.py`), a tie
    in F keeps only the tied criteria with the highest tiebreak[s][P]: the criterion that leaned
    most towards pruning P. If no criterion pruned anything in P (all F[s][P] = 0) and there is
    no tiebreak, all criteria tie and P keeps every criterion that was run.
    """
    crits = _criteria_in_order(F)
    if not crits:
        raise ValueError("the tendency matrix has no criteria")
    labels = sorted({label for s in crits for label in F[s]})
    strategy: dict[str, list[str]] = {}
    for label in labels:
        values = {s: float(F[s].get(label, 0.0)) for s in crits}
        best = max(values.values())
        tied = [s for s in crits if values[s] == best]
        if tiebreak and len(tied) > 1:
            second = {s: float(tiebreak.get(s, {}).get(label, float("-inf"))) for s in tied}
            top = max(second.values())
            tied = [s for s in tied if second[s] == top]
        strategy[label] = tied
    return strategy


def save_strategy(path: str | Path, F: dict[str, dict[str, float]], strategy: dict[str, list[str]], meta: dict | None = None) -> Path:
    """Write `strategy.json`: {"tendency", "strategy", "criteria", "partitions", **meta}.

    `path` may be a file or an existing directory (then `strategy.json` inside it). Returns
    the file written.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STRATEGY_FILE
    meta = dict(meta or {})
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"meta must not use the reserved keys {', '.join(clash)}")
    criteria = _criteria_in_order(F)
    partitions = sorted({label for s in F for label in F[s]} | set(strategy))
    payload = {
        "tendency": {s: {label: float(F[s][label]) for label in sorted(F[s])} for s in criteria},
        "strategy": {label: list(strategy[label]) for label in sorted(strategy)},
        "criteria": criteria,
        "partitions": partitions,
        **meta,
    }
    write_json(path, payload)
    return path


def load_strategy(path: str | Path) -> tuple[dict[str, dict[str, float]], dict[str, list[str]], dict]:
    """Read a `strategy.json` (or a directory holding one) -> (F, strategy, meta).

    meta is every key other than tendency/strategy/criteria/partitions. Raises UserError
    when the file is missing or is not a valid strategy file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STRATEGY_FILE
    if not path.is_file():
        raise UserError(
            f"strategy file {path} does not exist; pass the strategy.json written by a "
            "search's warm-up (or its run directory), or run the warm-up again"
        )

    def bad(why: str) -> UserError:
        return UserError(
            f"{path} is not a valid prunepeft strategy file: {why}; pass the strategy.json "
            "written by a search's warm-up, or delete it and run the warm-up again"
        )

    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"invalid JSON ({e})") from None
    if not isinstance(payload, dict):
        raise bad("the top level is not a JSON object")
    for key in ("tendency", "strategy"):
        if not isinstance(payload.get(key), dict):
            raise bad(f"it has no {key!r} object")

    F: dict[str, dict[str, float]] = {}
    for s, row in payload["tendency"].items():
        if s not in HYBRID_CRITERIA:
            raise bad(f"the tendency matrix names an unknown criterion {s!r} ({_HYBRID_ONLY})")
        if not isinstance(row, dict):
            raise bad(f"tendency row {s!r} is not an object of partition -> number")
        F[s] = {}
        for label, v in row.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(f"tendency[{s!r}][{label!r}] = {v!r} is not a finite number")
            F[s][label] = float(v)

    strategy: dict[str, list[str]] = {}
    for label, crits in payload["strategy"].items():
        if not isinstance(crits, list) or not crits or not all(isinstance(c, str) for c in crits):
            raise bad(f"strategy[{label!r}] is not a non-empty list of criterion names")
        unknown = [c for c in crits if c not in HYBRID_CRITERIA]
        if unknown:
            raise bad(f"strategy[{label!r}] names unknown criteria {unknown} ({_HYBRID_ONLY})")
        strategy[label] = list(crits)
    if not strategy:
        raise bad("its 'strategy' object is empty")

    meta = {k: v for k, v in payload.items() if k not in _RESERVED}
    return F, strategy, meta


def check_strategy_covers(strategy: dict[str, list[str]], labels, source: str = "the strategy") -> None:
    """UserError if some partition label has no strategy entry (e.g. a strategy reused from
    another model, paper Table 6, whose partitions differ)."""
    missing = sorted(set(labels) - set(strategy))
    if missing:
        raise UserError(
            f"{source} has no criteria for partitions {', '.join(missing)} (it covers "
            f"{', '.join(sorted(strategy))}); reuse a strategy made for the same unit kinds, "
            "sizes and block partitioning, or run the warm-up for this search"
        )
