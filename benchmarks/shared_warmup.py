"""Does the supernet learn in the shared turn? Replays the shared turn of a full-fidelity search on a
quality.py task (the default space, the same data order, optimiser, statistics collection and
linear decay over the longest turn allowed) with a given learning-rate warm-up, for a fixed number
of steps, and prints the mean training loss of every 25 steps beside the label prior's loss. With
`--spread` it also prints, before the first step and after every 25, the spread of the supernet's
outputs that the search's collapse watch reads (search/collapse.py), and its ratio to the start.

    python benchmarks/shared_warmup.py --task qnli --seed 2 --warmup 2 --steps 300 \
        --data-dir /tmp/shared/data/glue > benchmarks/results/shared-warmup/qnli-seed2-warmup2.log
    python benchmarks/shared_warmup.py --task qnli --seed 1 --warmup 22 --set train.learning_rate=1e-3 ...
    python benchmarks/shared_warmup.py --task rte --seed 1 --warmup 5 --planned-examples 344 --steps 150 --spread ...

The search's rule is in src/prunepeft/search/schedule.py::shared_warmup_steps (docs/method-notes.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import DEFAULT_MODEL
from quality import TASKS, make_job, task_settings

from prunepeft.config import RunConfig, apply_overrides
from prunepeft.search import loop
from prunepeft.search.collapse import PROBE_EXAMPLES, output_spread
from prunepeft.search.learned import prior_loss
from prunepeft.search.stream import chunk
from prunepeft.session import open_session
from prunepeft.space.units import search_space
from prunepeft.train.loop import train

WINDOW = 25


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=sorted(TASKS), default="qnli")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--warmup", type=int, required=True, help="warm-up steps of the learning rate")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--planned-examples", type=int, default=1383, help="the turn's planned examples (glue/qnli: 1,383)")
    p.add_argument("--data-dir", default="../shared/data/glue")
    p.add_argument("--spread", action="store_true", help="also print the output spread the collapse watch reads")
    p.add_argument("--set", dest="extra", nargs="+", default=[], metavar="KEY=VALUE",
                   help="prunepeft config overrides on top of the run's, e.g. train.learning_rate=1e-3")
    args = p.parse_args()
    if args.warmup < 0 or args.steps < 1 or args.planned_examples < 1:
        p.error("--warmup must be >= 0, --steps and --planned-examples >= 1")
    torch.set_num_threads(1)

    # the overrides of quality.py's full-fidelity PrunePEFT run of this task and seed (the budget
    # plays no part in the shared turn)
    job = make_job(args.task, "prunepeft", args.seed, settings=task_settings(args.task, smoke=False), model=DEFAULT_MODEL,
                   data_dir=Path(args.data_dir), work=Path("unused"), budget=73_728, extra=args.extra)
    cfg = RunConfig()
    apply_overrides(cfg, job["overrides"])
    session = open_session(cfg)
    space = search_space(cfg.search.space, session.probe().arch.num_layers)
    supernet = session.build_supernet(space, stage=loop.STAGE_ROUND)
    prior = prior_loss(session.train_encoded, session.task.is_regression)
    loop.seed_everything(cfg.seed, loop.STAGE_ROUND)
    data = chunk(session.train_encoded, 0, args.planned_examples * loop.MAX_SHARED_FACTOR, cfg.seed)
    print(f"task {args.task} seed {args.seed} warm-up {args.warmup} steps; {len(space)} units; label prior loss {prior:.4f}; "
          f"unit / head learning rate {cfg.train.learning_rate:g} / {cfg.train.head_learning_rate:g}", flush=True)
    watch = loop._collapse_watch(session, supernet, planned_steps=0) if args.spread else None  # the search's probe
    if watch:
        print(f"output spread over the first {PROBE_EXAMPLES} training examples at the start: {watch.start:.4f}", flush=True)
    start = time.perf_counter()

    def report(losses: list[float]) -> bool:
        if len(losses) % WINDOW == 0:
            window = losses[-WINDOW:]
            spread = ""
            if watch:
                now = output_spread(watch.model, watch.loader)
                spread = f"; output spread {now:.4f} = {now / watch.start:.3f} x the start"
            print(f"steps {len(losses) - WINDOW + 1}-{len(losses)}: mean loss {sum(window) / WINDOW:.4f}{spread} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        return len(losses) >= args.steps

    loader = session.loader(data, train=True, stage=loop.STAGE_ROUND, shuffle=False)
    train(supernet, loader, cfg.train, epochs=1, collect=(True, True), desc="shared turn", stop=report,
          warmup_steps=args.warmup, show_progress=False)


if __name__ == "__main__":
    main()
