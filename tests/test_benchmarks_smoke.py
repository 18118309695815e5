"""Every benchmark's --smoke mode runs as a subprocess (tiny model, tiny GLUE data) and writes its
JSON and Markdown results with the expected keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
GLUE = REPO.parent / "shared" / "data" / "glue"

pytestmark = pytest.mark.skipif(not (GLUE / "sst2" / "train.jsonl.gz").is_file(), reason="needs ../shared/data/glue")


def run(name: str, *args) -> str:
    cmd = [sys.executable, str(BENCH / f"{name}.py"), "--smoke", "--data-dir", str(GLUE), *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def results(out: Path, name: str) -> tuple[dict, str]:
    data = json.loads((out / f"{name}.json").read_text())  # strict JSON: no NaN
    md = (out / f"{name}.md").read_text()
    assert data["benchmark"] == name and data["smoke"] is True
    env = data["environment"]
    assert {"platform", "cpu_count"} <= set(env)
    assert {"torch", "transformers", "peft", "accelerate"} <= set(env["versions"])
    assert f"benchmarks/{name}.py" in data["command"] and "--smoke" in data["command"]
    assert data["seeds"] and "--smoke" in md and "torch" in md
    return data, md


def test_quality_runs_every_method_and_reuses_its_runs(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    run("quality", "--out", out, "--work-dir", work)
    first, md = results(out, "quality")
    data = first
    assert data["failures"] == []
    assert set(data["summary"]) == {"rte", "sst2"}
    for task in ("rte", "sst2"):
        assert set(data["summary"][task]) == {"lora", "lora-all", "adalora", "adapter", "dora", "prunepeft", "prunepeft-low"}
        row = data["summary"][task]["prunepeft"]
        assert {"mean", "std", "n", "scores", "trainable_params", "train_seconds", "search_train_ratio"} <= set(row)
        assert row["search_train_ratio"] > 0
        assert {"best_baseline", "prunepeft", "prunepeft-low"} <= set(data["verdicts"][task])
    assert len(data["runs"]) == 14 and all("score" in r["metrics"] for r in data["runs"])
    assert "the best equal-budget baseline" in md and "search / train" in md
    assert data["target"]["tasks"] == ["sst2", "rte"] and data["target"]["shown"] is False  # two tasks, one seed: not the target's tables
    assert 0.5 <= data["target"]["majority"]["rte"] < 1 and "issue 8's target" in md

    # a second quality invocation for ablations, in a piece: the lora run is reused
    stdout = run("quality", "--out", tmp_path / "ablations", "--work-dir", work, "--tasks", "rte",
                 "--methods", "lora", "none", "taylor")
    assert "skip (done)" in stdout
    data, md = results(tmp_path / "ablations", "quality")
    assert set(data["summary"]["rte"]) == {"lora", "none", "taylor"} and data["failures"] == []
    assert "no pruning" in md

    # the score analysis reads those searches' traces (trains nothing)
    run("score_stability", "--out", tmp_path / "scores", "--work-dir", work, "--tasks", "sst2", "rte")
    data, md = results(tmp_path / "scores", "score_stability")
    for task in ("sst2", "rte"):
        t = data["tasks"][task]
        assert set(t["runs"]) == {"prunepeft/seed1"}
        assert {"weight", "zeros", "threshold"} <= set(t["stability"])  # the cheap criteria are always in the trace
        assert all(v is None or -1 <= v <= 1 for v in t["stability"].values())
        assert t["runs"]["prunepeft/seed1"]["units"]
    assert "round t vs t+1" in md
    empty = subprocess.run([sys.executable, str(BENCH / "score_stability.py"), "--work-dir", str(tmp_path / "none"), "--out", str(tmp_path)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "no finished search run" in empty.stderr

    # each unit of the unpruned supernet (rte's `none` run) removed in turn, against the criteria of the search of that seed
    run("unit_ablation", "--out", tmp_path / "ablation", "--work-dir", work, "--tasks", "sst2", "rte")
    data, md = results(tmp_path / "ablation", "unit_ablation")
    assert set(data["tasks"]) == {"rte"}  # sst2 has no `none` run
    r = data["tasks"]["rte"]["runs"]["seed1"]
    configuration = json.loads((work / data["tasks"]["rte"]["work_key"] / "none" / "seed1" / "configuration.json").read_text())
    assert len(r["units"]) == len(configuration["units"])
    assert any(abs(u["loss_rise"]) > 0 for u in r["units"].values())  # removing a trained unit moves the loss
    assert {"weight", "gradient", "hybrid (pruning probability)"} <= set(r["criteria"])
    assert all(v is None or -1 <= v <= 1 for v in r["criteria"].values())
    assert 0 <= r["kept"]["mean_percentile"] <= 1 and r["kept"]["kept"]
    assert "importance percentile" in md

    # the oracle trains the most and the least important units that fill the budget, beside the recorded scores
    run("placement_oracle", "--out", tmp_path / "oracle", "--work-dir", work, "--ablation", tmp_path / "ablation" / "unit_ablation.json",
        "--scores-from", out / "quality.json")
    data, md = results(tmp_path / "oracle", "placement_oracle")
    assert data["failures"] == [] and {x["order"] for x in data["runs"]} == {"top", "bottom"}
    first_of = {"top": min(r["units"], key=lambda n: (-r["units"][n]["loss_rise"], n)),
                "bottom": min(r["units"], key=lambda n: (r["units"][n]["loss_rise"], n))}
    for x in data["runs"]:
        assert x["task"] == "rte" and x["seed"] == 1 and 0 < x["unit_params"] <= x["budget"]
        assert x["units"][0] == first_of[x["order"]]  # the fill starts at its end of the importance order
        assert 0 <= x["score"] <= 1 and x["recorded"]["lora-all"] == first["summary"]["rte"]["lora-all"]["scores"][0]
        saved = json.loads((Path(x["run_dir"]) / "configuration.json").read_text())
        assert sorted(f"{u['kind']}-{u['size']}:{u['target']}@{u['layer']}" for u in saved["units"]) == sorted(x["units"])
    assert "oracle" in md
    # importances that would choose other units than the trained oracle runs hold: refused, nothing written
    changed = json.loads((tmp_path / "ablation" / "unit_ablation.json").read_text())
    for unit in changed["tasks"]["rte"]["runs"]["seed1"]["units"].values():
        unit["loss_rise"] = -unit["loss_rise"]
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    refused = subprocess.run([sys.executable, str(BENCH / "placement_oracle.py"), "--smoke", "--data-dir", str(GLUE), "--work-dir", str(work),
                              "--ablation", str(tmp_path / "changed.json"), "--out", str(tmp_path / "refused")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "holds other units" in refused.stderr and not (tmp_path / "refused").exists()
    (tmp_path / "broken.json").write_text(json.dumps({"tasks": {"rte": {"runs": {"seed1": {"units": {"lora-4:q@0": {}}}}}}}))
    for ablation, flags, message in (("broken.json", [], "cannot read"), ("changed.json", ["--seeds", "7"], "no seed of [7]"),
                                     ("changed.json", ["--budget", "0"], "must be a positive"), ("changed.json", ["--budget", "10"], "no unit of rte")):
        bad = subprocess.run([sys.executable, str(BENCH / "placement_oracle.py"), "--smoke", "--data-dir", str(GLUE), "--work-dir", str(work),
                              "--ablation", str(tmp_path / ablation), *flags, "--out", str(tmp_path / "refused")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and message in bad.stderr and not (tmp_path / "refused").exists()

    # with the run folders gone (the tiny model and data stay: they are part of the settings), the
    # table comes back from the results file alone
    for folder in work.glob("*-n*-len*"):
        shutil.rmtree(folder)
    run("quality", "--out", tmp_path / "again", "--work-dir", work, "--report-only", "--runs-from", out / "quality.json")
    again, md_again = results(tmp_path / "again", "quality")
    assert again["summary"] == first["summary"] and "Runs tabulated from earlier results" in md_again


def test_budget_smoke(tmp_path):
    run("budget", "--out", tmp_path)
    data, md = results(tmp_path, "budget")
    assert data["failures"] == [] and data["ranks"] == [2, 4]
    for row in data["summary"]:
        assert {"lora", "prunepeft"} <= set(row)
        assert row["prunepeft"]["trainable_params"] <= row["budget"]
    assert (tmp_path / "budget.png").stat().st_size > 0 and "budget.png" in md


def test_speed_smoke(tmp_path):
    run("speed", "--out", tmp_path)
    data, md = results(tmp_path, "speed")
    r = data["results"]
    assert r["lora_vs_peft"]["ratio"] > 0 and r["statistics_on_vs_off"]["ratio"] > 0
    assert r["lora_vs_peft"]["prunepeft-lora"]["trainable_params"] == r["lora_vs_peft"]["peft-lora"]["trainable_params"]
    assert r["lora_vs_peft"]["initial_max_abs_logit_diff"] < 1e-4
    assert r["memory"]["ratio"] > 0 and set(r["memory"]["children"]) == {"loaded", "peft-lora", "supernet"}
    assert set(data["targets"]) == {"lora_vs_peft", "statistics_on_vs_off", "memory_supernet_vs_peft"}
    assert "PASS" in md or "MISS" in md


def test_quality_pairs_methods_by_seed():
    """The verdict compares PrunePEFT with the best baseline seed by seed (the seeds both ran), and
    calls a difference clear only when a paired t-test says so."""
    sys.path.insert(0, str(BENCH))
    import quality

    baseline = {"seeds": [1, 2, 3, 4], "scores": [0.80, 0.70, 0.90, 0.50]}
    steady = quality.paired({"seeds": [3, 2, 1], "scores": [0.91, 0.712, 0.811]}, baseline)  # seed 4 not run by both
    assert steady["n"] == 3 and steady["diffs"] == pytest.approx([0.01, 0.012, 0.011])
    assert steady["mean"] == pytest.approx(0.011) and steady["p"] < 0.05  # +1 point on every seed, though the seeds spread 20
    assert steady["clear_margin"] == pytest.approx(4.303 * 0.001 / 3 ** 0.5, rel=1e-3)  # t(0.975, 2 dof) x std / sqrt(n)
    assert "a clear difference at p < 0.05" in quality._paired_text(steady)
    noisy = quality.paired({"seeds": [1, 2, 3], "scores": [0.82, 0.69, 0.93]}, baseline)
    assert noisy["p"] > 0.05 and "not a clear difference" in quality._paired_text(noisy)
    alone = quality.paired({"seeds": [5], "scores": [0.9]}, baseline)
    assert alone["n"] == 0 and "no estimate of the noise" in quality._paired_text(alone)


def test_quality_report_names_the_space_searched():
    """A table run with --set search.space=... says which space PrunePEFT searched, not "the default"."""
    sys.path.insert(0, str(BENCH))
    import quality

    assert quality._space_text([]) == "the default space (`prunepeft config`)"
    assert quality._space_text(["seed=2", "search.space=lora-1:q,v lora-2:o"]) == "`lora-1:q,v lora-2:o` (`--set`)"
    assert quality._space_text(["search.floor=lora-1:q,v"]) == ("the default space (`prunepeft config`) above the floor "
                                                               "`lora-1:q,v` (`--set`), kept in every configuration")


def test_a_repeated_set_keeps_every_override():
    sys.path.insert(0, str(BENCH))
    import common

    p = common.parser("test")
    common.add_work_dir(p)
    args = p.parse_args(["--set", "search.floor=lora-1:q", "--set", "search.fair_layers=true", "seed=2"])
    assert args.extra == ["search.floor=lora-1:q", "search.fair_layers=true", "seed=2"]


def _summary(scores: dict) -> dict:
    return {m: {"seeds": [1, 2, 3], "scores": list(v), "n": 3, "mean": sum(v) / 3, "std": 0.0, "trainable_params": 1}
            for m, v in scores.items()}


def test_quality_target_needs_three_tasks_the_average_and_a_learning_prunepeft():
    sys.path.insert(0, str(BENCH))
    import quality

    def check(prunepeft_rte):
        base = {m: (0.80, 0.80, 0.80) for m in quality.BASELINES} | {"prunepeft-low": (0.7, 0.7, 0.7)}
        summary = {"sst2": _summary(base | {"prunepeft": (0.81, 0.82, 0.80)}), "qnli": _summary(base | {"prunepeft": (0.80, 0.81, 0.80)}),
                   "movie": _summary(base | {"prunepeft": (0.79, 0.78, 0.79)}), "rte": _summary(base | {"prunepeft": prunepeft_rte})}
        verdict = quality.verdicts(summary, {t: 1 for t in summary})
        return quality.target(summary, verdict, {t: 0.52 for t in summary}, [1, 2, 3])

    shown = check((0.85, 0.86, 0.84))
    assert shown["shown"] and sorted(shown["at_or_above"]) == ["qnli", "rte", "sst2"] and shown["averages"]["prunepeft"] > 0.80
    # the same mean on RTE, but one seed at the majority class where the habit learned: not shown
    one_seed_unlearned = check((0.525, 0.98, 0.98))
    assert one_seed_unlearned["at_majority"]["rte"]["prunepeft"] == [1] and not one_seed_unlearned["shown"]
    # below the best baseline on RTE: 2 of 4 tasks
    assert not check((0.79, 0.79, 0.79))["shown"]


def test_a_finished_run_matches_on_its_effective_settings():
    """warmup_turns unset means the fidelity's default (2 full, 1 low): a run from before that rule,
    which stored 2, is the same full-fidelity run, and a different low-fidelity one."""
    sys.path.insert(0, str(BENCH))
    import common

    from prunepeft.config import RunConfig, to_dict

    def config(fidelity: str, turns) -> dict:
        cfg = to_dict(RunConfig())
        cfg["search"].update(fidelity=fidelity, warmup_turns=turns)
        return cfg

    assert common._comparable(config("full", 2)) == common._comparable(config("full", None))
    assert common._comparable(config("low", 2)) != common._comparable(config("low", None))
    assert common._comparable(config("low", 1)) == common._comparable(config("low", None))


def test_quality_tabulates_runs_recorded_in_an_earlier_quality_json(tmp_path):
    """A run recorded with the same task, method, seed and settings answers a job whose run folder is
    empty; another setting, or two files disagreeing on one run, do not."""
    sys.path.insert(0, str(BENCH))
    import quality

    def job(method, seed, *extra, data_dir="/old/glue"):
        return {"task": "sst2", "method": method, "seed": seed, "run_dir": str(tmp_path / method / str(seed)),
                "overrides": [f"data.data_dir={data_dir}", f"seed={seed}", f"method={method}", *extra]}

    recorded = [{**job("lora", 1), "metrics": {"score": 0.8}}, {**job("lora", 2), "metrics": {"score": 0.7}}]
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"environment": {"git_commit": "abc1234"}, "runs": recorded}))
    imported = quality.imported_runs([earlier])
    asked = [job("lora", 1, data_dir="/new/glue"), job("lora", 2, "train.learning_rate=1e-2"), job("dora", 1)]
    answered, left = quality.answer_from_imports(asked, imported)
    assert [(r["seed"], r["metrics"]["score"], r["imported_commit"]) for r in answered] == [(1, 0.8, "abc1234")]
    assert [(j["method"], j["seed"]) for j in left] == [("lora", 2), ("dora", 1)]
    assert "reported at commit abc1234): sst2 lora seed 1" in "".join(quality._imports_markdown(answered))
    # a finished run in the work dir wins over the record
    (tmp_path / "lora" / "1").mkdir(parents=True)
    (tmp_path / "lora" / "1" / "metrics.json").write_text("{}")
    assert quality.answer_from_imports(asked[:1], imported) == ([], asked[:1])

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"environment": {"git_commit": "def5678"}, "runs": [{**job("lora", 1), "metrics": {"score": 0.6}}]}))
    with pytest.raises(quality.BadImport, match="different scores"):
        quality.answer_from_imports(asked, quality.imported_runs([earlier, other]))
    with pytest.raises(quality.BadImport, match="not a readable quality.json"):
        quality.imported_runs([REPO / "README.md"])


def _fake_run(folder: Path, seed: int, score: float, units: list[tuple[str, int]]) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    (folder / "metrics.json").write_text(json.dumps({"score": score}))
    (folder / "configuration.json").write_text(json.dumps(
        {"units": [{"kind": "lora", "size": 4, "target": t, "layer": layer} for t, layer in units]}))


def test_config_structure_finds_a_count_that_explains_the_score(tmp_path):
    """Runs whose score rises with their v units (relative to their seed) give r = +1 for target v;
    a run of another unit kind is skipped, an unfinished one counted, and a pattern matching nothing
    is refused (exit 2)."""
    for seed in (1, 2):
        for n_v in range(3):
            units = [("v", layer) for layer in range(n_v)] + [("q", 0)]
            _fake_run(tmp_path / f"s{seed}" / f"v{n_v}", seed, 0.80 + 0.01 * n_v + 0.05 * seed, units)
    (tmp_path / "s1" / "v9").mkdir()  # a run that never finished: counted as such, not read
    other = tmp_path / "other"
    _fake_run(other, 1, 0.9, [("q", 0)])
    conf = json.loads((other / "configuration.json").read_text())
    conf["units"][0]["size"] = 8
    (other / "configuration.json").write_text(json.dumps(conf))
    out = tmp_path / "out"
    cmd = [sys.executable, str(BENCH / "config_structure.py"), "--runs", str(tmp_path / "s*" / "v*"), str(other), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "config_structure.json").read_text())
    r = {c["feature"]: c["r"] for c in data["correlations"]}
    assert len(data["runs"]) == 6 and data["skipped"] == [str(other.resolve())]
    assert data["unfinished"] == [str((tmp_path / "s1" / "v9").resolve())]
    assert r["target v"] == pytest.approx(1.0) and r["target q"] is None  # every run has one q unit
    bad = subprocess.run([sys.executable, str(BENCH / "config_structure.py"), "--runs", str(tmp_path / "nothing*"), "--out",
                          str(tmp_path / "x")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no folder matches" in bad.stderr and not (tmp_path / "x").exists()


def test_block_survival_counts_kept_units_by_partition(tmp_path):
    """A partition alone on its criterion that loses every unit shows below its proportional share."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    strategy = {"lora-4/b0": ["taylor"], "lora-4/b1": ["weight"], "lora-4/b2": ["weight"], "lora-4/b3": ["weight"]}
    (run_dir / "strategy.json").write_text(json.dumps({"strategy": strategy}))
    space = [f"lora-4:{t}@{layer}" for layer in range(6) for t in "qv"]  # 6 layers: blocks 0 | 1-2 | 3-4 | 5
    last = {"alive": space[:2] + space[4:], "pruned": space[:2] + space[4:6]}  # layer 1, then layers 0 and 2 go
    (run_dir / "trace.jsonl").write_text(json.dumps({"alive": space, "pruned": space[2:4]}) + "\n" + json.dumps(last) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(BENCH / "block_survival.py"), str(run_dir), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    payload, md = json.loads((out / "block_survival.json").read_text()), (out / "block_survival.md").read_text()
    kept = {r["partition"]: r["kept"] for r in payload["rows"]}
    assert kept == {"lora-4/b0": 0, "lora-4/b1": 0, "lora-4/b2": 4, "lora-4/b3": 2}
    assert payload["summary"]["alone"]["kept"] == 0 and payload["summary"]["shared"]["kept"] == 6
    assert payload["summary"]["alone"]["mean_relative_share"] == 0.0
    assert "criterion alone" in md
