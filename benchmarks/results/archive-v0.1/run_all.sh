#!/usr/bin/env bash
# The exact benchmark runs behind benchmarks/results/ (2-core CPU; hours in total). Finished
# runs in the work dirs are skipped, so this can be stopped and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
W=(--threads 1 --set search.warmup_samples=128 train.learning_rate=1e-2 train.head_learning_rate=1e-2)
python benchmarks/quality.py --tasks rte --ablations --seeds 1 2 3 --max-train-samples 300 "${W[@]}" --out benchmarks/results/rte
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
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 --max-train-samples 500 \
  --work-dir /tmp/prunepeft-bench-loraspace "${W[@]}" "search.space=[lora-4,lora-8,lora-16]" --out benchmarks/results/sst2-lora-space
python benchmarks/cost.py --tasks sst2 --seeds 1 2 3 --max-train-samples 500 --work-dir /tmp/prunepeft-bench-round0.3 \
  "${W[@]}" search.round_epochs=0.3 --out benchmarks/results/sst2-lever-round0.3
python benchmarks/levers.py
# the adapter baselines at lower adapter learning rates (is 1e-2, tuned on LoRA, unfair to them?)
for lr in 1e-3 3e-3; do
  python benchmarks/quality.py --tasks sst2 --methods adapter parallel-adapter --seeds 1 2 3 --max-train-samples 500 \
    --work-dir /tmp/prunepeft-bench-adlr$lr "${W[@]}" "train.kind_learning_rates={adapter: $lr, parallel-adapter: $lr}" \
    --out benchmarks/results/sst2-adapter-lr$lr-baselines
done
# more data: SST-2 with 2,000 training sentences
python benchmarks/quality.py --tasks sst2 --methods lora dora adapter parallel-adapter prunepeft --seeds 1 2 3 --max-train-samples 2000 "${W[@]}" --out benchmarks/results/sst2-n2000
python benchmarks/cost.py --tasks sst2 --seeds 1 2 3 --max-train-samples 2000 "${W[@]}" --out benchmarks/results/sst2-n2000
python benchmarks/cost.py --tasks sst2 --seeds 1 2 3 --max-train-samples 500 "${W[@]}" --out benchmarks/results/sst2
python benchmarks/cost.py --tasks rte --seeds 1 2 3 --max-train-samples 300 "${W[@]}" --out benchmarks/results/rte
python benchmarks/budget.py --max-train-samples 500 "${W[@]}" --out benchmarks/results/budget
python benchmarks/speed.py --out benchmarks/results
