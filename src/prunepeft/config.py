"""Run configuration: dataclasses, loadable from YAML/JSON, overridable with key=value."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prunepeft.errors import UserError
from prunepeft.supernet.arch import ArchOverrides
from prunepeft.supernet.loading import DEFAULT_MODEL
from prunepeft.supernet.supernet import UnitOptions
from prunepeft.train.loop import TrainConfig

DEFAULT_SPACE = ("lora-4:q,k,v,o,ffn_in,ffn_out",)  # chosen by measurement: docs/method-notes.md, "Default space"


@dataclass
class DataConfig:
    task: str = field(default="movie-sentiment", metadata={"help": "glue/<name>, movie-sentiment, or a CSV/TSV/JSONL file or folder"})
    data_dir: str | None = field(default=None, metadata={"help": "folder with GLUE data (else $PRUNEPEFT_DATA_DIR, else the Hub)"})
    text_columns: list | None = field(default=None, metadata={"help": "text column(s) of a user file (one, or two for pairs); default: guessed"})
    label_column: str | None = field(default=None, metadata={"help": "label column of a user file (default: label)"})
    task_type: str = field(default="auto", metadata={"help": "classification; causal-lm: a decoder learns prompt -> response (loss on the "
                                                             "response and EOS; built-in tasks are posed as prompt -> label word; metrics: "
                                                             "exact match of greedy generation, mean response-token log-likelihood); auto: "
                                                             "causal-lm for a file with prompt and response columns and no label column"})
    prompt_column: str | None = field(default=None, metadata={"help": "prompt column of a causal-lm file; unset: the first of prompt, "
                                                                      "input, question that the file has"})
    response_column: str | None = field(default=None, metadata={"help": "response column of a causal-lm file; unset: the first of "
                                                                        "response, completion, output, answer that pairs with the prompt column"})
    max_length: int = field(default=128, metadata={"help": "tokens per example (longer inputs are cut); at most the model's positions"})
    max_train_samples: int | None = field(default=None, metadata={"help": "stratified subset of the training data"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "stratified subset of the dev data (default: all of it)"})


@dataclass
class SearchConfig:
    space: list = field(default_factory=lambda: list(DEFAULT_SPACE),
                        metadata={"help": "unit families KIND-SIZE[:TARGETS] in every layer, e.g. lora-4:q,k,v,o,ffn_in,ffn_out adapter-16"})
    floor: list = field(default_factory=list,
                        metadata={"help": "units in every configuration, not searched (same syntax as space, e.g. "
                                          "lora-1:q,k,v,o,ffn_in,ffn_out): they take their params from the budget, the search places the rest"})
    budget: str = field(default="73728", metadata={"help": "trainable unit parameters: a count (73728, 74k, 1.2M) or a percent of the backbone (0.3%)"})
    search_cost: float = field(default=0.3, metadata={"help": "R: the search's training work is at most R x the final training's (above a minimum; see method-notes)"})
    low_fidelity_cost: float = field(default=0.03, metadata={"help": "R of --fidelity low, whose search draws only from the compact subset d"})
    prune_per_round: int = field(default=4, metadata={"help": "k: units removed per round (at least; see max_rounds)"})
    max_rounds: int = field(default=8, metadata={"help": "k grows with the space so that about this many rounds reach the budget "
                                                        "(k = max(prune_per_round, units to remove / max_rounds))"})
    strategy: str = field(default="hybrid", metadata={"help": "hybrid, hybrid-global, random, none, or one criterion"})
    strategy_from: str | None = field(default=None, metadata={"help": "run folder (or strategy.json) whose strategy to reuse; skips the warm-up"})
    tau: float = field(default=3.0, metadata={"help": "how many top-ranked units per criterion weigh in the hybrid score (sigmoid(tau - rank), Eq. 1)"})
    threshold: float = field(default=1e-3, metadata={"help": "t of the 'threshold' criterion"})
    coverage_ranks: bool = field(default=False, metadata={"help": "Eq. 1: stretch each criterion's ranks to the number of alive units, so a "
                                                                 "criterion that ranks few units does not prune them as fast as one that ranks many"})
    fair_scores: bool = field(default=True, metadata={"help": "compare each unit's scores with its peers' (same kind, size, target) before ranking across groups"})
    fair_layers: bool = field(default=False, metadata={"help": "with fair_scores: also remove each layer's common scale (median polish "
                                                              "over layer x target), so depth does not decide which units go"})
    balance_layers: bool = field(default=False, metadata={"help": "each round prunes from the layer holding the most unit parameters, the "
                                                                "hybrid choosing within it, so every layer keeps about an equal share"})
    fidelity: str = field(default="full", metadata={"help": "full: rounds on all training data; low: on the compact subset, one warm-up "
                                                           "turn and as many rounds as low_fidelity_cost pays for (at least 3)"})
    warmup_samples: int = field(default=256, metadata={"help": "size of the stratified compact subset d"})
    warmup_turns: int | None = field(default=None, metadata={"help": "turns of (train on d, score, prune k) per criterion; the first is shared; "
                                                                     "default 2 at full fidelity, 1 (the shared turn alone) at low"})
    learning_rate_scale: float = field(default=1.0, metadata={"help": "the search trains the supernet (shared turn, warm-up turns, rounds) at "
                                                                      "this x the final training's learning rates"})
    learned_ratio: float = field(default=0.95, metadata={"help": "no unit is scored before the training loss is below this x the label-prior loss"})
    reinit: str = field(default="keep", metadata={"help": "keep the trained weights between rounds, or reinit (Eqs. 4-5)"})
    warm_start: bool = field(default=False, metadata={"help": "run: the final training starts the units that survived the search, and the "
                                                            "head, from their search weights (given-back and floor units start fresh)"})
    eval_rounds: bool = field(default=False, metadata={"help": "evaluate the supernet on dev after every round (for the trace; not search cost)"})

    def fairness(self) -> bool | str:
        """The `fair` argument of criteria/fair.py::oriented: False, True, or "layers"."""
        return "layers" if self.fair_scores and self.fair_layers else self.fair_scores

    def turns(self) -> int:
        """Warm-up turns per criterion: `warmup_turns`, or by default 2 (1 at low fidelity, whose cost
        the second turn's floor would exceed; docs/method-notes.md, "Search cost")."""
        return self.warmup_turns or (1 if self.fidelity == "low" else 2)


@dataclass
class RunConfig:
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "local model folder, Hub id, smollm2 (packaged SmolLM2-135M-Instruct) or FILE.gguf"})
    output_dir: str = field(default="runs/latest", metadata={"help": "run folder for every file the command writes"})
    seed: int = field(default=42, metadata={"help": "seeds data subsets, initialisation and order: the same seed gives the same run"})
    method: str | None = field(default=None, metadata={"help": "an equal-budget baseline: lora (q,v), lora-all, dora, adapter, parallel-adapter, adalora, full"})
    rank: int | None = field(default=None, metadata={"help": "rank of --method lora/dora; default: the largest that fits --budget (8 at the default budget)"})
    bottleneck: int | None = field(default=None, metadata={"help": "width of --method adapter/parallel-adapter; default: the widest that fits --budget"})
    configuration: str | None = field(default=None, metadata={"help": "configuration.json (or run folder) to train"})
    compare: list = field(default_factory=list, metadata={"help": "`run` also trains these baselines at the same budget on the same data "
                                                                  "(e.g. lora lora-all adalora) into compare/<method>/ and tabulates them in report.md"})
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    units: UnitOptions = field(default_factory=UnitOptions)
    arch: ArchOverrides = field(default_factory=ArchOverrides)
    search: SearchConfig = field(default_factory=SearchConfig)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _parse_dict(text: str) -> dict:
    """'{adapter: 5e-4, lora:1e-3}' as a user writes it, with or without spaces (YAML would read
    'adapter:5e-4' as one key with no value)."""
    inner = text.strip()
    if inner.startswith("{") != inner.endswith("}"):
        raise ValueError(text)
    inner = inner.strip("{}").strip()
    out = {}
    for item in filter(None, (part.strip() for part in inner.split(","))):
        key, sep, value = item.partition(":") if ":" in item else item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(text)
        out[key.strip()] = yaml.safe_load(value.strip())
    return out


