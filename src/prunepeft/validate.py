"""One check of the whole configuration, after the file and the overrides are applied and before
anything is loaded or written: every value's type, range and choices, and the keys inside dicts.
Checks that need the model or the data (max_length against the model's positions, labels) run
when those are opened (session.py, data/tasks.py)."""

from __future__ import annotations

import dataclasses
import logging
import math

from prunepeft.errors import UserError

log = logging.getLogger("prunepeft")

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "dict": (dict,)}


def _flag_of() -> dict:
    from prunepeft.cli import COMMON_FLAGS, SEARCH_FLAGS, TRAIN_FLAGS

    return {key: flag for flags in (COMMON_FLAGS, TRAIN_FLAGS, SEARCH_FLAGS) for flag, key in flags.items()} | {"compare": "--compare"}


def _name(key: str) -> str:
    """How the user set it: the flag when there is one."""
    flag = _flag_of().get(key)
    return f"{flag} (config key {key})" if flag else f"config key {key}"


def _check_types(section, prefix: str = "") -> None:
    """Each value has its field's declared type (YAML files can hold anything)."""
    for f in dataclasses.fields(section):
        value, key = getattr(section, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            _check_types(value, key + ".")
            continue
        type_name = str(f.type)
        base = type_name.replace(" | None", "").strip()
        if value is None and base != type_name:
            continue
        allowed = _TYPES.get(base)
        if allowed and (not isinstance(value, allowed) or isinstance(value, bool) and base != "bool"):
            raise UserError(f"{_name(key)} must be {'an' if base == 'int' else 'a'} {base}, got {value!r}")


def _number(key: str, value, *, low: float, high: float = math.inf, low_open: bool = True, high_open: bool = False) -> None:
    """value is finite and inside (low, high] (or the bounds as given); None passes (optional fields)."""
    if value is None:
        return
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        if high == math.inf:
            bound = f"{'>' if low_open else '>='} {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise UserError(f"{_name(key)} must be a finite number {bound}, got {value!r}")


def _choice(key: str, value, choices) -> None:
    if value is not None and value not in choices:
        raise UserError(f"unknown {_name(key)} {value!r}; choose one of {', '.join(map(str, choices))}")


def _positive_int(key: str, value) -> None:
    if value is not None and value < 1:
        raise UserError(f"{_name(key)} must be a positive whole number (>= 1), got {value!r}")


def _check_train(t) -> None:
    from prunepeft.modules.kinds import KINDS

    for key in ("learning_rate", "head_learning_rate", "full_learning_rate"):
        _number(f"train.{key}", getattr(t, key), low=0)
        if getattr(t, key) > 1:
            log.warning("train.%s=%g is far above the rates PEFT training uses (1e-5 to 1e-2); expect divergence", key, getattr(t, key))
    for kind, rate in t.kind_learning_rates.items():
        if kind not in KINDS:
            raise UserError(f"train.kind_learning_rates names the unknown unit kind {kind!r}; the kinds are {', '.join(KINDS)}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise UserError(f"train.kind_learning_rates[{kind}] must be a number, got {rate!r} (write e.g. {{{kind}: 5e-4}})")
        _number(f"train.kind_learning_rates[{kind}]", rate, low=0)
    _number("train.weight_decay", t.weight_decay, low=0, low_open=False)
    _number("train.warmup_ratio", t.warmup_ratio, low=0, high=1, low_open=False, high_open=True)
    _number("train.num_train_epochs", t.num_train_epochs, low=0)
    _positive_int("train.per_device_train_batch_size", t.per_device_train_batch_size)
    _positive_int("train.per_device_eval_batch_size", t.per_device_eval_batch_size)
    _number("train.max_grad_norm", t.max_grad_norm, low=0)


def _check_search(s) -> None:
    from prunepeft.hybrid.warmup import load_strategy
    from prunepeft.search.budget import parse_budget
    from prunepeft.search.loop import STRATEGIES
    from prunepeft.space.units import Unit, parse_space

    space = parse_space(s.space)
    if s.floor:
        both = sorted(Unit(0, *item).key for item in set(parse_space(s.floor, '--floor')) & set(space))
        if both:
            raise UserError(f"--floor and --space both name {', '.join(both)}; a unit is either kept always (floor) or searched "
                            "(space): remove it from one, or give the floor another size (e.g. lora-1 under a lora-4 space)")
    parse_budget(s.budget, 1)  # the format only; the size is checked against the model later
    if s.strategy_from:  # its file, before the shared turn trains; its partitions are checked against the model later
        load_strategy(s.strategy_from)
    _number("search.search_cost", s.search_cost, low=0, high=100)
    _number("search.low_fidelity_cost", s.low_fidelity_cost, low=0, high=100)
    _positive_int("search.prune_per_round", s.prune_per_round)
    _positive_int("search.max_rounds", s.max_rounds)
    _choice("search.strategy", s.strategy, STRATEGIES)
    _number("search.tau", s.tau, low=0)
    _number("search.threshold", s.threshold, low=0, low_open=False)
    _choice("search.fidelity", s.fidelity, ("full", "low"))
    _positive_int("search.warmup_samples", s.warmup_samples)
    _positive_int("search.warmup_turns", s.warmup_turns)
    _number("search.learned_ratio", s.learned_ratio, low=0, high=1)
    _number("search.learning_rate_scale", s.learning_rate_scale, low=0)
    _choice("search.reinit", s.reinit, ("keep", "reinit"))
    if s.fair_layers and not s.fair_scores:
        raise UserError("search.fair_layers=true refines search.fair_scores, which is false; set search.fair_scores=true too, "
                        "or drop search.fair_layers")
    if s.balance_layers and s.strategy in ("random", "none"):
        raise UserError(f"search.balance_layers=true reorders the criteria's prune order layer by layer, and --strategy {s.strategy} "
                        "has none; drop search.balance_layers or choose a criterion-driven strategy (e.g. hybrid)")


def validate_config(cfg) -> None:
    """Raise one UserError naming the first wrong key of `cfg` (a RunConfig)."""
    from prunepeft.baselines import METHODS
    from prunepeft.data.prompts import TASK_TYPES
    from prunepeft.modules.kinds import ADAPTER_INITS

    _check_types(cfg)
    _choice("method", cfg.method, METHODS)
    for method in cfg.compare:
        _choice("compare", method, METHODS)
    _positive_int("rank", cfg.rank)
    _positive_int("bottleneck", cfg.bottleneck)
    d = cfg.data
    _choice("data.task_type", d.task_type, TASK_TYPES)
    for key in ("prompt_column", "response_column"):
        if getattr(d, key) is not None and not getattr(d, key).strip():
            raise UserError(f"{_name('data.' + key)} must name a column, got an empty name")
    _positive_int("data.max_length", d.max_length)
    _positive_int("data.max_train_samples", d.max_train_samples)
    _positive_int("data.max_eval_samples", d.max_eval_samples)
    if d.text_columns is not None and not all(isinstance(c, str) and c for c in d.text_columns):
        raise UserError(f"config key data.text_columns must be a list of column names, got {d.text_columns!r}")
    _check_train(cfg.train)
    u = cfg.units
    _number("units.lora_alpha", u.lora_alpha, low=0)
    _number("units.lora_dropout", u.lora_dropout, low=0, high=1, low_open=False, high_open=True)
    _choice("units.adapter_init", u.adapter_init, ADAPTER_INITS)
    _number("units.parallel_scaling", u.parallel_scaling, low=0)
    _check_search(cfg.search)
