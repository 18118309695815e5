"""report.md and its figures from a synthetic run folder (no model, no training)."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest

from prunepeft.errors import UserError
from prunepeft.io import write_json
from prunepeft.report.report import KEPT, load_run, structure_grid, write_report

LAYERS = 6
SIZE = {"lora-8": 24_576, "adapter-32": 49_952}
SPACE = [f"{fam}@{layer}" for fam in ("adapter-32", "lora-8") for layer in range(LAYERS)]
ROUNDS = [
    ["lora-8@0", "adapter-32@0", "lora-8@1", "adapter-32@2"],
    ["adapter-32@1", "lora-8@3", "lora-8@4", "adapter-32@4"],
    ["adapter-32@3"],
]
KEPT_UNITS = ["adapter-32@5", "lora-8@2", "lora-8@5"]
BUDGET = 100_000
DEV = [0.71, 0.74, 0.765]


def params(names) -> int:
    return sum(SIZE[n.split("@")[0]] for n in names)


def write_configuration(run, **extra):
    units = [{"kind": n.split("@")[0].rsplit("-", 1)[0], "size": int(n.split("@")[0].rsplit("-", 1)[1]),
              "layer": int(n.split("@")[1])} for n in KEPT_UNITS]
    write_json(run / "configuration.json", {"units": units, "model": "tiny-roberta", "num_layers": LAYERS,
                                            "unit_options": {"alpha": None}, **extra})


def write_metrics(run, **extra):
    write_json(run / "metrics.json", {
        "task": "sst2", "metric": "accuracy", "metrics": {"accuracy": 0.8125, "loss": 0.41}, "score": 0.8125,
        "trainable_params": params(KEPT_UNITS), "head_params": 592_130, "backbone_params": 10_000_000,
        "trainable_percent": 100 * params(KEPT_UNITS) / 10_000_000, "seconds": 40.0, "train_seconds": 40.0, **extra})
    with open(run / "epochs.jsonl", "w") as f:
        f.writelines(json.dumps({"epoch": e, "steps": 50 * e, "train_loss": 0.6 / e, "seconds": 20.0 * e,
                                "dev": {"accuracy": 0.78 + 0.03 * e}}) + "\n" for e in (1, 2))


@pytest.fixture
def full_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_configuration(run)
    write_metrics(run, search_seconds=12.0, search_train_ratio=0.3, search_epochs=0.25)
    write_json(run / "search.json", {"search_seconds": 12.0, "warmup_seconds": 4.5, "rounds_seconds": 7.5,
                                     "search_rounds": 3, "search_epochs": 0.25, "budget": BUDGET,
                                     "space_params": params(SPACE), "units": KEPT_UNITS,
                                     "trainable_params": params(KEPT_UNITS)})
    partitions = [f"{fam}/b{b}" for fam in ("adapter-32", "lora-8") for b in range(4)]
    criteria = ["weight", "zeros", "activation", "taylor"]
    tendency = {c: {p: round(0.1 * ((i + j) % 4), 2) for j, p in enumerate(partitions)} for i, c in enumerate(criteria)}
    tendency["weight"]["lora-8/b1"] = tendency["taylor"]["lora-8/b1"] = 0.9  # a tie
    strategy = {p: [max(criteria, key=lambda c: tendency[c][p])] for p in partitions}
    strategy["lora-8/b1"] = ["weight", "taylor"]
    write_json(run / "strategy.json", {"tendency": tendency, "strategy": strategy, "criteria": criteria,
                                       "partitions": partitions, "warmup_pruned": {"weight": ["lora-8@0"]},
                                       "seconds": 4.5})
    alive = list(SPACE)
    with open(run / "trace.jsonl", "w") as f:
        for rnd, (pruned, dev) in enumerate(zip(ROUNDS, DEV), start=1):
            after = [u for u in alive if u not in pruned]
            f.write(json.dumps({"round": rnd, "alive": alive, "pruned": pruned,
                                "scores": {"weight": {u: 0.01 for u in alive}}, "hybrid": {u: 1 / len(alive) for u in alive},
                                "trainable_params": params(after), "budget": BUDGET, "train_loss": 0.7 - 0.1 * rnd,
                                "dev": {"accuracy": dev}, "seconds": 2.5}) + "\n")
            alive = after
    assert sorted(alive) == sorted(KEPT_UNITS)
    return run


def check_png(path, min_width=200):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG")
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[1] >= min_width and image.shape[0] >= 100


def test_structure_grid_marks_kept_units_and_pruning_rounds(full_run):
    run = load_run(full_run)
    grid = structure_grid(KEPT_UNITS, run.trace, LAYERS)
    assert grid == {
        "adapter-32": [1, 2, 1, 3, 2, KEPT],
        "lora-8": [1, 1, KEPT, 2, 2, KEPT],
    }


def test_structure_grid_without_trace_is_kept_or_absent():
    grid = structure_grid(["lora-8@1", "adapter-32@3"], None, 4)
    assert grid == {"adapter-32": [None, None, None, KEPT], "lora-8": [None, KEPT, None, None]}


def test_full_report(full_run):
    path = write_report(full_run)
    assert path == full_run / "report.md"
    for name in ("structure.png", "tendency.png", "trace.png"):
        check_png(full_run / name)
    assert not list(full_run.glob(".*.tmp"))
    md = path.read_text()
    for text in ("sst2", "tiny-roberta", "accuracy", "0.8125", f"{BUDGET:,}", f"{params(KEPT_UNITS):,}",
                 "592,130", "12.0", "40.0", "0.300", "0.250", "![searched structure (paper Fig. 3)](structure.png)",
                 "](tendency.png)", "](trace.png)"):
        assert text in md, text
    # per-round rows: round, pruned units, units left, params after, ..., dev
    alive = len(SPACE)
    for rnd, (pruned, dev) in enumerate(zip(ROUNDS, DEV), start=1):
        alive -= len(pruned)
        after = params(SPACE) - sum(params(r) for r in ROUNDS[:rnd])
        row = f"| {rnd} | {', '.join(pruned)} | {alive} | {after:,} |"
        assert row in md, row
        assert f"{dev:.4f}" in md
    # configuration table and strategy table (with the tie)
    assert "| lora-8 | · | · | ✓ | · | · | ✓ |" in md
    assert "| adapter-32 | · | · | · | · | · | ✓ |" in md
    assert "| lora-8/b1 | weight, taylor (tie) | 0.900 |" in md
    assert "Missing pieces" not in md


def test_train_only_folder(tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    write_configuration(run)
    write_metrics(run)
    md = write_report(run).read_text()
    check_png(run / "structure.png")
    assert not (run / "tendency.png").exists() and not (run / "trace.png").exists()
    assert "0.8125" in md and "## Missing pieces" in md
    assert "`trace.jsonl` is missing" in md and "`strategy.json` is missing" in md and "`search.json` is missing" in md
    assert "_No pruning rounds recorded._" in md


def test_search_only_folder_without_configuration_uses_trace(full_run):
    for name in ("configuration.json", "epochs.jsonl"):
        (full_run / name).unlink()
    with open(full_run / "trace.jsonl", "a") as f:
        f.write('{"round": 4, "alive": [')  # an interrupted write
    md = write_report(full_run).read_text()
    check_png(full_run / "structure.png")
    assert "`configuration.json` is missing" in md and "skipped 1 unreadable line" in md
    assert "| lora-8 | · | · | ✓ | · | · | ✓ |" in md


@pytest.mark.parametrize("scale, said", [(1 / 3, True), (1.0, False), (None, False)])
def test_a_search_retried_at_a_lower_rate_says_so(tmp_path, scale, said):
    run = tmp_path / "run"
    run.mkdir()
    write_configuration(run)
    write_metrics(run, **({} if scale is None else {"search_rate_retry_scale": scale}))
    md = write_report(run).read_text()
    assert ("| search learning rate | 0.333 x search.learning_rate_scale: the shared turn stayed at the label prior" in md) == said


def test_metrics_only_full_finetune(tmp_path):
    run = tmp_path / "full"
    run.mkdir()
    write_json(run / "configuration.json", {"units": [], "model": "tiny-roberta", "num_layers": LAYERS})
    write_metrics(run)
    md = write_report(run).read_text()
    assert "No `structure.png`" in md and "0.8125" in md


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_bogus_folder_raises_user_error(tmp_path, make):
    target = tmp_path / "nope"
    if make == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("hi")
    elif make == "file":
        target.write_text("not a folder")
    with pytest.raises(UserError, match="is not a prunepeft run folder"):
        write_report(target)


def test_saturation_note_only_when_most_partitions_tie_broadly():
    from prunepeft.report.report import _saturation_note

    six = ["weight", "zeros", "threshold", "activation", "taylor", "gradient"]
    saturated = {f"p{i}": six[: 4 + i % 3] for i in range(5)} | {f"q{i}": ["taylor"] for i in range(3)}
    note = _saturation_note(saturated, len(six))
    assert note and "5 of 8 partitions" in note[0]
    informative = {f"p{i}": [six[i % 6]] for i in range(7)} | {"q": six}
    assert _saturation_note(informative, len(six)) == []
    # exactly half the partitions broad: not most, no note; three criteria of six is not "more than half"
    assert _saturation_note({"p": six[:4], "q": ["weight"]}, len(six)) == []
    assert _saturation_note({"p": six[:3], "q": six[:3]}, len(six)) == []
