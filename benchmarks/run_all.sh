#!/usr/bin/env bash
# The exact benchmark runs behind benchmarks/results/ (2-core CPU; hours in total). Finished
# runs in the work dirs are skipped, so this can be stopped and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
W=(--threads 1 --set search.warmup_samples=128 train.learning_rate=1e-2 train.head_learning_rate=1e-2)
python benchmarks/quality.py --tasks rte --seeds 1 2 3 --max-train-samples 300 "${W[@]}" --out benchmarks/results/rte
python benchmarks/quality.py --tasks sst2 --ablations --seeds 1 2 3 --max-train-samples 500 "${W[@]}" --out benchmarks/results/sst2
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 --max-train-samples 500 \
  --work-dir /tmp/prunepeft-bench-fine "${W[@]}" "search.space=[lora-8,adapter-16]" --out benchmarks/results/sst2-fine-space
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 --max-train-samples 500 \
  --work-dir /tmp/prunepeft-bench-adlr "${W[@]}" "train.kind_learning_rates={adapter: 1e-3}" --out benchmarks/results/sst2-adapter-lr
# levers of the search: one setting changed at a time (tabulated by levers.py)
for lever in "keep search.reinit=keep" "k2 search.prune_per_round=2" "round0.3 search.round_epochs=0.3" "warmup256 search.warmup_samples=256" "turns1 search.warmup_turns=1"; do
  set -- $lever
  python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 --max-train-samples 500 \
    --work-dir /tmp/prunepeft-bench-$1 "${W[@]}" "$2" --out benchmarks/results/sst2-lever-$1
done
python benchmarks/levers.py
python benchmarks/cost.py --tasks sst2 --seeds 1 2 3 --max-train-samples 500 "${W[@]}" --out benchmarks/results/sst2
python benchmarks/cost.py --tasks rte --seeds 1 2 3 --max-train-samples 300 "${W[@]}" --out benchmarks/results/rte
python benchmarks/budget.py --max-train-samples 500 "${W[@]}" --out benchmarks/results/budget
python benchmarks/speed.py --out benchmarks/results
