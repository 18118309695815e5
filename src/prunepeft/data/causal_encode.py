"""Tokenisation and batching of prompt -> response rows for a causal LM.

A row becomes prompt tokens + response tokens + EOS; the labels copy the response and EOS and
are -100 (ignored by the loss) on the prompt, so the model learns the response only, and learns
to stop. Batches are padded on either side with position ids counted from the attention mask,
so a left-padded row sees the same positions as the unpadded row: training pads right,
generation pads left (train/causal_eval.py), and both give the same logits for a row.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from prunepeft.errors import UserError

IGNORE = -100  # the label value HF losses skip


def fit(prompt: list[int], response: list[int], max_length: int, bos: int | None) -> tuple[list[int], list[int]]:
    """Cut a too-long row to max_length tokens: the response keeps its start (at most max_length - 1
    tokens), the prompt keeps its end (the question right before the answer) and its BOS token."""
    if len(prompt) + len(response) <= max_length:
        return prompt, response
    response = response[: max(1, max_length - 1)]
    keep = max(1, max_length - len(response))
    if bos is not None and prompt and prompt[0] == bos and keep >= 2 and len(prompt) > keep:
        return [bos] + prompt[len(prompt) - keep + 1:], response
    return prompt[len(prompt) - keep:], response


def encode_prompt_response(rows: list[dict], tokenizer, max_length: int) -> list[dict]:
    """One dict per row: input_ids, labels (-100 on the prompt), prompt_length, and the response
    text (the reference of exact match). Not padded."""
    if not rows:
        return []
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("the tokenizer has no end-of-sequence token, so a causal LM cannot learn where a response ends; "
                        "use a decoder's own tokenizer (its folder's tokenizer files) or set eos_token in tokenizer_config.json")
    # the prompt gets the tokenizer's special tokens (a BOS), the response none: it continues the prompt
    prompts = tokenizer([r["prompt"] for r in rows])["input_ids"]
    responses = tokenizer([r["response"] for r in rows], add_special_tokens=False)["input_ids"]
    out = []
    for row, prompt, response in zip(rows, prompts, responses):
        prompt, response = fit(list(prompt), list(response) + [eos], max_length, tokenizer.bos_token_id)
        out.append({"input_ids": prompt + response, "labels": [IGNORE] * len(prompt) + response,
                    "prompt_length": len(prompt), "response": row["response"]})
    return out


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, ... over the real tokens of each row, whichever side the padding is on."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class CausalLMCollator:
    """Pads rows into a batch the model takes as-is: input_ids, attention_mask, position_ids and
    (with labels) labels padded with -100. `prompt_only` keeps the prompt tokens (for generation)."""

    def __init__(self, tokenizer, side: str = "right", prompt_only: bool = False):
        if tokenizer.pad_token_id is None:
            raise UserError("the tokenizer has no padding token; set tokenizer.pad_token = tokenizer.eos_token")
        if side not in ("left", "right"):
            raise ValueError(f"side must be left or right, got {side!r}")
        self.tokenizer, self.side, self.prompt_only = tokenizer, side, prompt_only

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [f["input_ids"][: f["prompt_length"]] if self.prompt_only else f["input_ids"] for f in features]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id

        def padded(values, fill):
            gap = [fill] * (width - len(values))
            return gap + list(values) if self.side == "left" else list(values) + gap

        batch = {"input_ids": torch.tensor([padded(s, pad) for s in seqs]),
                 "attention_mask": torch.tensor([padded([1] * len(s), 0) for s in seqs])}
        batch["position_ids"] = position_ids(batch["attention_mask"])
        if not self.prompt_only:
            batch["labels"] = torch.tensor([padded(f["labels"], IGNORE) for f in features])
        return batch


def make_causal_loader(encoded: list[dict], tokenizer, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    """Like data.encode.make_loader: right padding, a shuffle that depends only on `seed`."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(encoded, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=CausalLMCollator(tokenizer, "right"), num_workers=0)
