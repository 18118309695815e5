"""Two real processes (torchrun, accelerate launch; gloo on CPU) against one, on a tiny BERT.

The comparison is at the same GLOBAL batch: one process with batch 32 against two with 16 each.
accelerate gives process p the batches p, p+2, ... of the same ordered loader, so a global step
sees the same 32 examples either way. The tiny model has no dropout: with dropout each process
would draw its own masks and the runs could not be compared. What may still differ:
- sums in another order (DDP averages two half-batch gradients): scores agree to ~1e-6;
- the activation criterion's mean |delta| is over padded positions, and each process pads its
  micro-batch to its own longest row: ~1e-3 relative, hence its looser tolerance below.
The warm-up's criteria run one per process on the whole subset, at the global batch, exactly
as one process runs them, so the strategy must be identical.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_model import GLUE, make_tiny_bert_dir

from prunepeft.cli import main
from prunepeft.space.units import load_configuration

pytestmark = pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")

SRC = Path(__file__).resolve().parents[1] / "src"
SCORE_RTOL = {"activation": 1e-2}  # padding differs per micro-batch (module docstring)
DEFAULT_RTOL = 1e-4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert_dir(tmp_path_factory.mktemp("tiny") / "bert", layers=4, dropout=0.0)


def common_args(tiny_dir):
    return ["--model", str(tiny_dir), "--task", "glue/sst2", "--data-dir", str(GLUE), "--max-train-samples", "96",
            "--max-eval-samples", "40", "--max-length", "32", "--learning-rate", "1e-2"]


def search_args(tiny_dir, out, batch):
    # as tests/test_search.py: 8 units (4,256 params), budget 2,000, hybrid strategy with a 2-turn warm-up
    return ["search", *common_args(tiny_dir), "--space", "lora-4", "adapter-8", "--budget", "2000", "--warmup-samples", "32",
            "--warmup-turns", "2", "--set", "search.learned_ratio=1.0", "--per-device-train-batch-size", str(batch),
            "--output-dir", str(out)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(launcher: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", *launcher, "-m", "prunepeft", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def torchrun(args, cwd):
    return launch(["torch.distributed.run", "--standalone", "--nproc_per_node", "2"], args, cwd)


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_search_like_one_at_the_same_global_batch(tiny_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(search_args(tiny_dir, one, 32)) == 0
    proc = torchrun(search_args(tiny_dir, two, 16), tmp_path)

    assert load_configuration(two / "configuration.json") == load_configuration(one / "configuration.json")
    s1, s2 = (json.loads((d / "strategy.json").read_text()) for d in (one, two))
    assert (s2["strategy"], s2["tendency"]) == (s1["strategy"], s1["tendency"])
    for criterion, pruned in s1["warmup_pruned"].items():  # near-equal activation scores may swap order (padding)
        same = sorted if criterion in SCORE_RTOL else list
        assert same(s2["warmup_pruned"][criterion]) == same(pruned), criterion
    t1, t2 = lines(one / "trace.jsonl"), lines(two / "trace.jsonl")
    assert [r["pruned"] for r in t2] == [r["pruned"] for r in t1]  # one line per round: written once
    for r1, r2 in zip(t1, t2):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=DEFAULT_RTOL)
        for criterion, scores in r1["scores"].items():
            assert r2["scores"][criterion] == pytest.approx(scores, rel=SCORE_RTOL.get(criterion, DEFAULT_RTOL), abs=1e-12), criterion
    assert json.loads((two / "search.json").read_text())["schedule"] == json.loads((one / "search.json").read_text())["schedule"]
    # one set of files (no second writer's leftovers), and each line printed once
    assert files(two) == files(one)
    assert (proc.stdout + proc.stderr).count("round 1: pruned") == 1  # status lines go to stderr through logging


def test_accelerate_launch_trains_one_epoch_of_global_steps(tiny_dir, tmp_path):
    """accelerate 1.15 starts several local processes only through its torchrun launcher (a config
    with distributed_type MULTI_GPU, or --multi_gpu); on a machine without GPUs prunepeft then runs
    them on the CPU with gloo (README, "Several processes")."""
    config = tmp_path / "two_cpu_processes.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_machines: 1\nmachine_rank: 0\n"
                      "num_processes: 2\nmixed_precision: 'no'\ngpu_ids: all\n")
    out = tmp_path / "lora"
    args = ["train", "--method", "lora", *common_args(tiny_dir), "--budget", "2000", "--num-train-epochs", "1",
            "--per-device-train-batch-size", "16", "--output-dir", str(out)]
    launch(["accelerate.commands.launch", "--config_file", str(config), "--main_process_port", str(free_port())], args, tmp_path)
    epochs = lines(out / "epochs.jsonl")
    assert len(epochs) == 1 and epochs[0]["steps"] == 3  # 96 examples / (2 processes x 16)
    assert files(out) == {"config.json", "configuration.json", "epochs.jsonl", "metrics.json", "weights.safetensors"}
    assert json.loads((out / "metrics.json").read_text())["dev_samples"] == 40


# ---------------------------------------------------------------- the parts, in one process

def _stats_after(supernet, batches, case):
    """Statistics of forward+backward on `batches` (no optimiser step: the weights stay put)."""
    supernet.set_trainable()
    supernet.model.train()
    supernet.start_statistics(activation=True, gradients=True)
    for seed in batches:
        out = supernet.model(**case.inputs(batch=2, seed=seed), labels=case.labels(batch=2, seed=seed))
        out.loss.backward()
        supernet.accumulate_gradients()
        supernet.model.zero_grad(set_to_none=True)
    supernet.stop_statistics()


def test_reduced_statistics_are_those_of_all_the_steps(bert_case):
    """Two "processes" (two copies of one supernet, each with its own batch) summed by
    reduce_statistics hold what one supernet holds after both batches."""
    from prunepeft.space.units import Unit

    units = [Unit(0, "lora", 4), Unit(1, "adapter", 8), Unit(2, "lora", 2, "v")]
    copies = []
    for _ in range(3):
        sn = bert_case.supernet()
        torch.manual_seed(0)  # the same unit weights in each copy
        for u in units:
            sn.add(u)
        bert_case.perturb_units(sn)  # B != 0, so every tensor has a gradient
        sn.removal_statistics = True
        copies.append(sn)
    first, second, both = copies
    _stats_after(first, [1], bert_case)
    _stats_after(second, [2], bert_case)
    _stats_after(both, [1, 2], bert_case)
    flats = []
    second.reduce_statistics(lambda t: flats.append(t) or t)  # what the second process contributes
    first.reduce_statistics(lambda t: t + flats[0])
    got, want = first.unit_stats(), both.unit_stats()
    for u in units:
        assert got[u].mean_abs_activation == pytest.approx(want[u].mean_abs_activation, rel=1e-6)
        assert got[u].removal_effect > 0 and got[u].removal_effect == pytest.approx(want[u].removal_effect, rel=1e-6)
        for g, w in zip(got[u].mean_grads, want[u].mean_grads):
            assert torch.allclose(g, w, rtol=1e-5, atol=1e-9)


def test_deltas_keep_unit_order_whatever_was_removed_and_added_back(bert_case):
    """Processes that pruned different units in the warm-up and added them back must end with
    the same parameter order (DDP pairs parameters by position)."""
    from prunepeft.space.units import Unit

    units = [Unit(0, "lora", 4), Unit(0, "lora", 2), Unit(0, "dora", 2), Unit(1, "lora", 4)]
    fresh, churned = bert_case.supernet(), bert_case.supernet()
    for u in units:
        fresh.add(u)
        churned.add(u)
    for u in (units[0], units[2]):
        churned.remove(u)
    churned.add(units[2])
    churned.add(units[0])
    assert [n for n, _ in churned.model.named_parameters()] == [n for n, _ in fresh.model.named_parameters()]


def test_accelerate_launch_cpu_with_several_processes_is_refused(monkeypatch):
    from prunepeft import distributed
    from prunepeft.errors import UserError

    # what `accelerate launch --cpu --num_processes 2` leaves to its single process
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="--multi_gpu --num_processes N"):
        distributed._check_launch()
    monkeypatch.setenv("WORLD_SIZE", "2")  # started by torchrun: fine
    distributed._check_launch()
