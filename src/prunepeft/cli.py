"""`prunepeft search | train | baseline | run | export | report | config`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prunepeft.errors import UserError
from prunepeft.logs import add_verbosity_flags
from prunepeft.logs import configure as configure_logging

# flag -> dotted config key; flags users know from HF TrainingArguments keep their names.
COMMON_FLAGS = {
    "--model": "model",
    "--task": "data.task",
    "--data-dir": "data.data_dir",
    "--text-columns": "data.text_columns",
    "--label-column": "data.label_column",
    "--task-type": "data.task_type",
    "--prompt-column": "data.prompt_column",
    "--response-column": "data.response_column",
    "--max-length": "data.max_length",
    "--max-train-samples": "data.max_train_samples",
    "--max-eval-samples": "data.max_eval_samples",
    "--output-dir": "output_dir",
    "--seed": "seed",
    "--learning-rate": "train.learning_rate",
    "--head-learning-rate": "train.head_learning_rate",
    "--num-train-epochs": "train.num_train_epochs",
    "--per-device-train-batch-size": "train.per_device_train_batch_size",
}
TRAIN_FLAGS = {"--method": "method", "--rank": "rank", "--bottleneck": "bottleneck", "--configuration": "configuration",
               "--budget": "search.budget"}
SEARCH_FLAGS = {
    "--space": "search.space",
    "--floor": "search.floor",
    "--budget": "search.budget",
    "--prune-per-round": "search.prune_per_round",
    "--strategy": "search.strategy",
    "--strategy-from": "search.strategy_from",
    "--fidelity": "search.fidelity",
    "--reinit": "search.reinit",
    "--tau": "search.tau",
    "--warmup-samples": "search.warmup_samples",
    "--warmup-turns": "search.warmup_turns",
    "--search-cost": "search.search_cost",
}


def _field_help(key: str) -> str:
    """The config field's own description and default, for --help."""
    import dataclasses

    from prunepeft.config import RunConfig

    target, fields = RunConfig(), None
    for part in key.split("."):
        fields = {f.name: f for f in dataclasses.fields(target)}
        value = getattr(target, part)
        if dataclasses.is_dataclass(value):
            target = value
    f = fields[key.split(".")[-1]]
    text = f.metadata.get("help", "")
    default = value if not isinstance(value, list) else " ".join(map(str, value)) or "none"
    return f"{text} (default: {default}; config key {key})".lstrip()


SPACE_HELP = ("search space, one entry per unit family: KIND-SIZE[:TARGETS]; each comma-separated target gives one unit "
              "per layer, '+' joins targets into one unit. Kinds: {kinds}. Targets: q, k, v, o (attention), ffn_in (up, and "
              "gate), ffn_out (down); a kind without a size is written without one (bias:q,ffn_in). E.g. lora-4:q,k,v,o,ffn_in,ffn_out "
              "adapter-16; the paper's space is lora-8:q+v adapter-128")


def _add_flags(p: argparse.ArgumentParser, flags: dict) -> None:
    from prunepeft.modules.kinds import describe

    for flag, key in flags.items():
        nargs = "+" if flag in ("--text-columns", "--space", "--floor", "--compare") else None
        text = SPACE_HELP.format(kinds=describe()) + f" (default: {_field_help(key).split('(default: ')[1]}" if flag == "--space" else _field_help(key)
        p.add_argument(flag, dest=key.replace(".", "__"), nargs=nargs, default=None, metavar=flag[2:].upper().replace("-", "_"),
                       help=text.replace("%", "%%"))


def _resolve(args, flags: dict):
    from prunepeft.config import RunConfig, apply_overrides, load_file, set_value

    cfg = RunConfig()
    if args.config:
        load_file(cfg, args.config)
    for key in flags.values():
        value = getattr(args, key.replace(".", "__"), None)
        if value is not None:
            set_value(cfg, key, value)
    apply_overrides(cfg, args.set)
    return cfg


class _Parser(argparse.ArgumentParser):
    """argparse's errors in prunepeft's one-line form (argparse prints the usage first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)  # a typo of a flag must not silently pick another flag

    def error(self, message):
        self.exit(2, f"prunepeft: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prunepeft", description="Which PEFT modules go into which layers: PrunePEFT search, train, export.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, help_, flags):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", help="YAML/JSON file of config keys")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. train.warmup_ratio=0.1")
        p.add_argument("--report-to", default=None, metavar="TRACKERS", help="also log search rounds and epochs to: csv (tracking.csv in "
                       "the run folder), tensorboard (if installed), or none; comma-separated")
        _add_flags(p, flags)
        add_verbosity_flags(p)
        return p

    command("train", "train a fixed configuration (--configuration FILE) or an everywhere baseline (--method)", {**COMMON_FLAGS, **TRAIN_FLAGS})
    command("baseline", "alias of train --method", {**COMMON_FLAGS, **TRAIN_FLAGS})
    for name, help_ in (("search", "search a configuration for the budget (warm-up + pruning rounds)"), ("run", "search, retrain the result, evaluate and report")):
        p = command(name, help_, {**COMMON_FLAGS, **SEARCH_FLAGS, **({"--compare": "compare"} if name == "run" else {})})
        p.add_argument("--resume", action="store_true", help="continue an interrupted search in --output-dir")
    p = sub.add_parser("export", help="export a run as a peft adapter, a merged model, or prunepeft's own format")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["peft", "merged", "prunepeft"], default="peft")
    p.add_argument("--out", required=True)
    add_verbosity_flags(p)
    p = sub.add_parser("report", help="write report.md and plots into a run folder")
    p.add_argument("run_dir")
    add_verbosity_flags(p)
    p = sub.add_parser("config", help="print every config key with its default (JSON), or with its meaning (--describe)")
    p.add_argument("--describe", action="store_true", help="print a commented YAML config: every key, its default and what it does")
    return parser


def _all_flags(command: str) -> dict:
    if command in ("train", "baseline"):
        return {**COMMON_FLAGS, **TRAIN_FLAGS}
    return {**COMMON_FLAGS, **SEARCH_FLAGS, **({"--compare": "compare"} if command == "run" else {})}


def dispatch(args) -> int:
    if args.command == "config":
        from prunepeft.config import RunConfig, describe, dumps

        print(describe() if args.describe else dumps(RunConfig()))
        return 0
    if args.command == "export":
        from prunepeft.export.command import export_run

        export_run(Path(args.run_dir), args.format, Path(args.out))
        return 0
    if args.command == "report":
        from prunepeft.report.report import write_report

        print(write_report(Path(args.run_dir)))
        return 0
    cfg = _resolve(args, _all_flags(args.command))
    from prunepeft import distributed

    with distributed.quiet_unless_main():  # under torchrun / accelerate launch: print once
        if args.command in ("train", "baseline"):
            from prunepeft.commands import train_command

            train_command(cfg, report_to=args.report_to)
        elif args.command == "search":
            from prunepeft.commands import search_command

            search_command(cfg, resume=args.resume, report_to=args.report_to)
        elif args.command == "run":
            from prunepeft.commands import run_command

            run_command(cfg, resume=args.resume, report_to=args.report_to)
        distributed.end()
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(getattr(args, "verbosity", "normal"))
    try:
        return dispatch(args)
    except UserError as e:
        print(f"prunepeft: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever a library put in it
        return 2
    except KeyboardInterrupt:
        print("prunepeft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
