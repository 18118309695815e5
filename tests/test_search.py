"""The search end to end on a tiny BERT and real SST-2 sentences: budget, determinism, resume
after a real kill, strategy reuse, ablation modes, and the user errors of the search flags."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_model import GLUE, make_tiny_bert_dir

from prunepeft.cli import main
from prunepeft.space.units import Unit, load_configuration

pytestmark = pytest.mark.skipif(not GLUE.is_dir(), reason="needs ../shared/data/glue")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_bert_dir(tmp_path_factory.mktemp("tiny") / "bert", layers=4)


def search_args(tiny_dir, out, *extra):
    # 4 layers x (lora-4: 512 params, adapter-8: 600 params) = 4,448; budget 2,000
    return ["search", "--model", str(tiny_dir), "--task", "glue/sst2", "--data-dir", str(GLUE),
            "--max-train-samples", "96", "--max-eval-samples", "32", "--max-length", "32",
            "--space", "lora-4", "adapter-8", "--budget", "2000", "--warmup-samples", "32",
            "--warmup-turns", "2", "--output-dir", str(out), "--learning-rate", "1e-2",
            "--set", "search.learned_ratio=1.0", *extra]  # a tiny random model hardly learns: a lower bar


def run_args(tiny_dir, out, *extra):
    return ["run", *search_args(tiny_dir, out, *extra)[1:]]


def trace_without_time(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


def test_search_meets_budget_and_writes_results(tiny_dir, tmp_path):
    out = tmp_path / "run"
    assert main(search_args(tiny_dir, out)) == 0
    units = load_configuration(out / "configuration.json")
    config = json.loads((out / "configuration.json").read_text())
    assert config["trainable_params"] <= 2000
    assert 0 < len(units) < 8
    trace = trace_without_time(out)
    assert trace[-1]["trainable_params"] == config["trainable_params"]
    assert all(len(r["pruned"]) <= 4 for r in trace)
    # every round's pruned units are gone from the next round's alive set
    for before, after in zip(trace, trace[1:]):
        assert set(after["alive"]) == set(before["alive"]) - set(before["pruned"])
    assert {u.name for u in units} == set(trace[-1]["alive"]) - set(trace[-1]["pruned"])
    strategy = json.loads((out / "strategy.json").read_text())
    assert set(strategy["strategy"]) == {f"{f}/b{b}" for f in ("lora-4", "adapter-8") for b in range(4)}
    assert abs(sum(trace[0]["hybrid"].values()) - 1.0) < 1e-9


def test_same_seed_gives_identical_trace(tiny_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(search_args(tiny_dir, a, "--strategy", "taylor")) == 0
    assert main(search_args(tiny_dir, b, "--strategy", "taylor")) == 0
    assert trace_without_time(a) == trace_without_time(b)


def test_resume_after_kill_equals_uninterrupted_run(tiny_dir, tmp_path):
    extra = ("--prune-per-round", "1", "--search-cost", "3", "--strategy", "gradient")
    full = tmp_path / "full"
    assert main(search_args(tiny_dir, full, *extra)) == 0
    rounds = len(trace_without_time(full))
    assert rounds >= 3

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prunepeft", *search_args(tiny_dir, killed, *extra)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "search_state.json"
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the search finished before it could be killed"
    done = json.loads(state.read_text())["round"]
    assert 1 <= done < rounds
    assert not (killed / "search.json").exists()

    assert main(search_args(tiny_dir, killed, *extra, "--resume")) == 0
    assert load_configuration(killed / "configuration.json") == load_configuration(full / "configuration.json")
    assert trace_without_time(killed) == trace_without_time(full)


def test_strategy_reuse_skips_warmup(tiny_dir, tmp_path):
    first = tmp_path / "first"
    assert main(search_args(tiny_dir, first)) == 0
    second = tmp_path / "second"
    assert main(search_args(tiny_dir, second, "--strategy-from", str(first))) == 0
    assert json.loads((second / "strategy.json").read_text())["strategy"] == json.loads((first / "strategy.json").read_text())["strategy"]
    assert json.loads((second / "search.json").read_text())["warmup_seconds"] < 0.1  # reading the strategy, no training


@pytest.mark.parametrize("strategy", ["random", "hybrid-global", "removal"])
def test_ablation_strategies_meet_budget(tiny_dir, tmp_path, strategy):
    out = tmp_path / strategy
    assert main(search_args(tiny_dir, out, "--strategy", strategy, "--fidelity", "low")) == 0
    assert json.loads((out / "configuration.json").read_text())["trainable_params"] <= 2000
    if strategy == "removal":  # every round scored every alive unit from its own collected loss change
        for record in trace_without_time(out):
            assert set(record["scores"]["removal"]) == set(record["alive"])
            assert all(v > 0 for v in record["scores"]["removal"].values())


def test_low_fidelity_warms_up_on_the_shared_turn_unless_told_otherwise(tiny_dir, tmp_path):
    """--fidelity low: one warm-up turn by default (the second turn's floor alone would exceed its
    cost); an explicit --warmup-turns is honoured."""
    args = search_args(tiny_dir, tmp_path / "x", "--fidelity", "low")
    at = args.index("--warmup-turns")
    default = args[:at] + args[at + 2:]
    for out, argv, turns in ((tmp_path / "default", default, 1), (tmp_path / "two", args, 2)):
        argv[argv.index("--output-dir") + 1] = str(out)
        assert main(argv) == 0
        assert json.loads((out / "search.json").read_text())["schedule"]["turns"] == turns
        warmup_examples = json.loads((out / "strategy.json").read_text())["warmup_examples"]
        assert (warmup_examples == 0) == (turns == 1)


def test_a_round_whose_supernet_is_back_at_the_prior_is_said(tiny_dir, tmp_path, monkeypatch, capsys):
    """The shared turn guarantees a learned supernet for round 1 only; a later round that trains at
    the label prior's loss is flagged in the trace, counted in search.json and warned about."""
    from prunepeft.search import loop

    real_train = loop.train

    def train_rounds_at_prior(*args, desc="", **kwargs):
        history = real_train(*args, desc=desc, **kwargs)
        if desc.startswith("round"):
            history[-1]["tail_loss"] = 99.0  # far above any prior: not learned
        return history

    monkeypatch.setattr(loop, "train", train_rounds_at_prior)
    out = tmp_path / "prior"
    assert main(search_args(tiny_dir, out)) == 0
    trace = trace_without_time(out)
    assert len(trace) >= 2 and trace[0]["learned"] is True  # round 1 scores the shared turn's supernet
    assert all(r["learned"] is False for r in trace[1:])
    assert json.loads((out / "search.json").read_text())["rounds_not_learned"] == len(trace) - 1
    assert capsys.readouterr().err.count("back near the loss of predicting the label prior") == len(trace) - 1  # a warning


