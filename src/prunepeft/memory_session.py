"""A Session (session.py) whose data and/or model come from Python objects instead of names: rows
in memory (data/memory.py) and a transformers classifier the caller already built.

A session rebuilds the pretrained model for every stage (search, final training); from an
in-memory model each rebuild is a deep copy of it as it was when the session opened, so the
caller's model is never changed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from prunepeft.config import RunConfig
from prunepeft.data.memory import NAME, task_from_memory
from prunepeft.data.tasks import load_task
from prunepeft.errors import UserError
from prunepeft.session import Session, check_model_fits, finish_session, open_session
from prunepeft.supernet.arch import inspect_model
from prunepeft.supernet.loading import load_tokenizer, resolve_model_path
from prunepeft.supernet.supernet import Supernet
from prunepeft.train.loop import seed_everything


@dataclass
class MemorySession(Session):
    base_model: object = None  # the pristine classifier every stage starts from

    def _fresh(self):
        model = copy.deepcopy(self.base_model)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def probe(self) -> Supernet:
        return Supernet(self.base_model, inspect_model(self.base_model, self.cfg.arch), self.cfg.units)

    def build_supernet(self, units=(), stage: int = 0) -> Supernet:
        seed_everything(self.cfg.seed, stage)
        model = self._fresh()
        supernet = Supernet(model, inspect_model(model, self.cfg.arch), self.cfg.units)
        for unit in units:
            supernet.add(unit)
        return supernet


def _check_model(model, task) -> None:
    from torch import nn

    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise UserError(f"model must be a model folder, a Hub id, or a transformers model (e.g. AutoModelForSequenceClassification), "
                        f"got {type(model).__name__}")
    labels = getattr(model.config, "num_labels", None)
    if labels != task.num_labels:
        raise UserError(f"the model has {labels} output labels but the data has {task.num_labels} "
                        f"({'a regression' if task.is_regression else ', '.join(task.label_names)}); "
                        f"build it with num_labels={task.num_labels}")


def tokenizer_for(model, tokenizer):
    if tokenizer is not None:
        return tokenizer
    path = getattr(model, "name_or_path", "")
    if path and Path(path).is_dir():
        return load_tokenizer(path)
    raise UserError("pass tokenizer= with an in-memory model (it was not loaded from a local folder, so its tokenizer cannot be found)")


def open_memory_session(cfg: RunConfig, data=None, model=None, tokenizer=None) -> Session:
    """A Session for `cfg` with `data` (rows in memory) and `model` (a transformers classifier, or a
    folder / Hub id) in place of cfg's task and model when given."""
    if data is None and model is None and tokenizer is None:
        return open_session(cfg)
    d = cfg.data
    if d.max_length <= 0:
        raise UserError(f"max_length must be positive, got {d.max_length}")
    if data is not None:
        task = task_from_memory(data, text_columns=d.text_columns, label_column=d.label_column, seed=0)
        d.task = NAME  # what config.json records: the rows themselves are not saved
    else:
        task = load_task(d.task, d.data_dir, text_columns=d.text_columns, label_column=d.label_column, seed=0)
    base = None
    if model is not None and not isinstance(model, (str, Path)):
        _check_model(model, task)
        tokenizer = tokenizer_for(model, tokenizer)
        base = model
        cfg.model = str(getattr(model, "name_or_path", "") or "in-memory")
        model_path = cfg.model
        if base.config.pad_token_id is None:
            base = copy.deepcopy(model)  # the caller's model is left as it is
            base.config.pad_token_id = tokenizer.pad_token_id
    else:
        if model is not None:
            cfg.model = str(model)
        model_path = resolve_model_path(cfg.model)
        check_model_fits(cfg, model_path, task)
        tokenizer = tokenizer or load_tokenizer(model_path)
    if base is not None:
        return finish_session(cfg, task, tokenizer, model_path, MemorySession, base_model=base)
    return finish_session(cfg, task, tokenizer, model_path)
