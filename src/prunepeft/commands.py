"""The commands behind the CLI, as plain functions of a resolved RunConfig."""

from __future__ import annotations

from prunepeft.config import RunConfig
from prunepeft.errors import UserError
from prunepeft.session import check_output_dir, open_session
from prunepeft.space.units import KINDS, everywhere, load_configuration
from prunepeft.train.fixed import train_configuration

METHODS = tuple(KINDS) + ("full",)


def baseline_units(cfg: RunConfig, num_layers: int):
    if cfg.method not in METHODS:
        raise UserError(f"unknown --method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    if cfg.method == "full":
        return []
    size = cfg.rank if cfg.method in ("lora", "dora") else cfg.bottleneck
    return everywhere(cfg.method, size, num_layers)


def train_command(cfg: RunConfig) -> dict:
    if (cfg.method is None) == (cfg.configuration is None):
        raise UserError("train needs exactly one of --method (an everywhere baseline) or --configuration FILE")
    units = load_configuration(cfg.configuration) if cfg.configuration else None
    if cfg.method is not None:
        baseline_units(cfg, 1)  # validates method and size before any loading
    out = check_output_dir(cfg.output_dir)
    session = open_session(cfg)
    if units is None:
        units = baseline_units(cfg, session.probe().arch.num_layers)
    metrics = train_configuration(session, units, out, full=cfg.method == "full")
    print(f"{session.task.name}: {session.task.metric} = {metrics['score']:.4f}  ({metrics['seconds']:.0f} s)  -> {out}")
    return metrics


def search_command(cfg: RunConfig, resume: bool = False):
    from prunepeft.search.loop import search

    out = check_output_dir(cfg.output_dir)
    session = open_session(cfg)
    return search(session, out, resume=resume)


def run_command(cfg: RunConfig, resume: bool = False) -> dict:
    from prunepeft.search.loop import search

    out = check_output_dir(cfg.output_dir)
    session = open_session(cfg)
    result = search(session, out, resume=resume)
    metrics = train_configuration(session, result.units, out, extra_metrics=result.cost_metrics())
    print(f"{session.task.name}: {session.task.metric} = {metrics['score']:.4f} with {metrics['trainable_params']:,} unit params; "
          f"search {metrics['search_seconds']:.0f} s / train {metrics['train_seconds']:.0f} s = {metrics['search_train_ratio']:.2f}")
    try:
        from prunepeft.report.report import write_report

        print(f"report: {write_report(out)}")
    except ImportError:
        pass
    return metrics