def test_a_search_whose_shared_turn_stays_at_the_prior_retries_at_a_third_of_the_rate_and_keeps_it(tiny_dir, tmp_path, monkeypatch,
                                                                                                      capsys):
    """The first try of the shared turn stays at the label prior (forced here); the search retries
    it at a third of the rate, trains its warm-up turns and rounds at that rate too, says so, and a
    resumed search keeps training at it."""
    from prunepeft.search import loop, warmup_run

    real_train, rates = loop.train, []

    def train(*args, desc="", **kwargs):
        rates.append((desc, args[2].learning_rate))
        if desc.startswith("round 3"):
            raise KeyboardInterrupt  # killed after round 2's checkpoint
        history = real_train(*args, desc=desc, **kwargs)
        if desc == "shared turn (until learned)":
            history[-1]["tail_loss"] = 99.0  # far above any prior: not learned
        return history

    monkeypatch.setattr(loop, "train", train)
    monkeypatch.setattr(warmup_run, "train", train)
    out = tmp_path / "retry"
    extra = ("--prune-per-round", "1", "--search-cost", "3")
    assert main(search_args(tiny_dir, out, *extra)) == 130  # interrupted
    assert "retrying from fresh units at 0.333 x the search's learning rate" in capsys.readouterr().err
    assert [d for d, _ in rates[:2]] == ["shared turn (until learned)", "shared turn (until learned), retry"]
    assert rates[0][1] == pytest.approx(1e-2) and all(lr == pytest.approx(1e-2 / 3) for _, lr in rates[1:])
    assert any(d.startswith("warm-up") for d, _ in rates) and any(d.startswith("round 2") for d, _ in rates)

    rates.clear()
    monkeypatch.setattr(loop, "train", lambda *a, desc="", **k: rates.append((desc, a[2].learning_rate)) or real_train(*a, desc=desc, **k))
    assert main(search_args(tiny_dir, out, *extra, "--resume")) == 0
    assert rates and rates[0][0] == "round 3" and all(lr == pytest.approx(1e-2 / 3) for _, lr in rates)
    assert json.loads((out / "search.json").read_text())["search_rate_retry_scale"] == pytest.approx(1 / 3)


