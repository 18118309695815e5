"""Parse a parameter budget: a count ("73728", "74k", "1.2M") or a percent of the backbone ("0.3%")."""

from __future__ import annotations

import re

from prunepeft.errors import UserError

_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_budget(text, backbone_params: int) -> int:
    s = str(text).strip().lower().replace(",", "").replace("_", "")
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(%|k|m|b)?", s)
    if not m:
        raise UserError(f"--budget {text!r} is not a parameter count (73728, 74k, 1.2M) or a percent of the backbone (0.3%)")
    value, suffix = float(m.group(1)), m.group(2) or ""
    if suffix == "%":
        return int(value / 100.0 * backbone_params)
    return int(round(value * _SUFFIX[suffix]))


def check_budget(budget: int, unit_sizes: list[int], text) -> None:
    smallest, total = min(unit_sizes), sum(unit_sizes)
    if budget < smallest:
        raise UserError(f"--budget {text} = {budget:,} params is below the smallest unit ({smallest:,}); "
                        "no unit fits. Raise the budget or add smaller sizes to --space")
    if budget >= total:
        raise UserError(f"--budget {text} = {budget:,} params is not below the whole supernet ({total:,}); "
                        "nothing would be pruned. Lower the budget or widen --space (or use --strategy none)")
