"""`prunepeft train | baseline | export | config` end to end on a tiny BERT and real RTE pairs,
and the one-line exit-2 errors for bad input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tiny_model import GLUE, make_tiny_bert_dir

from prunepeft.cli import main
from prunepeft.space.units import load_configuration

pytestmark = pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert_dir(tmp_path_factory.mktemp("tiny") / "bert", layers=2)


def train_args(tiny_dir, out, *extra, task="glue/rte"):
    return ["train", "--model", str(tiny_dir), "--task", task, "--data-dir", str(GLUE), "--max-train-samples", "70",
            "--max-eval-samples", "37", "--max-length", "48", "--num-train-epochs", "2", "--output-dir", str(out), *extra]


@pytest.mark.parametrize("method, size_flag, units, params", [
    ("lora", ["--rank", "4"], 2, 2 * 2 * 4 * 64),
    ("dora", ["--rank", "4"], 2, 2 * 2 * (4 * 64 + 32)),
    ("adapter", ["--bottleneck", "8"], 2, 2 * (32 * 8 + 8 + 8 * 32 + 32)),
    ("parallel-adapter", ["--bottleneck", "8"], 2, 2 * (32 * 8 + 8 + 8 * 32 + 32)),
    ("bias", [], 2, 2 * (5 * 32 + 64)),  # BitFit: every projection's output (FFN 64) in each of the 2 layers
])
def test_train_baseline_writes_a_complete_run(tiny_dir, tmp_path, method, size_flag, units, params):
    out = tmp_path / method
    assert main(train_args(tiny_dir, out, "--method", method, *size_flag)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "glue/rte" and 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    # every dev example is scored once, even when the last train batch was short (70 = 2 x 32 + 6)
    assert metrics["dev_samples"] == 37
    correct = metrics["metrics"]["accuracy"] * 37
    assert abs(correct - round(correct)) < 1e-9
    assert metrics["trainable_params"] == params and metrics["head_params"] == 32 * 2 + 2
    assert metrics["backbone_params"] > 100 * params
    assert metrics["seconds"] > 0
    config = json.loads((out / "configuration.json").read_text())
    assert len(config["units"]) == units and {u["kind"] for u in config["units"]} == {method}
    epochs = [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    weights = load_file(str(out / "weights.safetensors"))
    assert sum(t.numel() for k, t in weights.items() if not k.startswith("head.")) == params
    assert json.loads((out / "config.json").read_text())["method"] == method


def test_same_seed_is_bit_reproducible(tiny_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(train_args(tiny_dir, a, "--method", "lora")) == 0
    assert main(train_args(tiny_dir, b, "--method", "lora")) == 0
    wa, wb = load_file(str(a / "weights.safetensors")), load_file(str(b / "weights.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "epochs.jsonl").read_text().count("train_loss") == 2


def test_train_a_saved_configuration_and_export_it_to_peft(tiny_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"units": [{"kind": "lora", "layer": 0, "size": 4}, {"kind": "lora", "layer": 1, "size": 2}]}))
    run = tmp_path / "run"
    assert main(train_args(tiny_dir, run, "--configuration", str(conf), task="glue/sst2")) == 0
    exported = tmp_path / "peft"
    assert main(["export", str(run), "--format", "peft", "--out", str(exported)]) == 0
    adapter_config = json.loads((exported / "adapter_config.json").read_text())
    assert "bert.encoder.layer.1.attention.self.query" in adapter_config["target_modules"]
    assert list(adapter_config["rank_pattern"].values()) == [2] or adapter_config["r"] == 2

    from prunepeft.export.command import load_trained

    ours, tokenizer, _, _ = load_trained(run)
    batch = tokenizer(["a gripping , funny film", "dull and lifeless"], return_tensors="pt", padding=True)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_dir, num_labels=2)
    theirs = PeftModel.from_pretrained(base, exported).eval()
    with torch.no_grad():
        assert torch.allclose(ours.model(**batch).logits, theirs(**batch).logits, atol=1e-5)

    merged = tmp_path / "merged"
    assert main(["export", str(run), "--format", "merged", "--out", str(merged)]) == 0
    plain = AutoModelForSequenceClassification.from_pretrained(merged).eval()
    with torch.no_grad():
        assert torch.allclose(ours.model(**batch).logits, plain(**batch).logits, atol=1e-5)
    assert AutoTokenizer.from_pretrained(merged) is not None


def test_export_reports_adapters_peft_cannot_hold(tiny_dir, tmp_path, capsys):
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"units": [{"kind": "lora", "layer": 0, "size": 4}, {"kind": "adapter", "layer": 1, "size": 8}]}))
    run = tmp_path / "run"
    assert main(train_args(tiny_dir, run, "--configuration", str(conf), "--num-train-epochs", "1")) == 0
    assert main(["export", str(run), "--format", "peft", "--out", str(tmp_path / "p")]) == 0
    assert "adapter-8@1" in capsys.readouterr().err  # a warning: through the "prunepeft" logger
    left = json.loads((tmp_path / "p" / "units_not_in_peft.json").read_text())
    assert left["units"] == [{"kind": "adapter", "layer": 1, "size": 8, "target": "ffn_out"}]
    assert main(["export", str(run), "--format", "merged", "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
    assert main(["export", str(run), "--format", "prunepeft", "--out", str(tmp_path / "own")]) == 0
    assert (tmp_path / "own" / "weights.safetensors").is_file()


def _bad_file(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make_args, message", [
    (lambda d, t: ["--method", "lora", "--task", "glue/nope"], "unknown glue task"),
    (lambda d, t: ["--method", "prefix"], "unknown --method"),
    (lambda d, t: ["--method", "lora", "--rank", "0"], "positive"),
    (lambda d, t: ["--configuration", str(t / "missing.json")], "does not exist"),
    (lambda d, t: ["--configuration", _bad_file(t, json.dumps({"units": [{"kind": "prefix", "layer": 0, "size": 4}]}), "c.json")], "unknown unit kind"),
    (lambda d, t: ["--configuration", _bad_file(t, json.dumps({"units": [{"kind": "lora", "layer": 9, "size": 4}]}), "c.json")], "does not exist, the model has 2 layers"),
    (lambda d, t: ["--method", "lora", "--task", _bad_file(t, "text,label\nfine,0\n"), "--label-column", "stars"], "stars"),
    (lambda d, t: ["--method", "lora", "--task", _bad_file(t, "text,label\n")], "no rows"),
    (lambda d, t: ["--method", "lora", "--task", _bad_file(t, '{"sentence": "ok", "label": 7}\n', "sst2.jsonl")], ""),
    (lambda d, t: ["--method", "lora", "--model", str(t)], "config.json"),
    (lambda d, t: ["--method", "lora", "--set", "train.nonsense=1"], "unknown config key"),
])
def test_bad_input_one_line_exit_2(tiny_dir, tmp_path, capsys, make_args, message):
    out = tmp_path / "out"
    args = train_args(tiny_dir, out) + make_args(tiny_dir, tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("prunepeft: error:") and message.lower() in err.lower() and "Traceback" not in err
    assert not (out / "metrics.json").exists()


def test_model_folder_without_weights(tmp_path, capsys, tiny_dir):
    empty = tmp_path / "noweights"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_dir / "config.json").read_text())
    assert main(train_args(tiny_dir, tmp_path / "o", "--method", "lora", "--model", str(empty))) == 2
    assert "no weights" in capsys.readouterr().err


def test_label_outside_glue_label_set(tmp_path, capsys, tiny_dir):
    task_dir = tmp_path / "glue" / "sst2"
    task_dir.mkdir(parents=True)
    (task_dir / "train.jsonl").write_text('{"sentence": "good", "label": 1, "idx": 0}\n{"sentence": "bad", "label": 5, "idx": 1}\n')
    (task_dir / "validation.jsonl").write_text('{"sentence": "fine", "label": 1, "idx": 0}\n')
    args = train_args(tiny_dir, tmp_path / "o", "--method", "lora", task="glue/sst2")
    args[args.index("--data-dir") + 1] = str(tmp_path / "glue")
    assert main(args) == 2
    assert "5" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(tmp_path, capsys, tiny_dir):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    assert main(train_args(tiny_dir, locked / "out", "--method", "lora")) == 2
    assert "cannot write" in capsys.readouterr().err


def test_unwritable_output_path_is_a_file(tmp_path, capsys, tiny_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(train_args(tiny_dir, blocker / "out", "--method", "lora")) == 2
    assert "cannot write to output directory" in capsys.readouterr().err


def test_console_script_exit_code_and_config_listing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "prunepeft", "train", "--method", "lora", "--task", "glue/nope",
                           "--output-dir", str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    listing = subprocess.run([sys.executable, "-m", "prunepeft", "config"], capture_output=True, text=True)
    assert listing.returncode == 0 and "search" in json.loads(listing.stdout)


def test_decoder_model_trains_and_exports(tmp_path):
    from tiny_model import make_tiny_llama_dir

    llama = make_tiny_llama_dir(tmp_path / "llama")
    out = tmp_path / "run"
    args = train_args(llama, out, "--method", "lora", "--rank", "4", "--num-train-epochs", "1")
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # q: 32 -> 32, v: 32 -> 16 (2 of 4 heads' width for key/value)
    assert metrics["trainable_params"] == 2 * (4 * (32 + 32) + 4 * (32 + 16))
    assert main(["export", str(out), "--format", "peft", "--out", str(tmp_path / "p")]) == 0
    assert "model.layers.0.self_attn.v_proj" in json.loads((tmp_path / "p" / "adapter_config.json").read_text())["target_modules"]


def test_equal_budget_baselines_lora_all_and_adalora(tiny_dir, tmp_path, capsys):
    """lora-all fills the budget with ranks on every linear; AdaLoRA (trained by peft) ends within one
    rank triplet below it and reports the parameters it kept; its run folder already holds the peft adapter."""
    out = tmp_path / "all"
    assert main(train_args(tiny_dir, out, "--method", "lora-all", "--budget", "3000")) == 0
    units = load_configuration(out / "configuration.json")
    assert {u.target for u in units} == {"q", "k", "v", "o", "ffn_in", "ffn_out"}
    used = json.loads((out / "metrics.json").read_text())["trainable_params"]
    assert 3000 - 96 < used <= 3000  # no module's next rank (64 or 96 params here) would still fit

    out = tmp_path / "adalora"
    assert main(train_args(tiny_dir, out, "--method", "adalora", "--budget", "3000")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_params"] < metrics["allocated_params"] and metrics["method"] == "adalora"
    largest_triplet = 32 + 64 + 1  # an FFN linear's (32 -> 64) column of A, row of B and its E
    assert 3000 - largest_triplet < metrics["trainable_params"] <= 3000
    assert (out / "adalora" / "adapter_config.json").is_file()
    assert main(["export", str(out), "--format", "peft", "--out", str(tmp_path / "x")]) == 2
    assert "AdaLoRA" in capsys.readouterr().err


def test_full_finetune_saves_reloads_and_exports(tiny_dir, tmp_path, capsys):
    """--method full trains the whole backbone: its weights are saved once each (safetensors refuses
    shared tensors), reload into the same predictions, and export as a plain HF model."""
    from transformers import AutoModelForSequenceClassification

    from prunepeft.config import from_dict
    from prunepeft.export.command import load_trained
    from prunepeft.session import open_session
    from prunepeft.train.loop import evaluate

    run = tmp_path / "full"
    assert main(train_args(tiny_dir, run, "--method", "full", "--num-train-epochs", "1", "--set", "train.full_learning_rate=1e-3")) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_units"] == 0 and metrics["trainable_params"] == metrics["backbone_params"] > 0
    saved = load_file(str(run / "weights.safetensors"))
    assert {k.split(".")[0] for k in saved} == {"head", "model"}
    assert sum(t.numel() for k, t in saved.items() if k.startswith("model.")) == metrics["backbone_params"]

    supernet, _, _, _ = load_trained(run)
    pristine = AutoModelForSequenceClassification.from_pretrained(tiny_dir, num_labels=2)
    trained = dict(supernet.backbone_named_parameters())
    assert all(torch.equal(p, saved[f"model.{n}"]) for n, p in trained.items())
    assert not torch.equal(trained["bert.encoder.layer.0.attention.self.query.weight"],
                           pristine.get_parameter("bert.encoder.layer.0.attention.self.query.weight"))  # it did train
    session = open_session(from_dict(json.loads((run / "config.json").read_text())))
    dev = session.loader(session.dev_encoded, train=False)
    assert evaluate(supernet.model, dev, session.task) == metrics["metrics"]

    assert main(["export", str(run), "--format", "peft", "--out", str(tmp_path / "p")]) == 2
    assert "full fine-tune" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "merged", "--out", str(tmp_path / "m")]) == 0
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    batch = session.tokenizer(["a gripping , funny film", "dull and lifeless"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(plain(**batch).logits, supernet.model(**batch).logits)
