"""The CLI's commands: the Python API (api.py) on a resolved RunConfig, plus the lines a user reads."""

from __future__ import annotations

from prunepeft import api, distributed
from prunepeft.config import RunConfig


def train_baseline(session, method: str, out) -> dict:
    """One equal-budget baseline on the session's data, written into `out` (a run folder)."""
    return api._train_baseline(session, method, out)[0]


def train_command(cfg: RunConfig, report_to=None) -> dict:
    result = api.train(config=cfg, output_dir=cfg.output_dir, report_to=report_to)
    m = result.metrics
    print(f"{m['task']}: {m['metric']} = {m['score']:.4f}  ({m['seconds']:.0f} s)  -> {result.run_dir}")
    return m


def search_command(cfg: RunConfig, resume: bool = False, report_to=None):
    return api.search(config=cfg, output_dir=cfg.output_dir, resume=resume, report_to=report_to)


def run_command(cfg: RunConfig, resume: bool = False, report_to=None) -> dict:
    result = api.run(config=cfg, output_dir=cfg.output_dir, resume=resume, report_to=report_to)
    m = result.metrics
    print(f"{m['task']}: {m['metric']} = {m['score']:.4f} with {m['trainable_params']:,} unit params; "
          f"search {m['search_seconds']:.0f} s / train {m['train_seconds']:.0f} s = {m['search_train_ratio']:.2f}")
    if distributed.is_main_process():  # the report reads the run folder the main process wrote
        try:
            from prunepeft.report.report import write_report

            print(f"report: {write_report(result.run_dir)}")
        except ImportError:
            pass
    return m
