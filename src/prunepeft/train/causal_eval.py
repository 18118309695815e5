"""Dev metrics of a causal-LM task:

| metric          | what                                                                          |
|-----------------|-------------------------------------------------------------------------------|
| exact_match     | share of rows whose greedy generation, cut at EOS and stripped of surrounding  |
|                 | whitespace, equals the stripped response (the main metric)                    |
| log_likelihood  | mean log-probability per response token (EOS included) over the whole dev set |

Generation is batched with left padding (every prompt ends at the same column, so each step
appends one token to all rows) and allows one token more than the longest dev response, so a
longer answer than any reference can never match. Rows are split over processes and gathered.
"""

from __future__ import annotations

import torch

from prunepeft.data.causal_encode import IGNORE, CausalLMCollator


def exact_match(predictions: list[str], references: list[str]) -> float:
    if len(predictions) != len(references) or not references:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / len(references)


def response_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: (sum of log p(label token | tokens before it), number of label tokens), where
    labels are the input ids with -100 on the positions not scored (prompt, padding)."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    rows, cols = mask.nonzero(as_tuple=True)
    # softmax over the scored positions only: a 50k vocabulary at every padded position costs GBs
    logp = torch.log_softmax(logits[:, :-1][rows, cols].double(), dim=-1)
    picked = logp[torch.arange(len(rows), device=logits.device), targets[rows, cols]]
    return torch.zeros(len(labels), dtype=torch.float64, device=logits.device).index_add_(0, rows, picked), mask.sum(-1)


def greedy_texts(model, rows: list[dict], tokenizer, max_new_tokens: int) -> list[str]:
    """Greedy continuations of the rows' prompts (left-padded batch), cut at the first EOS."""
    from transformers import GenerationConfig

    batch = CausalLMCollator(tokenizer, "left", prompt_only=True)(rows)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=eos)
    out = model.generate(input_ids=batch["input_ids"].to(model.device), attention_mask=batch["attention_mask"].to(model.device),
                         generation_config=config)
    texts = []
    for ids in out[:, batch["input_ids"].shape[1]:].tolist():
        ids = ids[: ids.index(eos)] if eos in ids else ids
        texts.append(tokenizer.decode(ids, skip_special_tokens=True))
    return texts


def evaluate_causal_lm(model, loader) -> dict[str, float]:
    """exact_match and log_likelihood of `model` on the rows of a causal-LM dev loader."""
    from accelerate.utils import gather_object

    from prunepeft.train.loop import accelerator

    acc = accelerator()
    net = acc.unwrap_model(model)
    net.eval()
    tokenizer = loader.collate_fn.tokenizer
    rows = list(loader.dataset)
    max_new = max(sum(t != IGNORE for t in r["labels"]) for r in rows)  # the longest response + EOS
    mine = rows[acc.process_index::acc.num_processes]
    results = []  # (generated text, reference, log-likelihood sum, tokens) per row
    with torch.no_grad():
        for start in range(0, len(mine), loader.batch_size):
            chunk = mine[start:start + loader.batch_size]
            batch = {k: v.to(acc.device) for k, v in CausalLMCollator(tokenizer, "right")(chunk).items()}
            labels = batch.pop("labels")
            ll, count = response_log_likelihood(net(**batch).logits, labels)
            texts = greedy_texts(net, chunk, tokenizer, max_new)
            results += [(t, r["response"], float(s), int(n)) for t, r, s, n in zip(texts, chunk, ll, count)]
    results = gather_object(results) if acc.num_processes > 1 else results
    if len(results) != len(rows):
        raise RuntimeError(f"evaluated {len(results)} examples of {len(rows)}")
    tokens = sum(n for *_, n in results)
    return {"exact_match": exact_match([t for t, *_ in results], [r for _, r, *_ in results]),
            "log_likelihood": sum(s for _, _, s, _ in results) / max(1, tokens)}
