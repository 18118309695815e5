"""Runs that stop early: a non-finite loss or score ends the run loudly, a folder that did not
finish says so (and report/export refuse it), files follow the user's umask, JSON holds no NaN."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tiny_model import GLUE, make_tiny_bert_dir
from transformers import BertForSequenceClassification

from prunepeft.cli import main
from prunepeft.criteria.scores import score_units
from prunepeft.errors import UserError
from prunepeft.io import append_jsonl, write_json
from prunepeft.space.units import Unit

pytestmark = pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_bert_dir(tmp_path_factory.mktemp("tiny") / "bert", layers=2)


def args(tiny, out, *extra):
    return ["train", "--method", "lora", "--model", str(tiny), "--task", "glue/rte", "--data-dir", str(GLUE), "--max-train-samples", "64",
            "--max-eval-samples", "16", "--max-length", "32", "--num-train-epochs", "2", "--per-device-train-batch-size", "16",
            "--output-dir", str(out), *extra]


def break_forward_at(monkeypatch, step: int, make):
    """Make the classifier's forward pass go wrong at the given call: `make(output)` returns the replacement."""
    original, calls = BertForSequenceClassification.forward, {"n": 0}

    def forward(self, *a, **kw):
        out = original(self, *a, **kw)
        if self.training:
            calls["n"] += 1
            if calls["n"] == step:
                return make(out)
        return out

    monkeypatch.setattr(BertForSequenceClassification, "forward", forward)


def nan_loss(out):
    out.loss = out.loss * float("nan")
    return out


def test_nan_loss_at_the_first_step_stops_loudly_and_leaves_nothing(tiny, tmp_path, monkeypatch, capsys):
    break_forward_at(monkeypatch, 1, nan_loss)
    assert main(args(tiny, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # the rest are progress lines of the training that started
    assert len(errors) == 1 and errors[0].startswith("prunepeft: error: train: the training loss became nan at epoch 1, step 1")
    assert "--learning-rate" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_nan_loss_in_the_second_epoch_leaves_a_folder_marked_incomplete(tiny, tmp_path, monkeypatch, capsys):
    break_forward_at(monkeypatch, 6, nan_loss)  # 64 rows / 16 = 4 steps per epoch: step 2 of epoch 2
    out = tmp_path / "out"
    assert main(args(tiny, out)) == 2
    assert "epoch 2, step 6" in capsys.readouterr().err
    assert "stopped: UserError" in (out / "INCOMPLETE").read_text()
    assert not (out / "metrics.json").exists() and not (out / "weights.safetensors").exists()
    for line in (out / "epochs.jsonl").read_text().splitlines():
        assert "NaN" not in line and "Infinity" not in line
    assert main(["report", str(out)]) == 2 and "did not finish" in capsys.readouterr().err
    assert main(["export", str(out), "--out", str(tmp_path / "p")]) == 2 and "did not finish" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_ctrl_c_marks_the_folder_and_a_rerun_clears_it(tiny, tmp_path, monkeypatch, capsys):
    def interrupt(out):
        raise KeyboardInterrupt

    break_forward_at(monkeypatch, 6, interrupt)
    out = tmp_path / "out"
    assert main(args(tiny, out)) == 130
    assert "interrupted (Ctrl-C)" in (out / "INCOMPLETE").read_text()
    monkeypatch.undo()
    assert main(args(tiny, out)) == 0
    assert not (out / "INCOMPLETE").exists() and (out / "metrics.json").is_file()
    assert main(["report", str(out)]) == 0


def test_files_follow_the_umask(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(args(tiny, tmp_path / "out", "--num-train-epochs", "1")) == 0
    finally:
        os.umask(old)
    for name in ("metrics.json", "config.json", "configuration.json", "weights.safetensors"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name


def test_a_non_finite_criterion_score_names_the_round_and_unit(monkeypatch):
    import prunepeft.criteria.scores as scores

    unit = Unit(1, "lora", 4, "q")
    monkeypatch.setattr(scores, "score", lambda name, st, threshold: float("inf"))
    with pytest.raises(UserError, match=r"round 3: criterion 'weight' gave unit lora-4:q@1 the score inf"):
        score_units("weight", {unit: None}, 1e-3, "round 3")


def test_json_files_never_hold_nan(tmp_path):
    write_json(tmp_path / "m.json", {"score": float("nan"), "per": [1.0, float("inf")], "ok": 0.5})
    append_jsonl(tmp_path / "e.jsonl", {"loss": float("-inf")})
    assert json.loads((tmp_path / "m.json").read_text()) == {"score": None, "per": [1.0, None], "ok": 0.5}
    assert json.loads((tmp_path / "e.jsonl").read_text()) == {"loss": None}
    torch.testing.assert_close(torch.tensor(0.5), torch.tensor(json.loads((tmp_path / "m.json").read_text())["ok"]))
