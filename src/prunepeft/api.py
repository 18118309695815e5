"""The Python API: search, train, run, evaluate and load, with objects in and objects out.

    import prunepeft
    found = prunepeft.search(rows, budget="20k", space=["lora-4:q,v"])      # rows: [{"text": ..., "label": ...}]
    trained = prunepeft.train(found.configuration, rows, output_dir="runs/mine")
    trained.metrics["score"], trained.model                                # a transformers model, trained
    model = prunepeft.load("runs/mine")                                    # the same model, from its folder

Settings come from a RunConfig (`config=`) and/or keyword overrides named by their config key's
last part (`budget=`, `space=`, `seed=`, `learning_rate=`, `max_length=`, ...) or dotted
(`**{"train.learning_rate": 1e-3}`). `data` is a datasets.Dataset / DatasetDict, a list of dicts
with text and label, a DataFrame, a (train, dev) pair, or None for the config's task; `model` a
transformers classifier, a folder, a Hub id, or None for the config's model. Without
`output_dir` the run folder is temporary and removed on return; everything is in the result.
The CLI (commands.py) is these functions plus printing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunepeft.config import RunConfig, load_file, set_value
from prunepeft.errors import UserError
from prunepeft.logs import get_logger
from prunepeft.space.units import Unit, load_configuration
from prunepeft.validate import validate_config

log = get_logger(__name__)


@dataclass
class Result:
    """What a search, training or run gives back."""

    configuration: list[Unit]  # the units (searched, or trained)
    metrics: dict  # metrics.json of a training; the search's cost and budget numbers for a search
    model: Any = field(default=None, repr=False)  # the trained transformers model (eval mode); None after a search
    tokenizer: Any = field(default=None, repr=False)
    run_dir: Path | None = None  # the run folder, when output_dir was given
    compare: dict = field(default_factory=dict)  # method -> metrics of the baselines `run` trained alongside
    task: Any = field(default=None, repr=False)  # the TaskData: text fields and label names, for evaluate()
    max_length: int = 128

    @property
    def score(self) -> float | None:
        return self.metrics.get("score")

    def evaluate(self, data, **kwargs) -> dict:
        """Metrics of the trained model on other rows (same columns and labels as the training data)."""
        return evaluate(self, data, **kwargs)


# ---------------------------------------------------------------- settings

def _leaf_keys() -> dict[str, str]:
    """Every config key's last part -> the dotted key ('budget' -> 'search.budget'); they are unique."""
    keys = {}
    for f in dataclasses.fields(RunConfig):
        default = getattr(RunConfig(), f.name)
        if dataclasses.is_dataclass(default):
            keys.update({g.name: f"{f.name}.{g.name}" for g in dataclasses.fields(default)})
        else:
            keys[f.name] = f.name
    return keys


def make_config(config: RunConfig | str | Path | None = None, **overrides) -> RunConfig:
    """A RunConfig from a RunConfig (copied, not changed), a YAML/JSON file, or the defaults, with
    overrides by short name (budget=, space=, seed=, learning_rate=, ...) or dotted key."""
    if isinstance(config, RunConfig):
        cfg = copy.deepcopy(config)
    elif config is None:
        cfg = RunConfig()
    elif isinstance(config, (str, Path)):
        cfg = RunConfig()
        load_file(cfg, str(config))
    else:
        raise UserError(f"config must be a RunConfig or the path of a YAML/JSON file, got {type(config).__name__}")
    leaves = _leaf_keys()
    for key, value in overrides.items():
        dotted = key.replace("__", ".")
        if "." not in dotted and dotted not in leaves:
            raise UserError(f"unknown setting {key!r}; settings are config keys such as budget, space, seed, learning_rate "
                            "(see `prunepeft config` for all)")
        if dotted in ("space", "search.space", "compare", "text_columns", "data.text_columns") and isinstance(value, str):
            value = value.split()
        if dotted in ("budget", "search.budget") and isinstance(value, (int, float)):
            value = str(value)
        set_value(cfg, leaves.get(dotted, dotted), value)
    return cfg


def _units(configuration) -> list[Unit]:
    """Units from a Result, a list of Units / names ('lora-8:q@3') / dicts, or a configuration file or run folder."""
    if isinstance(configuration, Result):
        configuration = configuration.configuration
    if isinstance(configuration, (str, Path)):
        return load_configuration(configuration)
    try:
        items = list(configuration)
    except TypeError:
        raise UserError(f"configuration must be a list of units, a configuration.json or a run folder, got {type(configuration).__name__}") from None
    units = []
    for item in items:
        if isinstance(item, Unit):
            units.append(item)
        elif isinstance(item, str):
            units.append(Unit.parse(item))
        elif isinstance(item, dict):
            units.append(Unit.from_dict(item))
        else:
            raise UserError(f"configuration entry {item!r} is not a Unit, a unit name such as 'lora-8:q@3' or a dict")
    if not units:
        raise UserError("the configuration is empty; a configuration needs at least one unit")
    return sorted(set(units))


