"""Everything a command needs, built from a RunConfig: task data, tokenizer, model, supernet."""

from __future__ import annotations

from dataclasses import dataclass

from prunepeft.config import RunConfig
from prunepeft.data.causal_encode import encode_prompt_response, make_causal_loader
from prunepeft.data.encode import encode_rows, make_loader
from prunepeft.data.prompts import load_task_for
from prunepeft.data.subset import stratified_subset
from prunepeft.data.tasks import TaskData
from prunepeft.errors import UserError
from prunepeft.supernet.arch import inspect_model
from prunepeft.supernet.loading import (
    check_decoder,
    load_for_task,
    load_tokenizer,
    max_positions,
    resolve_model_path,
    skeleton_for_task,
)
from prunepeft.supernet.supernet import Supernet
from prunepeft.train.loop import seed_everything


@dataclass
class Session:
    cfg: RunConfig
    task: TaskData
    tokenizer: object
    model_path: str
    train_rows: list
    dev_rows: list
    train_encoded: list
    dev_encoded: list

    def loader(self, encoded, *, train: bool, stage: int = 0, shuffle: bool | None = None, batch_size: int | None = None):
        c = self.cfg.train
        bs = batch_size or (c.per_device_train_batch_size if train else c.per_device_eval_batch_size)
        if self.task.is_causal_lm:
            return make_causal_loader(encoded, self.tokenizer, bs, shuffle=train if shuffle is None else shuffle, seed=self.cfg.seed * 7919 + stage)
        return make_loader(encoded, self.tokenizer, bs, shuffle=train if shuffle is None else shuffle, seed=self.cfg.seed * 7919 + stage)

    def encode(self, rows) -> list:
        if self.task.is_causal_lm:
            return encode_prompt_response(rows, self.tokenizer, self.cfg.data.max_length)
        return encode_rows(rows, self.tokenizer, self.task.text_fields, self.cfg.data.max_length, self.task.is_regression)

    def probe(self) -> Supernet:
        """A weightless supernet (meta device) for layer count, unit sizes and backbone size."""
        model = skeleton_for_task(self.model_path, self.task.task_type, self.task.num_labels, self.task.is_regression)
        return Supernet(model, inspect_model(model, self.cfg.arch), self.cfg.units)

    def build_supernet(self, units=(), stage: int = 0) -> Supernet:
        """A fresh pretrained model with `units` attached, seeded from (seed, stage)."""
        seed_everything(self.cfg.seed, stage)
        model = load_for_task(self.model_path, self.task.task_type, self.task.num_labels, self.task.is_regression, self.tokenizer)
        supernet = Supernet(model, inspect_model(model, self.cfg.arch), self.cfg.units)
        for unit in units:
            supernet.add(unit)
        return supernet


def open_session(cfg: RunConfig) -> Session:
    d = cfg.data
    if d.max_length <= 0:
        raise UserError(f"--max-length must be positive, got {d.max_length}")
    task = load_task_for(d, seed=0)
    model_path = resolve_model_path(cfg.model)
    check_model_fits(cfg, model_path, task)
    return finish_session(cfg, task, load_tokenizer(model_path), model_path)


def check_model_fits(cfg: RunConfig, model_path: str, task: TaskData) -> None:
    """The model can take the task: a decoder for causal-LM tasks, and inputs within its positions."""
    if task.is_causal_lm:
        check_decoder(model_path, cfg.model, task.name)
    limit = max_positions(model_path)
    if limit is not None and cfg.data.max_length > limit:
        raise UserError(f"--max-length {cfg.data.max_length} is above the {limit} positions model {cfg.model} holds; "
                        f"pass --max-length {limit} or less")


def finish_session(cfg: RunConfig, task: TaskData, tokenizer, model_path: str, session_class=None, **extra) -> Session:
    """The session of `task`: its train and dev subsets (stratified, seeded) encoded."""
    d = cfg.data
    train_rows, dev_rows = task.train, task.dev
    if d.max_train_samples is not None:
        if d.max_train_samples <= 0:
            raise UserError(f"--max-train-samples must be positive, got {d.max_train_samples}")
        train_rows = stratified_subset(train_rows, d.max_train_samples, seed=cfg.seed, is_regression=task.is_regression)
    if d.max_eval_samples is not None:
        dev_rows = stratified_subset(dev_rows, d.max_eval_samples, seed=cfg.seed, is_regression=task.is_regression)
    s = (session_class or Session)(cfg, task, tokenizer, model_path, train_rows, dev_rows, [], [], **extra)
    s.train_encoded = s.encode(train_rows)
    s.dev_encoded = s.encode(dev_rows)
    return s
