"""The commands behind the CLI, as plain functions of a resolved RunConfig."""

from __future__ import annotations

from prunepeft import distributed
from prunepeft.baselines import baseline_units, check_method
from prunepeft.config import RunConfig
from prunepeft.errors import UserError
from prunepeft.runfolder import check_output_dir, run_folder
from prunepeft.search.budget import parse_budget
from prunepeft.session import open_session
from prunepeft.space.units import load_configuration
from prunepeft.train.fixed import train_configuration
from prunepeft.validate import validate_config


def _open(cfg: RunConfig):
    """The session; with several processes, after they have joined, and the main process first
    (it may build a cached data set or converted model that the others then read)."""
    distributed.accelerator()
    with distributed.main_process_first():
        return open_session(cfg)


def train_baseline(session, method: str, out) -> dict:
    """One equal-budget baseline on the session's data, written into `out` (a run folder)."""
    import dataclasses

    cfg = session.cfg
    out = check_output_dir(out)
    sub = dataclasses.replace(session, cfg=dataclasses.replace(cfg, method=method, output_dir=str(out)))
    with run_folder(out, f"train --method {method}"):
        if method == "adalora":
            from prunepeft.train.adalora import train_adalora

            return train_adalora(sub, out)
        probe = session.probe()
        units = baseline_units(method, probe, parse_budget(cfg.search.budget, probe.backbone_params()), cfg.rank, cfg.bottleneck)
        return train_configuration(sub, units, out, full=method == "full")


def train_command(cfg: RunConfig) -> dict:
    validate_config(cfg)
    if (cfg.method is None) == (cfg.configuration is None):
        raise UserError("train needs exactly one of --method (an everywhere baseline) or --configuration FILE")
    units = load_configuration(cfg.configuration) if cfg.configuration else None
    if cfg.method is not None:
        check_method(cfg.method)  # before any loading
    out = check_output_dir(cfg.output_dir)
    session = _open(cfg)
    if units is None:
        metrics = train_baseline(session, cfg.method, out)
    else:
        with run_folder(out, "train --configuration"):
            metrics = train_configuration(session, units, out)
    print(f"{session.task.name}: {session.task.metric} = {metrics['score']:.4f}  ({metrics['seconds']:.0f} s)  -> {out}")
    return metrics


def search_command(cfg: RunConfig, resume: bool = False):
    from prunepeft.search.loop import search

    validate_config(cfg)
    out = check_output_dir(cfg.output_dir)
    session = _open(cfg)
    with run_folder(out, "search"):
        return search(session, out, resume=resume)


def run_command(cfg: RunConfig, resume: bool = False) -> dict:
    from prunepeft.search.loop import search

    validate_config(cfg)
    for method in cfg.compare:
        check_method(method, "--compare")  # before any loading
    out = check_output_dir(cfg.output_dir)
    session = _open(cfg)
    with run_folder(out, "run"):
        result = search(session, out, resume=resume)
        metrics = train_configuration(session, result.units, out, extra_metrics=result.cost_metrics())
        for method in cfg.compare:
            print(f"compare: training the {method} baseline at the same budget")
            train_baseline(session, method, out / "compare" / method)
    print(f"{session.task.name}: {session.task.metric} = {metrics['score']:.4f} with {metrics['trainable_params']:,} unit params; "
          f"search {metrics['search_seconds']:.0f} s / train {metrics['train_seconds']:.0f} s = {metrics['search_train_ratio']:.2f}")
    if distributed.is_main_process():  # the report reads the run folder the main process wrote
        try:
            from prunepeft.report.report import write_report

            print(f"report: {write_report(out)}")
        except ImportError:
            pass
    return metrics
