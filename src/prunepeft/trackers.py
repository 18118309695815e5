"""`--report-to` / `report_to=`: send search rounds and training epochs to experiment trackers.

Trackers are accelerate's (`accelerate.tracking.GeneralTracker`). Supported:
    csv          always: <run folder>/tracking.csv, one line per value (step, name, value)
    tensorboard  when the tensorboard package is installed: <run folder>/tensorboard/
    none         nothing
Any other name is refused with what is installed and what to do.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from accelerate.tracking import GeneralTracker

from prunepeft.errors import UserError

CSV_FILE = "tracking.csv"


class CSVTracker(GeneralTracker):
    """Appends (step, name, value) rows: a long table, so any set of names per step fits."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / CSV_FILE

    @property
    def tracker(self):
        return self.path

    def start(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            self.path.write_text("step,name,value\n")

    def log(self, values: dict, step: int | None = None, **kwargs):
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for key, value in values.items():
                writer.writerow([step if step is not None else "", key, value])


def _tensorboard(run_dir: Path) -> GeneralTracker:
    from accelerate.utils import is_tensorboard_available

    if not is_tensorboard_available():
        raise UserError("--report-to tensorboard: the tensorboard package is not installed; `pip install tensorboard`, "
                        "or use --report-to csv")
    from accelerate.tracking import TensorBoardTracker

    return TensorBoardTracker("prunepeft", run_dir / "tensorboard")


BUILDERS = {"csv": lambda run_dir: CSVTracker("prunepeft", run_dir), "tensorboard": _tensorboard}


def parse_report_to(value) -> list[str]:
    """'csv', 'csv,tensorboard', ['csv'], None or 'none' -> the tracker names, checked."""
    if value is None:
        return []
    names = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    names = [n.strip().lower() for n in names if n.strip().lower() != "none"]
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise UserError(f"--report-to {', '.join(unknown)}: not supported here; choose from {', '.join(BUILDERS)} or none "
                        "(other accelerate trackers such as wandb or mlflow are not wired in)")
    return list(dict.fromkeys(names))


class Reporter:
    """Fans one `log(values, step)` out to the chosen trackers; numbers only, nested dicts flattened."""

    def __init__(self, names: list[str], run_dir: Path | None):
        if names and run_dir is None:
            raise UserError("report_to needs an output_dir: the trackers write into the run folder")
        self.trackers = [BUILDERS[n](Path(run_dir)) for n in names]
        for t in self.trackers:
            t.start()

    def log(self, values: dict, step: int | None = None) -> None:
        flat = flatten(values)
        if flat:
            for t in self.trackers:
                t.log(flat, step=step)

    def finish(self) -> None:
        for t in self.trackers:
            t.finish()


def flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def round_values(record: dict) -> dict:
    """The scalars of one search round (a trace.jsonl line) worth plotting."""
    return {"search/trainable_params": record["trainable_params"], "search/alive_units": len(record["alive"]) - len(record["pruned"]),
            "search/pruned_units": len(record["pruned"]), "search/train_loss": record["train_loss"],
            **({"search/dev": record["dev"]} if record.get("dev") else {})}


def epoch_values(record: dict) -> dict:
    """The scalars of one training epoch (an epochs.jsonl line)."""
    return {"train/loss": record["train_loss"], **({"dev": record["dev"]} if record.get("dev") else {})}