def test_strategy_none_keeps_whole_supernet(tiny_dir, tmp_path):
    out = tmp_path / "none"
    assert main(search_args(tiny_dir, out, "--strategy", "none")) == 0
    assert len(load_configuration(out / "configuration.json")) == 8


@pytest.mark.parametrize("flags, message", [
    (["--budget", "100"], "below the smallest unit"),
    (["--budget", "5000"], "not below the whole supernet"),
    (["--budget", "lots"], "is not a parameter count"),
    (["--prune-per-round", "0"], "must be a positive whole number"),
    (["--strategy", "magic"], "unknown --strategy"),
    (["--warmup-samples", "1"], "label"),
    (["--space", "lora-0"], "positive"),
    (["--space", "prefix-8"], "kind"),
    (["--space", "lora-4:q,q"], "twice"),
    (["--space", "lora-4:qq"], "cannot attach"),
    (["--space", "adapter-8:q"], "cannot attach"),
    (["--space", "lora-4:q,"], "empty target"),
    (["--floor", "lora-4"], "both name lora-4"),
    (["--floor", "lora-16:q,k,v,o"], "leaves nothing of the budget"),
    (["--floor", "lora-1:qq"], "cannot attach"),
])
def test_bad_search_input_exits_2(tiny_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "bad"
    assert main(search_args(tiny_dir, out, *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (out / "configuration.json").exists()


def test_balanced_layers_prune_one_unit_per_layer_before_a_second_from_any(tiny_dir, tmp_path):
    out = tmp_path / "balanced"
    assert main(search_args(tiny_dir, out, "--set", "search.balance_layers=true")) == 0
    first = trace_without_time(out)[0]
    layers = [Unit.parse(name).layer for name in first["pruned"]]
    assert len(layers) == 4 and sorted(layers) == [0, 1, 2, 3]  # 4 layers of 1,112 unit params each: one from each
    # within a layer it is the hybrid's choice: the more prunable of the layer's two units
    for name in first["pruned"]:
        unit = Unit.parse(name)
        other = next(o for o in first["alive"] if Unit.parse(o).layer == unit.layer and o != name)
        assert first["hybrid"][name] >= first["hybrid"][other]


def test_a_space_with_bias_units_searches_them_beside_lora(tiny_dir, tmp_path):
    out = tmp_path / "run"
    assert main(search_args(tiny_dir, out, "--space", "lora-4:q,v", "bias:q,ffn_in", "--budget", "1500")) == 0
    strategy = json.loads((out / "strategy.json").read_text())
    assert {p.split("/")[0] for p in strategy["strategy"]} == {"lora-4", "bias"}
    trace = trace_without_time(out)
    assert {n for n in trace[0]["alive"] if n.startswith("bias:")} == {f"bias:{t}@{layer}" for t in ("q", "ffn_in") for layer in range(4)}
    config = json.loads((out / "configuration.json").read_text())
    assert config["trainable_params"] <= 1500


def test_floor_units_are_in_every_configuration_and_the_search_places_the_rest(tiny_dir, tmp_path):
    out = tmp_path / "floor"
    args = run_args(tiny_dir, out, "--floor", "lora-1:q,v", "--num-train-epochs", "1")
    assert main(args) == 0
    floor = {f"lora-1:{t}@{layer}" for t in "qv" for layer in range(4)}  # 8 units of 64 params
    search = json.loads((out / "search.json").read_text())
    assert set(search["floor"]) == floor and search["floor_params"] == 512
    units = {u.name for u in load_configuration(out / "configuration.json")}
    assert floor <= units and units - floor  # the searched units come on top of the floor
    trace = trace_without_time(out)
    assert not floor & {name for r in trace for name in r["alive"]}  # never scored or pruned
    assert trace[-1]["budget"] == 2000 - 512
    metrics = json.loads((out / "metrics.json").read_text())
    assert search["trainable_params"] == metrics["trainable_params"] <= 2000
    assert metrics["trainable_params"] >= 512 + trace[-1]["trainable_params"]  # the floor, the survivors and the fill


def test_warm_started_run_starts_the_survivors_from_the_search(tiny_dir, tmp_path):
    out = tmp_path / "warm"
    args = run_args(tiny_dir, out, "--num-train-epochs", "1", "--set", "search.warm_start=true")
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    survivors = {u for u in json.loads((out / "search_state.json").read_text())["alive"]}
    assert metrics["warm_started_units"] == len(survivors) == metrics["num_units"] - metrics["fill_units"] > 0
    cold = tmp_path / "cold"
    args = run_args(tiny_dir, cold, "--num-train-epochs", "1")
    assert main(args) == 0
    assert json.loads((cold / "metrics.json").read_text())["warm_started_units"] is None
    # the same search, units and training data order: only the start differs, so only the weights do
    assert (cold / "configuration.json").read_text() == (out / "configuration.json").read_text()
    warm_w, cold_w = load_file(str(out / "weights.safetensors")), load_file(str(cold / "weights.safetensors"))
    assert warm_w.keys() == cold_w.keys()
    assert any(not torch.equal(warm_w[k], cold_w[k]) for k in warm_w if k.split(".")[0] in survivors)


def test_run_searches_retrains_and_reports(tiny_dir, tmp_path):
    out = tmp_path / "run"
    args = run_args(tiny_dir, out, "--fidelity", "low", "--num-train-epochs", "1")
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_params"] <= 2000
    assert metrics["search_train_ratio"] == pytest.approx(metrics["search_seconds"] / metrics["train_seconds"])
    assert metrics["search_seconds"] == pytest.approx(metrics["warmup_seconds"] + metrics["rounds_seconds"])
    assert metrics["budget"] == 2000 and metrics["budget_used"] == metrics["trainable_params"] / 2000
    for name in ("report.md", "structure.png", "tendency.png", "trace.png", "weights.safetensors", "strategy.json"):
        assert (out / name).is_file(), name


def test_run_compare_trains_the_baselines_and_reports_them(tiny_dir, tmp_path):
    out = tmp_path / "run"
    args = run_args(tiny_dir, out, "--fidelity", "low", "--num-train-epochs", "1", "--compare", "lora", "lora-all",
                    "--space", "lora-2:q,k,v,o,ffn_in,ffn_out")
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_params"] >= 0.95 * 2000  # the fill uses the budget
    assert metrics["warmup_tie_share"] is not None
    for method in ("lora", "lora-all"):
        baseline = json.loads((out / "compare" / method / "metrics.json").read_text())
        assert baseline["trainable_params"] <= 2000 and baseline["train_samples"] == metrics["train_samples"]
    report = (out / "report.md").read_text()
    assert "Did the search pay off?" in report and "| lora-all |" in report and "share of partitions whose strategy is a tie" in report


def test_search_cost_sizes_the_search(tiny_dir, tmp_path):
    """--search-cost R scales the planned training examples (above the floors) and the search
    reports what it trained; the ratio in metrics.json is measured, not planned."""
    planned = {}
    for cost in ("8", "16"):
        out = tmp_path / cost
        assert main(search_args(tiny_dir, out, "--search-cost", cost, "--strategy", "taylor")) == 0
        planned[cost] = json.loads((out / "search.json").read_text())["schedule"]
    assert not planned["8"]["floored"]
    assert planned["16"]["search_examples"] == pytest.approx(2 * planned["8"]["search_examples"], abs=2)
    assert planned["16"]["planned_examples"] > planned["8"]["planned_examples"]


def test_budget_that_only_the_smallest_kind_fits(tiny_dir, tmp_path):
    # lora-4 units have 512 params, adapter-8 units 600: a 550 budget leaves exactly one LoRA unit,
    # whatever order the criteria prefer (the last unit that fits is never pruned).
    out = tmp_path / "tight"
    assert main(search_args(tiny_dir, out, "--budget", "550", "--strategy", "weight", "--prune-per-round", "8")) == 0
    units = load_configuration(out / "configuration.json")
    assert [u.kind for u in units] == ["lora"]


def test_strategy_file_with_a_criterion_outside_the_hybrid_is_refused_before_training(tiny_dir, tmp_path, capsys):
    source = tmp_path / "strategy.json"
    source.write_text(json.dumps({"tendency": {}, "strategy": {"lora-4/b0": ["removal"]}}))
    out = tmp_path / "bad"
    assert main(search_args(tiny_dir, out, "--strategy-from", str(source))) == 2
    err = capsys.readouterr().err
    assert "runs alone with --strategy NAME" in err and "Traceback" not in err
    assert not out.exists()  # refused with the configuration, before the shared turn


def test_resume_with_other_settings_is_refused(tiny_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(search_args(tiny_dir, out, "--strategy", "weight")) == 0
    assert main(search_args(tiny_dir, out, "--strategy", "zeros", "--resume")) == 2
    assert "search differ" in capsys.readouterr().err