@contextlib.contextmanager
def _folder(output_dir):
    """The run folder: output_dir (checked writable, created only once the work starts) or a
    temporary one removed afterwards."""
    from prunepeft.output_folder import check_output_dir

    if output_dir is not None:
        yield check_output_dir(output_dir), True
        return
    with tempfile.TemporaryDirectory(prefix="prunepeft-") as tmp:
        yield Path(tmp), False


def _working(out: Path, kept: bool, command: str):
    """The run folder marked INCOMPLETE while `command` works (output_folder.run_folder)."""
    from prunepeft.output_folder import run_folder

    return run_folder(out, command) if kept else contextlib.nullcontext(out)


def _session(cfg, data, model, tokenizer):
    """With several processes: after they have joined, the main process first (it may build a
    cached data set or converted model that the others then read)."""
    from prunepeft import distributed
    from prunepeft.memory_session import open_memory_session

    distributed.accelerator()
    with distributed.main_process_first():
        return open_memory_session(cfg, data=data, model=model, tokenizer=tokenizer)


class _Tracking:
    """The trackers of one call (report_to), fed by the search's rounds and the training's epochs;
    a context manager, so they are closed also when the call fails."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reporter.finish()

    def __init__(self, report_to, run_dir: Path | None):
        from prunepeft.trackers import Reporter, parse_report_to

        self.reporter = Reporter(parse_report_to(report_to), run_dir)

    def on_round(self, record: dict) -> None:
        from prunepeft.trackers import round_values

        self.reporter.log(round_values(record), step=record["round"])

    def on_epoch(self, record: dict) -> None:
        from prunepeft.trackers import epoch_values

        self.reporter.log(epoch_values(record), step=record["epoch"])

    def final(self, metrics: dict, prefix: str = "final") -> None:
        keys = ("score", "trainable_params", "search_seconds", "train_seconds", "search_train_ratio", "budget_used")
        self.reporter.log({f"{prefix}/{k}": metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))})


# ---------------------------------------------------------------- the commands

def search(data=None, *, model=None, tokenizer=None, config: RunConfig | str | None = None, output_dir=None,
           resume: bool = False, report_to=None, **overrides) -> Result:
    """Search a configuration for the budget: warm-up, then pruning rounds. Returns the units and the search's numbers."""

    cfg = make_config(config, **overrides)
    with _searched(cfg, "search", data, model, tokenizer, output_dir, resume, report_to) as (session, found, tracking, out, kept):
        metrics = {**found.cost_metrics(), "units": [u.name for u in found.units], "trainable_params": found.used}
        tracking.final(metrics, "search")
    return Result(found.units, metrics, tokenizer=session.tokenizer, run_dir=out if kept else None, task=session.task,
                  max_length=cfg.data.max_length)


@contextlib.contextmanager
def _searched(cfg, command: str, data, model, tokenizer, output_dir, resume: bool, report_to):
    """The search of `search` and `run`: checked settings, the run folder (marked while working),
    the session, the trackers; yields (session, search result, tracking, folder, whether it is kept)."""
    from prunepeft.search.loop import search as search_loop

    validate_config(cfg)
    with _folder(output_dir) as (out, kept):
        if resume and not kept:
            raise UserError("resume=True needs the output_dir of the interrupted search")
        cfg.output_dir = str(out) if kept else cfg.output_dir
        session = _session(cfg, data, model, tokenizer)
        with _working(out, kept, command), _Tracking(report_to, out if kept else None) as tracking:
            found = search_loop(session, out, resume=resume, on_round=tracking.on_round)
            yield session, found, tracking, out, kept


def _train_baseline(session, method: str, out: Path, on_epoch=None):
    """One equal-budget baseline on the session's data into `out`: (metrics, supernet or None for AdaLoRA)."""
    from prunepeft.baselines import baseline_units
    from prunepeft.output_folder import check_output_dir, run_folder
    from prunepeft.search.budget import parse_budget
    from prunepeft.train.fixed import fit_configuration

    cfg = session.cfg
    out = check_output_dir(out)
    sub = dataclasses.replace(session, cfg=dataclasses.replace(cfg, method=method, output_dir=str(out)))
    with run_folder(out, f"train --method {method}"):
        if method == "adalora":
            from prunepeft.train.adalora import train_adalora

            return train_adalora(sub, out), None
        probe = session.probe()
        units = baseline_units(method, probe, parse_budget(cfg.search.budget, probe.backbone_params()), cfg.rank, cfg.bottleneck)
        return fit_configuration(sub, units, out, full=method == "full", on_epoch=on_epoch)