def _coerce(value, type_name: str, name: str):
    """Turn a command-line string into the field's declared type ('int | None', 'list', ...)."""
    if not isinstance(value, (str, list)):
        return value
    base = type_name.replace(" | None", "").strip()
    if isinstance(value, str) and value.lower() in ("none", "null") and base != type_name:
        return None
    try:
        if base == "bool":
            word = str(value).lower()
            if word not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError(value)
            return word in ("1", "true", "yes")
        if base == "int":
            return int(value)
        if base == "float":
            return float(value)
        if base == "list" and isinstance(value, str) and not value.lstrip().startswith("["):
            return value.split()  # "lora-4:q,k adapter-16": space-separated, commas stay inside an entry
        if base == "dict" and isinstance(value, str):
            value = _parse_dict(value)
        if base == "list" and isinstance(value, str):
            value = yaml.safe_load(value)
        if base == "list" and not isinstance(value, list):
            return [value]
        if base == "dict":
            if not isinstance(value, dict):
                raise ValueError(value)
            # YAML 1.1 reads 5e-4 as a string: numbers in a dict of rates must be floats
            return {k: float(v) if isinstance(v, (int, float, str)) and _is_number(v) else v for k, v in value.items()}
    except (ValueError, TypeError, yaml.YAMLError):
        hint = {"bool": "true or false", "int": "a whole number", "float": "a number",
                "dict": "a mapping such as {adapter:5e-4}"}.get(base, f"a {base}")
        raise UserError(f"cannot read {name}={value!r} as {base}; give {hint}") from None
    return value


