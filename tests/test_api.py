"""The Python API on a tiny BERT and in-memory rows: results as objects, `load` giving the run's
logits back for a mixed configuration, one UserError for a damaged run folder, trackers, logging."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from tiny_model import make_tiny_bert_dir

import prunepeft
from prunepeft.errors import UserError

pytestmark = pytest.mark.usefixtures("tiny_env")

POSITIVE = ["a gripping , funny film", "warm and wise", "a delight from start to finish", "smart , moving and beautifully acted",
            "one of the best films of the year", "charming and sharp"]
NEGATIVE = ["dull and lifeless", "a tedious mess", "boring , predictable and far too long", "the plot makes no sense",
            "a waste of a good cast", "flat and lifeless from the first scene"]
# a mixed configuration: LoRA of two ranks on different targets, DoRA, a serial and a parallel adapter
MIXED = ["lora-4:q@0", "lora-2:v@1", "lora-2:q+v@1", "dora-2:o@0", "adapter-8@1", "parallel-adapter-4@0"]


def rows(n: int = 48, text: str = "text") -> list[dict]:
    out = []
    for i in range(n):
        label = i % 2
        words = (POSITIVE if label else NEGATIVE)[i % 6]
        out.append({text: f"{words} {i}", "label": ["neg", "pos"][label]})
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert_dir(tmp_path_factory.mktemp("tiny") / "bert", layers=2)


def fast(tiny_dir, **kw):
    return dict(model=str(tiny_dir), max_length=24, num_train_epochs=1, per_device_train_batch_size=8, **kw)


def logits(model, tokenizer, texts):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def test_make_config_takes_short_names_dotted_keys_and_a_runconfig():
    cfg = prunepeft.make_config(budget=5000, space="lora-4:q,v adapter-8", seed=3, learning_rate=1e-3, **{"train.warmup_ratio": 0.2})
    assert cfg.search.budget == "5000" and cfg.search.space == ["lora-4:q,v", "adapter-8"]
    assert cfg.seed == 3 and cfg.train.learning_rate == 1e-3 and cfg.train.warmup_ratio == 0.2
    again = prunepeft.make_config(cfg, seed=4)
    assert again.seed == 4 and cfg.seed == 3  # the RunConfig given is copied, not changed
    with pytest.raises(UserError, match="unknown setting 'budgett'"):
        prunepeft.make_config(budgett=1)


def test_train_returns_the_model_and_load_gives_its_logits_back(tiny_dir, tmp_path):
    data = rows()
    result = prunepeft.train(MIXED, data, output_dir=tmp_path / "run", **fast(tiny_dir))
    assert result.configuration == sorted(prunepeft.Unit.parse(n) for n in MIXED)
    assert result.run_dir == tmp_path / "run" and 0 <= result.score <= 1
    assert result.metrics["label_names"] == ["neg", "pos"] and result.model.config.id2label == {0: "neg", 1: "pos"}
    texts = [r["text"] for r in result.task.dev]
    expected = logits(result.model, result.tokenizer, texts)
    loaded = prunepeft.load(tmp_path / "run")
    assert torch.equal(logits(loaded, result.tokenizer, texts), expected)
    # the run's own dev score, recomputed from the loaded model on the same rows
    dev = [{"text": r["text"], "label": ["neg", "pos"][r["label"]]} for r in result.task.dev]
    assert prunepeft.evaluate(loaded, dev, tokenizer=result.tokenizer, max_length=24) == result.metrics["metrics"]
    assert result.evaluate(dev) == result.metrics["metrics"]


def test_in_memory_model_and_dataset_like_data(tiny_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    class FakeDataset(list):  # what the API reads of a datasets.Dataset: column_names and to_list()
        column_names = ["sentence", "label"]

        def to_list(self):
            return list(self)

    model = AutoModelForSequenceClassification.from_pretrained(tiny_dir, num_labels=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    data = {"train": FakeDataset(rows(40, "sentence")), "validation": FakeDataset(rows(12, "sentence"))}
    result = prunepeft.train(["lora-4:q@0", "adapter-8@1"], data, model=model, tokenizer=tokenizer, max_length=24, num_train_epochs=1)
    assert result.run_dir is None and result.metrics["dev_samples"] == 12
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the caller's model is not changed
    with pytest.raises(UserError, match="3 output labels"):
        prunepeft.train(["lora-4:q@0"], data, model=AutoModelForSequenceClassification.from_pretrained(tiny_dir, num_labels=3),
                        tokenizer=tokenizer)


def test_search_and_run_return_objects_and_report_to_csv(tiny_dir, tmp_path):
    data = rows(64)
    found = prunepeft.search(data, space=["lora-4:q,v,o,ffn_in,ffn_out"], budget="1.2k", warmup_samples=16, **fast(tiny_dir))
    assert found.model is None and found.run_dir is None
    assert sum(prunepeft.Unit.parse(n) in found.configuration for n in found.metrics["units"]) == len(found.configuration)
    assert found.metrics["trainable_params"] <= 1200
    done = prunepeft.run(data, space=["lora-4:q,v,o,ffn_in,ffn_out"], budget="1.2k", warmup_samples=16, output_dir=tmp_path / "run",
                         report_to="csv", **fast(tiny_dir))
    assert done.configuration == found.configuration and done.model is not None
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["task"] == "in-memory"
    tracked = (tmp_path / "run" / "tracking.csv").read_text().splitlines()
    assert tracked[0] == "step,name,value" and any(",search/trainable_params," in line for line in tracked)
    assert any(",dev/accuracy," in line for line in tracked) and any(",final/score," in line for line in tracked)


def test_report_to_refuses_what_is_not_here(tiny_dir, tmp_path):
    with pytest.raises(UserError, match="wandb: not supported here"):
        prunepeft.train(["lora-4:q@0"], rows(), output_dir=tmp_path / "r", report_to="wandb", **fast(tiny_dir))
    with pytest.raises(UserError, match="needs an output_dir"):
        prunepeft.train(["lora-4:q@0"], rows(), report_to="csv", **fast(tiny_dir))


def reshaped(path):
    """The same tensor names, one of them with another shape: weights of another model."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    name = next(k for k in tensors if "lora_A" in k)
    tensors[name] = torch.zeros(tensors[name].shape[0], tensors[name].shape[1] + 1)
    save_file(tensors, str(path))


