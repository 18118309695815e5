"""Tokenisation and DataLoaders.

Rows are tokenised once without padding; each batch is padded only to its own longest
row (dynamic padding), which on CPU is much cheaper than padding everything to max_length.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from prunepeft.errors import UserError


def encode_rows(rows: list[dict], tokenizer, text_fields, max_length: int, is_regression: bool) -> list[dict]:
    """One dict per row: input_ids, attention_mask, token_type_ids (if the tokenizer makes
    them) and labels (int class id, or float for regression). Truncated, not padded."""
    text_fields = tuple(text_fields)
    if not 1 <= len(text_fields) <= 2:
        raise ValueError(f"text_fields must name one or two columns, got {text_fields}")
    if not rows:
        return []
    columns = [[row[f] for row in rows] for f in text_fields]
    # One batched call: fast tokenizers parallelise it; a pair is truncated longest-first.
    enc = tokenizer(*columns, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    cast = float if is_regression else int
    return [{**{k: enc[k][i] for k in keys}, "labels": cast(row["label"])} for i, row in enumerate(rows)]


def make_loader(encoded: list[dict], tokenizer, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    """DataLoader with dynamic padding; with shuffle, the order depends only on `seed`
    (its own generator, so other uses of the global torch RNG do not change it)."""
    if tokenizer.pad_token is None:
        raise UserError("The tokenizer has no padding token, so batches cannot be padded. For a "
                        "decoder-only model set tokenizer.pad_token = tokenizer.eos_token first.")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(encoded, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=DataCollatorWithPadding(tokenizer, return_tensors="pt"), num_workers=0)