def set_value(cfg, dotted: str, value) -> None:
    path = dotted.split(".")
    target = cfg
    for part in path[:-1]:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise UserError(f"unknown config key {dotted!r}; see `prunepeft config` for all keys")
        target = getattr(target, part)
    leaf = path[-1]
    fields = {f.name: f for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else {}
    if leaf not in fields:
        raise UserError(f"unknown config key {dotted!r}; see `prunepeft config` for all keys")
    current = getattr(target, leaf)
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise UserError(f"config key {dotted!r} is a section; set its fields, e.g. {dotted}.<field>=...")
        for k, v in value.items():
            set_value(cfg, f"{dotted}.{k}", v)
        return
    setattr(target, leaf, _coerce(value, str(fields[leaf].type), dotted))


def load_file(cfg: RunConfig, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        payload = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"config file {path} is not valid YAML/JSON: {getattr(e, 'problem', None) or e}{where}") from None
    if not isinstance(payload, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    for k, v in payload.items():
        set_value(cfg, k, v)


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> None:
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like key=value, e.g. train.learning_rate=5e-4")
        key, value = item.split("=", 1)
        set_value(cfg, key.strip(), value.strip())


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(payload: dict) -> RunConfig:
    cfg = RunConfig()
    for k, v in payload.items():
        set_value(cfg, k, v)
    return cfg


def dumps(cfg) -> str:
    return json.dumps(to_dict(cfg), indent=2)


def describe(cfg=None, indent: str = "") -> str:
    """Every key with its default and meaning, as a YAML file a user can copy and edit."""
    cfg = cfg if cfg is not None else RunConfig()
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines += [f"{indent}{f.name}:", describe(value, indent + "  ")]
            continue
        shown = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
        text = f"{f.name}: {shown}"
        note = f.metadata.get("help")
        lines.append(f"{indent}{text}" + (f"  # {note}" if note else ""))
    return "\n".join(lines)