def train(configuration=None, data=None, *, method: str | None = None, model=None, tokenizer=None,
          config: RunConfig | str | None = None, output_dir=None, report_to=None, **overrides) -> Result:
    """Train a fixed configuration (units, a configuration.json, a run folder, or a search Result) or
    an everywhere baseline (`method=`: lora, lora-all, dora, adapter, parallel-adapter, adalora, full)
    from a fresh initialisation, and evaluate it on dev."""
    from prunepeft.train.fixed import fit_configuration

    cfg = make_config(config, **overrides)
    if method is not None:
        cfg.method = method
    if configuration is None and cfg.configuration:
        configuration = cfg.configuration
    if (cfg.method is None) == (configuration is None):
        raise UserError("train needs exactly one of a configuration (--configuration FILE, or configuration= units / a file / a run folder) "
                        "or an everywhere baseline (--method, or method=)")
    validate_config(cfg)
    units = _units(configuration) if configuration is not None else None
    with _folder(output_dir) as (out, kept):
        cfg.output_dir = str(out) if kept else cfg.output_dir
        session = _session(cfg, data, model, tokenizer)
        if units is None:  # _train_baseline marks the folder itself (it also writes compare/<method>/)
            with _Tracking(report_to, out if kept else None) as tracking:
                metrics, supernet = _train_baseline(session, cfg.method, out, on_epoch=tracking.on_epoch)
                tracking.final(metrics)
        else:
            with _working(out, kept, "train --configuration"), _Tracking(report_to, out if kept else None) as tracking:
                metrics, supernet = fit_configuration(session, units, out, on_epoch=tracking.on_epoch)
                tracking.final(metrics)
        return _trained(session, metrics, supernet, out if kept else None, units)


def _trained(session, metrics: dict, supernet, run_dir, units) -> Result:
    model = supernet.model if supernet is not None else None
    names = session.task.label_names
    if model is not None and names:
        model.config.id2label = dict(enumerate(map(str, names)))
        model.config.label2id = {str(n): i for i, n in enumerate(names)}
    configuration = supernet.alive if supernet is not None else (units or [])
    return Result(configuration, metrics, model, session.tokenizer, run_dir, task=session.task, max_length=session.cfg.data.max_length)


def run(data=None, *, model=None, tokenizer=None, config: RunConfig | str | None = None, output_dir=None,
        resume: bool = False, report_to=None, compare=None, **overrides) -> Result:
    """Search, retrain the found configuration (from scratch, or from the search's weights with
    search.warm_start), evaluate it on dev; `compare=[methods]`
    also trains those baselines at the same budget (their metrics in `result.compare`)."""
    from prunepeft.train.fixed import fit_configuration

    cfg = make_config(config, **overrides)
    if compare is not None:
        cfg.compare = [compare] if isinstance(compare, str) else list(compare)
    with _searched(cfg, "run", data, model, tokenizer, output_dir, resume, report_to) as (session, found, tracking, out, kept):
        metrics, supernet = fit_configuration(session, found.units, out, extra_metrics=found.cost_metrics(), on_epoch=tracking.on_epoch,
                                              warm=found.weights if cfg.search.warm_start else None)
        tracking.final(metrics)
        baselines = {}
        for method in cfg.compare:
            log.info(f"compare: training the {method} baseline at the same budget")
            baselines[method] = _train_baseline(session, method, out / "compare" / method)[0]
            tracking.final(baselines[method], f"compare/{method}")
        result = _trained(session, metrics, supernet, out if kept else None, found.units)
    result.compare = baselines
    return result


# ---------------------------------------------------------------- using a trained model

def load(run_dir, *, base_model=None):
    """The trained transformers model of a run folder (every unit kind, target and size), in eval
    mode, giving the logits of the run's final evaluation. `base_model`: the pretrained classifier
    the run started from, needed only when it was an in-memory model without a local folder."""
    from prunepeft.run_folder import load_trained

    supernet, _, _, _ = load_trained(run_dir, base_model=base_model)
    return supernet.model


def evaluate(model, data, *, tokenizer=None, max_length: int | None = None, batch_size: int = 64,
             text_columns=None, label_column: str | None = None) -> dict:
    """Metrics (accuracy, or pearson/spearman/mse) of a trained model on labelled rows: a Result, or a
    model from `load` (with `tokenizer`, else the one of the model's base folder)."""
    from prunepeft.data.encode import encode_rows, make_loader
    from prunepeft.data.memory import task_from_memory
    from prunepeft.train.loop import evaluate as evaluate_loop

    if isinstance(model, Result):
        if model.model is None:
            raise UserError("this result holds no trained model (a search, or an AdaLoRA baseline); train the configuration first")
        result, model = model, model.model
        tokenizer = tokenizer or result.tokenizer
        max_length = max_length or result.max_length
        text_columns = text_columns or (list(result.task.text_fields) if result.task else None)
    if tokenizer is None:
        from prunepeft.memory_session import tokenizer_for

        tokenizer = tokenizer_for(model, None)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)] if getattr(model.config, "id2label", None) else None
    regression = getattr(model.config, "problem_type", None) == "regression"
    task = task_from_memory(data, text_columns=text_columns, label_column=label_column, label_names=None if regression else names,
                            is_regression=regression, split_dev=False)
    encoded = encode_rows(task.dev, tokenizer, task.text_fields, max_length or 128, task.is_regression)
    return evaluate_loop(model, make_loader(encoded, tokenizer, batch_size, shuffle=False, seed=0), task)
