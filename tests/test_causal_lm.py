"""Causal-LM tasks on a tiny random Llama with its own BPE tokenizer: response-only loss masking,
padding on either side, the exact-match and log-likelihood metrics on hand-made cases, prompt/
response files and classification tasks posed as prompt -> label word, a search + train + export
round trip whose peft adapter gives the same logits, and the user errors."""

from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import pytest
import torch
from tiny_model import GLUE, make_tiny_bert_dir, make_tiny_causal_llama_dir, tiny_bpe_tokenizer

from prunepeft.cli import main
from prunepeft.data.causal_encode import IGNORE, CausalLMCollator, encode_prompt_response, fit
from prunepeft.data.prompts import load_task_for, pose_as_causal_lm, resolve_task_type
from prunepeft.data.tasks import TaskData
from prunepeft.errors import UserError
from prunepeft.search.learned import prior_loss
from prunepeft.train.causal_eval import evaluate_causal_lm, exact_match, response_log_likelihood

pytestmark = pytest.mark.usefixtures("tiny_env")

POSITIVE, NEGATIVE = ["good", "great", "fine", "lovely", "superb"], ["bad", "dull", "awful", "poor", "weak"]


def sentiment_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """A learnable toy task: the review's adjective says the label."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        positive = rng.random() < 0.5
        word = rng.choice(POSITIVE if positive else NEGATIVE)
        out.append((f"Review: a {word} film\nSentiment:", " positive" if positive else " negative"))
    return out


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_bpe_tokenizer([p + r for p, r in sentiment_pairs(50, 0)])


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """Pretrained (briefly, fully) on the toy task, as a real LM would know its format."""
    return make_tiny_causal_llama_dir(tmp_path_factory.mktemp("lm") / "llama", pretrain=sentiment_pairs(200, 1))


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    for split, n, seed in (("train", 96, 2), ("validation", 24, 3)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in sentiment_pairs(n, seed)))
    return folder


def data_config(task, **kw):
    return SimpleNamespace(**{"task": str(task), "data_dir": None, "text_columns": None, "label_column": None, "task_type": "auto",
                              "prompt_column": None, "response_column": None, **kw})


# ---- encoding -------------------------------------------------------------------------------

def test_prompt_tokens_are_ignored_and_the_response_ends_with_eos(tokenizer):
    [row] = encode_prompt_response([{"prompt": "Review: a good film\nSentiment:", "response": " positive"}], tokenizer, 64)
    prompt = tokenizer("Review: a good film\nSentiment:")["input_ids"]
    response = tokenizer(" positive", add_special_tokens=False)["input_ids"]
    assert row["input_ids"] == prompt + response + [tokenizer.eos_token_id]
    assert row["labels"] == [IGNORE] * len(prompt) + response + [tokenizer.eos_token_id]
    assert row["prompt_length"] == len(prompt) and row["response"] == " positive"


def test_a_long_row_keeps_the_prompt_end_and_the_response_start():
    assert fit([1, 2, 3, 4, 5], [8, 9], 4, bos=None) == ([4, 5], [8, 9])
    assert fit([0, 2, 3, 4, 5], [8, 9], 5, bos=0) == ([0, 4, 5], [8, 9])  # the BOS stays
    assert fit([1, 2], [5, 6, 7, 8, 9], 4, bos=None) == ([2], [5, 6, 7])  # at least one prompt token
    assert fit([1, 2], [8], 4, bos=None) == ([1, 2], [8])


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_on_either_side_gives_each_row_its_unpadded_loss(tokenizer, side):
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         intermediate_size=64, vocab_size=len(tokenizer), initializer_range=0.2)).eval()
    rows = encode_prompt_response([{"prompt": "Review: a good film\nSentiment:", "response": " positive"},
                                   {"prompt": "Review: dull\nSentiment:", "response": " negative and long"}], tokenizer, 64)
    batch = CausalLMCollator(tokenizer, side)(rows)
    assert (batch["labels"] != IGNORE).sum() == sum(sum(t != IGNORE for t in r["labels"]) for r in rows)
    with torch.no_grad():
        padded = response_log_likelihood(model(**{k: v for k, v in batch.items() if k != "labels"}).logits, batch["labels"])
        for i, row in enumerate(rows):
            alone = CausalLMCollator(tokenizer)([row])
            ll, n = response_log_likelihood(model(input_ids=alone["input_ids"]).logits, alone["labels"])
            assert n.item() == padded[1][i].item()
            assert ll.item() == pytest.approx(padded[0][i].item(), abs=1e-5)


# ---- metrics --------------------------------------------------------------------------------

def test_exact_match_strips_whitespace_only():
    assert exact_match(["positive", " no\n", "Positive"], [" positive", "no", "positive"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_log_likelihood_on_a_hand_made_case():
    # vocab 2; logits favour token 1 by log 3: p(1) = 3/4, p(0) = 1/4
    logits = torch.tensor([[[0.0, math.log(3)]] * 4])
    labels = torch.tensor([[IGNORE, 1, 0, IGNORE]])  # scored: position 1 (token 1), position 2 (token 0)
    total, count = response_log_likelihood(logits, labels)
    assert count.tolist() == [2]
    assert total.item() == pytest.approx(math.log(3 / 4) + math.log(1 / 4))


def test_prior_of_a_posed_label_is_its_entropy_spread_over_word_and_eos():
    rows = [{"labels": [IGNORE, 5, 9]}, {"labels": [IGNORE, IGNORE, 6, 9]}]  # two words, always EOS (9) after
    assert prior_loss(rows, False) == pytest.approx(math.log(2) * 2 / 4)


def test_evaluation_equals_unpadded_greedy_decoding_and_the_model_loss(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    pairs = sentiment_pairs(5, 7) + [("Review: an odd , long and strange film\nSentiment:", " positive")]
    rows = encode_prompt_response([{"prompt": p, "response": r} for p, r in pairs], tok, 64)
    loader = torch.utils.data.DataLoader(rows, batch_size=4, collate_fn=CausalLMCollator(tok))
    result = evaluate_causal_lm(model, loader)
    hits, total, tokens = 0, 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = row["input_ids"][: row["prompt_length"]]
            for _ in range(3):  # the longest response is 2 tokens + EOS
                next_id = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
                if next_id == tok.eos_token_id:
                    break
                ids.append(next_id)
            hits += tok.decode(ids[row["prompt_length"]:]).strip() == row["response"].strip()
            n = sum(t != IGNORE for t in row["labels"])
            total -= model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]])).loss.item() * n
            tokens += n
    assert result["exact_match"] == pytest.approx(hits / len(rows))
    assert result["log_likelihood"] == pytest.approx(total / tokens, abs=1e-5)
    assert hits >= 4  # the pretrained toy model knows the task


# ---- tasks ----------------------------------------------------------------------------------

def test_task_type_auto_reads_the_file(tmp_path, toy_data):
    assert resolve_task_type(data_config(toy_data)) == "causal-lm"
    assert resolve_task_type(data_config("glue/sst2")) == "classification"
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("prompt,response,label\na,b,1\nc,d,0\n")
    assert resolve_task_type(data_config(labelled)) == "classification"
    other = tmp_path / "qa.jsonl"
    other.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n" for i in range(20)))
    task = load_task_for(data_config(other))
    assert task.is_causal_lm and task.metric == "exact_match" and len(task.dev) == 2  # a seeded 90/10 split
    assert all(set(r) == {"prompt", "response", "label", "idx"} and r["label"] == 0 and r["response"] == "a" + r["prompt"][1:]
               for r in task.train + task.dev)


def test_named_columns_and_missing_ones(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(20)))
    task = load_task_for(data_config(path, prompt_column="q", response_column="a"))
    assert {r["prompt"] for r in task.train + task.dev} == {f"q{i}" for i in range(20)}
    with pytest.raises(UserError, match="no prompt and response columns 'question' and 'a'"):
        load_task_for(data_config(path, prompt_column="question", response_column="a"))
    with pytest.raises(UserError, match="--prompt-column"):
        load_task_for(data_config(path, task_type="causal-lm"))


def test_a_classification_task_is_posed_as_prompt_and_label_word():
    task = TaskData("glue/rte", ("sentence1", "sentence2"), False, ["entailment", "not_entailment"],
                    [{"sentence1": "A cat sat.", "sentence2": "An animal sat.", "label": 0, "idx": 3}], [], "accuracy")
    posed = pose_as_causal_lm(task)
    assert posed.train == [{"prompt": "Premise: A cat sat.\nHypothesis: An animal sat.\nDoes the premise entail the hypothesis? Answer:",
                            "response": " yes", "label": 0, "idx": 3}]
    assert posed.metric == "exact_match" and posed.num_labels == 0
    mine = pose_as_causal_lm(TaskData("file:x.csv", ("review_text",), False, ["bad", "very_good"],
                                      [{"review_text": "{odd} text", "label": 1, "idx": 0}], [], "accuracy"))
    assert mine.train[0]["prompt"] == "Review text: {odd} text\nAnswer:" and mine.train[0]["response"] == " very good"
    with pytest.raises(UserError, match="regression"):
        pose_as_causal_lm(TaskData("glue/stsb", ("sentence1", "sentence2"), True, None, [], [], "pearson"))


# ---- end to end -----------------------------------------------------------------------------

def test_search_train_export_round_trip(tiny_lm_dir, toy_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from prunepeft.export.command import load_trained

    out = tmp_path / "run"
    assert main(["run", "--model", str(tiny_lm_dir), "--task", str(toy_data), "--max-length", "32", "--num-train-epochs", "1",
                 "--space", "lora-4:q,v,ffn_out", "--budget", "1200", "--warmup-samples", "32", "--learning-rate", "1e-2",
                 "--set", "search.learned_ratio=1.0", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task_type"] == "causal-lm" and metrics["metric"] == "exact_match" and metrics["head_params"] == 0
    assert set(metrics["metrics"]) == {"exact_match", "log_likelihood"} and metrics["trainable_params"] <= 1200
    assert "exact_match" in (out / "report.md").read_text()
    assert main(["export", str(out), "--format", "peft", "--out", str(tmp_path / "peft")]) == 0
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    supernet, tok, model_path, _ = load_trained(out)
    batch = CausalLMCollator(tok, "left", prompt_only=False)(
        encode_prompt_response([{"prompt": p, "response": r} for p, r in sentiment_pairs(3, 9)], tok, 32))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), str(tmp_path / "peft")).eval()
    pristine = AutoModelForCausalLM.from_pretrained(model_path).eval()
    with torch.no_grad():
        ours = supernet.model(**inputs).logits
        assert torch.allclose(ours, reloaded(**inputs).logits, atol=1e-5)
        assert not torch.allclose(ours, pristine(**inputs).logits, atol=1e-3)  # the units changed the model
    # the frozen LM head is the pretrained one: nothing but units was trained
    assert torch.equal(supernet.model.lm_head.weight, pristine.lm_head.weight)
    assert main(["export", str(out), "--format", "merged", "--out", str(tmp_path / "merged")]) == 0
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
        assert torch.allclose(ours, merged(**inputs).logits, atol=1e-4)


@pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")
def test_cli_trains_glue_sst2_posed_as_causal_lm(tiny_lm_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", str(tiny_lm_dir), "--task", "glue/sst2", "--data-dir", str(GLUE), "--task-type", "causal-lm",
                 "--method", "lora", "--rank", "2", "--max-train-samples", "48", "--max-eval-samples", "16", "--max-length", "48",
                 "--num-train-epochs", "1", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev_samples"] == 16 and 0.0 <= metrics["score"] <= 1.0 and metrics["metrics"]["log_likelihood"] < 0
    assert "glue/sst2: exact_match = " in capsys.readouterr().out


def test_user_errors_are_one_line_exit_2(tiny_lm_dir, toy_data, tmp_path, capsys):
    bert = make_tiny_bert_dir(tmp_path / "bert", layers=1)
    common = ["--method", "lora", "--max-length", "32", "--num-train-epochs", "1"]
    cases = [
        (["--model", str(bert), "--task", str(toy_data)], "is not a decoder-only language model"),
        (["--model", str(tiny_lm_dir), "--task", str(toy_data), "--prompt-column", "instruction"], "no prompt and response columns"),
        (["--model", str(tiny_lm_dir), "--task", str(toy_data), "--task-type", "causal"], "unknown --task-type"),
    ]
    for i, (args, message) in enumerate(cases):
        assert main(["train", *args, *common, "--output-dir", str(tmp_path / f"o{i}")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and not (tmp_path / f"o{i}").exists()