@pytest.fixture(scope="module")
def finished_run(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    prunepeft.train(["lora-4:q@0", "adapter-8@1"], rows(), output_dir=out, **fast(tiny_dir))
    return out


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "weights.safetensors").unlink(), "missing weights.safetensors"),
    (lambda d: (d / "metrics.json").write_text("{not json"), "metrics.json cannot be read"),
    (lambda d: (d / "weights.safetensors").write_bytes((d / "weights.safetensors").read_bytes()[:200]), "weights.safetensors cannot be read"),
    (lambda d: (d / "configuration.json").write_text(json.dumps({"units": [{"kind": "lora", "layer": 1, "size": 4}]})), "lack"),
    (lambda d: reshaped(d / "weights.safetensors"), "does not fit"),
    (lambda d: (d / "config.json").write_text(json.dumps({"no_such_key": 1})), "unknown config key"),
])
def test_load_of_a_damaged_run_is_one_user_error(finished_run, tmp_path, damage, message):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    damage(run)
    with pytest.raises(UserError, match=message) as e:
        prunepeft.load(run)
    assert str(run) in str(e.value)


def test_load_of_a_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prunepeft.load(tmp_path / "nothing")


def test_status_lines_go_through_the_prunepeft_logger(tiny_dir, tmp_path, capsys):
    from prunepeft.cli import main

    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"units": [{"kind": "lora", "layer": 0, "size": 4}]}))
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows(40)))
    args = ["train", "--model", str(tiny_dir), "--task", str(tmp_path / "data.jsonl"), "--configuration", str(conf), "--max-length", "24",
            "--num-train-epochs", "1"]
    assert main([*args, "--output-dir", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "training 1 units" in err and "epoch 1" in err and out.count("\n") == 1  # stdout: the result line only
    assert main([*args, "--output-dir", str(tmp_path / "b"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "accuracy" in out
    assert logging.getLogger("prunepeft").level == logging.WARNING


def test_cli_report_to(tiny_dir, tmp_path, capsys):
    from accelerate.utils import is_tensorboard_available

    from prunepeft.cli import main

    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows(40)))
    args = ["train", "--model", str(tiny_dir), "--task", str(tmp_path / "data.jsonl"), "--method", "lora", "--rank", "2", "--max-length", "24",
            "--num-train-epochs", "2", "--quiet"]
    assert main([*args, "--output-dir", str(tmp_path / "csv"), "--report-to", "csv"]) == 0
    tracked = (tmp_path / "csv" / "tracking.csv").read_text()
    assert "1,train/loss," in tracked and "2,dev/accuracy," in tracked
    if not is_tensorboard_available():  # not installed on this machine: one clear line, exit 2
        capsys.readouterr()
        assert main([*args, "--output-dir", str(tmp_path / "tb"), "--report-to", "tensorboard"]) == 2
        assert "tensorboard package is not installed" in capsys.readouterr().err


def test_a_model_built_in_code_loads_back_with_base_model(tiny_dir, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                                     vocab_size=30522, max_position_embeddings=64, num_labels=2))
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    with pytest.raises(UserError, match="pass tokenizer="):
        prunepeft.train(["lora-4:q@0"], rows(), model=model)
    result = prunepeft.train(["lora-4:q@0", "adapter-8@1"], rows(), model=model, tokenizer=tokenizer, output_dir=tmp_path / "run",
                             max_length=24, num_train_epochs=1)
    loaded = prunepeft.load(tmp_path / "run", base_model=model)
    texts = [r["text"] for r in result.task.dev]
    assert torch.equal(logits(loaded, tokenizer, texts), logits(result.model, tokenizer, texts))


def test_in_memory_rows_follow_the_file_rules_for_classes():
    from prunepeft.data.memory import task_from_memory

    with pytest.raises(UserError, match="only one class"):
        task_from_memory([{"text": f"fine {i}", "label": 1} for i in range(20)])
    rows = {"train": [{"text": f"t{i}", "label": i % 2} for i in range(20)], "validation": [{"text": "d", "label": 2}]}
    with pytest.raises(UserError, match="no training row has"):
        task_from_memory(rows)
