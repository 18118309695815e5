#!/usr/bin/env bash
# The exact commands behind benchmarks/results/ (2-core CPU; hours in total). Finished runs in the
# work dir are skipped, so this can be stopped and restarted, or run in pieces side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
W=(--threads 1 --work-dir /tmp/pp-bench)

# the learning-rate rule (results/lr/lr.md), one run per rate
for LR in 1e-3 3e-3 1e-2; do
  prunepeft train --method lora --rank 8 --task glue/sst2 --data-dir ../shared/data/glue --max-train-samples 5000 \
    --max-length 64 --seed 1 --output-dir /tmp/lr/lora-$LR --set train.learning_rate=$LR --set train.head_learning_rate=$LR
done

# the default space (results/space/): three spaces searched on SST-2 (2,000 sentences), seed 1
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora4all --set "search.space=lora-4:q,k,v,o,ffn_in,ffn_out" --out benchmarks/results/space/lora4all
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora8all --set "search.space=lora-8:q,k,v,o,ffn_in,ffn_out" --out benchmarks/results/space/lora8all
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora4all-adapter16 --set "search.space=lora-4:q,k,v,o,ffn_in,ffn_out adapter-16" \
  --out benchmarks/results/space/lora4all-adapter16
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora2all-lora4all --set "search.space=lora-2:q,k,v,o,ffn_in,ffn_out lora-4:q,k,v,o,ffn_in,ffn_out" \
  --out benchmarks/results/space/lora2all-lora4all
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora2all --set "search.space=lora-2:q,k,v,o,ffn_in,ffn_out" --out benchmarks/results/space/lora2all
python benchmarks/quality.py --tasks sst2 --methods lora-all lora --seeds 1 --max-train-samples 2000 --threads 1 \
  --work-dir /tmp/pp-bench-space-lora4all --out benchmarks/results/space/baselines

# the quality tables: every baseline and PrunePEFT (full, low), 3 seeds, two pieces side by side
for TASK in sst2 qnli rte movie; do
  python benchmarks/quality.py --tasks $TASK --methods lora lora-all adalora adapter dora --seeds 1 2 3 "${W[@]}" --out /tmp/bench/$TASK-baselines &
  python benchmarks/quality.py --tasks $TASK --methods prunepeft prunepeft-low --seeds 1 2 3 "${W[@]}" --out /tmp/bench/$TASK-prunepeft
  wait
  python benchmarks/quality.py --tasks $TASK --seeds 1 2 3 "${W[@]}" --report-only --out benchmarks/results/$TASK
done

# the QNLI piece of the search before the warm-up fix (results/qnli-before-c433a96/): low fidelity, seed 1 (its runs were
# later removed from /tmp/pp-bench)
python benchmarks/quality.py --tasks qnli --methods prunepeft-low --seeds 1 "${W[@]}" --out /tmp/bench/qnli-s1
python benchmarks/quality.py --tasks qnli --methods prunepeft-low --seeds 1 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/qnli-before-c433a96

# re-measure: the PrunePEFT rows after the warm-up snapshot fix (c433a96), and the RTE table; pieces side by side
python benchmarks/quality.py --tasks sst2 --methods prunepeft prunepeft-low --seeds 1 2 3 "${W[@]}" --out /tmp/bench/sst2-prunepeft-fixed &
python benchmarks/quality.py --tasks rte --methods lora lora-all adalora adapter dora --seeds 1 2 3 "${W[@]}" --out /tmp/bench/rte-baselines
wait
python benchmarks/quality.py --tasks rte --methods prunepeft prunepeft-low --seeds 1 2 3 "${W[@]}" --out /tmp/bench/rte-prunepeft
# the SST-2 table after the fix (results/sst2-after-fix/), the search of commit c433a96: its PrunePEFT runs were then
# moved to /tmp/pp-bench-c433a96/sst2-n5000-len64-ep3/ and the baselines' folders linked there
python benchmarks/quality.py --tasks sst2 --seeds 1 2 3 --work-dir /tmp/pp-bench-c433a96 --report-only --out benchmarks/results/sst2-after-fix

# the search of this version (one shared run until learned, b5d2beb; k growing with the space, 2164f7d): PrunePEFT rows
# re-measured into /tmp/pp-bench after the c433a96 runs were moved to /tmp/pp-bench-c433a96 (the RTE baselines linked there)
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 1 "${W[@]}" --out /tmp/bench/b3-rte1
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${W[@]}" --out /tmp/bench/b3-sst2
python benchmarks/quality.py --tasks rte --methods prunepeft-low --seeds 1 "${W[@]}" --out /tmp/bench/b3-rte1-low
python benchmarks/quality.py --tasks sst2 --methods prunepeft-low --seeds 1 2 3 "${W[@]}" --out /tmp/bench/b3-sst2-low
python benchmarks/quality.py --tasks sst2 --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/sst2-one-shared-run
python benchmarks/quality.py --tasks rte --methods lora lora-all adalora prunepeft --seeds 1 --work-dir /tmp/pp-bench-c433a96 --report-only \
  --out benchmarks/results/rte-c433a96

# a mixed-rank space (lora-2 + lora-4 on all linears) on SST-2 5,000 sentences, seeds 1-2 (results/space-mixed-sst2/)
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 --threads 1 --work-dir /tmp/pp-bench-mixed \
  --set "search.space=lora-2:q,k,v,o,ffn_in,ffn_out lora-4:q,k,v,o,ffn_in,ffn_out" --out benchmarks/results/space-mixed-sst2

# QNLI seed 1 with this version's search (results/qnli-partial/): PrunePEFT full and low fidelity, one lane each
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 1 "${W[@]}" --out /tmp/bench/qnli-s1-full &
python benchmarks/quality.py --tasks qnli --methods prunepeft-low --seeds 1 "${W[@]}" --out /tmp/bench/qnli-s1-low
wait
python benchmarks/quality.py --tasks qnli --methods prunepeft prunepeft-low --seeds 1 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/qnli-partial

# AdaLoRA with its budget counted in parameters (863bf8e): the triplet-budget AdaLoRA runs were moved to
# /tmp/pp-bench-adalora-triplets and re-run from a worktree of 863bf8e; RTE seed 2 of every method
python benchmarks/quality.py --tasks rte --methods adalora --seeds 1 2 "${W[@]}" --out /tmp/bench/rte-adalora &
python benchmarks/quality.py --tasks rte --methods prunepeft lora lora-all prunepeft-low adapter dora --seeds 2 "${W[@]}" --out /tmp/bench/rte2
wait
python benchmarks/quality.py --tasks rte --seeds 1 2 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/rte-partial  # superseded by results/rte/ (removed)
python benchmarks/quality.py --tasks sst2 --methods adalora --seeds 1 2 3 "${W[@]}" --out /tmp/bench/sst2-adalora
# the random-pruning ablation on SST-2 (the same rounds and fill, units removed in a seeded random order)
python benchmarks/quality.py --tasks sst2 --methods random --seeds 1 2 3 "${W[@]}" --out /tmp/bench/sst2-random
python benchmarks/quality.py --tasks sst2 --methods lora lora-all adalora adapter dora prunepeft prunepeft-low random --seeds 1 2 3 \
  --work-dir /tmp/pp-bench --report-only --out benchmarks/results/sst2-one-shared-run

# issue 9's decoder evidence: SmolLM2-135M on SST-2 posed as causal LM (512 train, 200 dev), LoRA r=8 q,v vs PrunePEFT, 2 seeds
python benchmarks/quality.py --tasks sst2-llm --methods lora prunepeft --seeds 1 2 "${W[@]}" --out benchmarks/results/sst2-llm

# speed and memory of a training step (results/speed-minilm/, results/speed-smollm2/), 1 thread
python benchmarks/speed.py --out benchmarks/results/speed-minilm
python benchmarks/speed.py --model smollm2 --batch-size 8 --max-length 64 --steps 30 --warmup 3 --out benchmarks/results/speed-smollm2

# RTE seed 3 of every method (AdaLoRA from a worktree of 863bf8e, the rest from 2164f7d), then the full RTE table (results/rte/)
python benchmarks/quality.py --tasks rte --methods lora lora-all adapter dora prunepeft prunepeft-low adalora --seeds 3 "${W[@]}" --out /tmp/bench/rte3
python benchmarks/quality.py --tasks rte --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/rte

# the `removal` criterion (single-criterion search, loss change per parameter, across targets) on SST-2, from a worktree
# of 38d70d7, and the table beside every other SST-2 method (results/sst2-removal/)
python benchmarks/quality.py --tasks sst2 --methods removal --seeds 1 2 3 "${W[@]}" --out /tmp/bench/sst2-removal
python benchmarks/quality.py --tasks sst2 --methods lora lora-all adalora adapter dora prunepeft prunepeft-low random removal --seeds 1 2 3 \
  --work-dir /tmp/pp-bench --report-only --out benchmarks/results/sst2-removal
# how stable, consistent and telling the scores are, from the searches' traces (trains nothing; results/score-stability/)
python benchmarks/score_stability.py --work-dir /tmp/pp-bench --tasks sst2 rte qnli movie --methods prunepeft random removal \
  --out benchmarks/results/score-stability

# QNLI seed 1 of the habit (from 2164f7d) beside PrunePEFT's seed 1 (results/qnli-partial/)
python benchmarks/quality.py --tasks qnli --methods lora --seeds 1 "${W[@]}" --out /tmp/bench/qnli1-lora
python benchmarks/quality.py --tasks qnli --methods lora prunepeft prunepeft-low --seeds 1 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/qnli-partial

# movie-sentiment seed 1 of every method (AdaLoRA from a worktree of 863bf8e, the rest from 2164f7d; results/movie-partial/)
python benchmarks/quality.py --tasks movie --methods prunepeft lora lora-all prunepeft-low adapter dora adalora --seeds 1 "${W[@]}" --out /tmp/bench/movie1
python benchmarks/quality.py --tasks movie --seeds 1 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/movie-partial  # superseded by results/movie/ (removed)

# the first, unnormalised `removal` (loss change per unit, not per parameter), SST-2 seed 1, run from commit 50f8ccd and its run
# folder then moved to /tmp/pp-bench-removal-unnorm (results/sst2-removal-unnormalised/: its table, and its units in score_stability.json)
python benchmarks/quality.py --tasks sst2 --methods removal --seeds 1 "${W[@]}" --out /tmp/bench/sst2-removal-unnormalised
python benchmarks/quality.py --tasks sst2 --methods removal --seeds 1 --work-dir /tmp/pp-bench-removal-unnorm --report-only \
  --out benchmarks/results/sst2-removal-unnormalised
python benchmarks/score_stability.py --work-dir /tmp/pp-bench-removal-unnorm --tasks sst2 --methods removal --seeds 1 \
  --out benchmarks/results/sst2-removal-unnormalised

# the SST-2 and RTE tables re-reported with the seed-by-seed comparison and paired t-test (reads the same runs, trains nothing)
python benchmarks/quality.py --tasks sst2 --methods lora lora-all adalora adapter dora prunepeft prunepeft-low random --seeds 1 2 3 --threads 1 \
  --work-dir /tmp/pp-bench --report-only --out benchmarks/results/sst2-one-shared-run --data-dir /tmp/shared/data/glue
python benchmarks/quality.py --tasks sst2 --methods lora lora-all adalora adapter dora prunepeft prunepeft-low random removal --seeds 1 2 3 \
  --work-dir /tmp/pp-bench --report-only --out benchmarks/results/sst2-removal --data-dir /tmp/shared/data/glue --threads 1
python benchmarks/quality.py --tasks rte --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/rte --data-dir /tmp/shared/data/glue --threads 1

# movie-sentiment seeds 2-3 of every method (AdaLoRA from a worktree of 863bf8e, the rest from 2164f7d), two lanes, and the
# 3-seed table (results/movie/)
python benchmarks/quality.py --tasks movie --methods prunepeft lora-all lora adapter dora prunepeft-low --seeds 2 "${W[@]}" --out /tmp/bench/movie2
python benchmarks/quality.py --tasks movie --methods adalora --seeds 2 "${W[@]}" --out /tmp/bench/movie2-adalora
python benchmarks/quality.py --tasks movie --methods prunepeft lora-all lora adapter dora prunepeft-low --seeds 3 "${W[@]}" --out /tmp/bench/movie3
python benchmarks/quality.py --tasks movie --methods adalora --seeds 3 "${W[@]}" --out /tmp/bench/movie3-adalora
python benchmarks/quality.py --tasks movie --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/movie --data-dir /tmp/shared/data/glue --threads 1

# the four tasks in one report, with issue 8's target check across them (results/all-tasks/; trains nothing)
python benchmarks/quality.py --tasks sst2 qnli rte movie --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/all-tasks \
  --data-dir /tmp/shared/data/glue --threads 1

# QNLI seed 1 of LoRA on all linears and DoRA (from 2164f7d), the seed-1 table (results/qnli-partial/) and all four tasks again
python benchmarks/quality.py --tasks qnli --methods lora-all --seeds 1 "${W[@]}" --out /tmp/bench/qnli1-lora-all
python benchmarks/quality.py --tasks qnli --methods dora --seeds 1 "${W[@]}" --out /tmp/bench/qnli1-dora
python benchmarks/quality.py --tasks qnli --methods lora lora-all dora prunepeft prunepeft-low --seeds 1 --work-dir /tmp/pp-bench --report-only \
  --out benchmarks/results/qnli-partial --data-dir /tmp/shared/data/glue --threads 1
python benchmarks/quality.py --tasks sst2 qnli rte movie --seeds 1 2 3 --work-dir /tmp/pp-bench --report-only --out benchmarks/results/all-tasks \
  --data-dir /tmp/shared/data/glue --threads 1
# QNLI seed 1 of the adapter (from 2164f7d) and AdaLoRA (from 863bf8e)
python benchmarks/quality.py --tasks qnli --methods adapter --seeds 1 "${W[@]}" --out /tmp/bench/qnli1-adapter
python benchmarks/quality.py --tasks qnli --methods adalora --seeds 1 "${W[@]}" --out /tmp/bench/qnli1-adalora
# low fidelity re-measured with b31ba70's rule (one warm-up turn, the rounds its cost pays for), from a worktree of b31ba70;
# the low-fidelity run folders before it were moved to /tmp/pp-bench-low-b76 (they are in the tables of earlier commits)
python benchmarks/quality.py --tasks qnli sst2 rte movie --methods prunepeft-low --seeds 1 2 3 "${W[@]}" --out /tmp/bench/low
# QNLI seed 1 of every method and low fidelity's seeds 1-3 (results/qnli-partial/)
python benchmarks/quality.py --tasks qnli --methods lora lora-all adalora adapter dora prunepeft prunepeft-low --seeds 1 2 3 --work-dir /tmp/pp-bench \
  --report-only --out benchmarks/results/qnli-partial --data-dir /tmp/shared/data/glue --threads 1
# QNLI seed 2 of DoRA (from 2164f7d); PrunePEFT's seed 2 with that search stopped after 42,873 shared-turn examples
# ("the supernet has not learned"), which led to 3a474bc's shared-turn warm-up (docs/method-notes.md)
python benchmarks/quality.py --tasks qnli --methods dora --seeds 2 "${W[@]}" --out /tmp/bench/qnli2-dora
# the shared turn replayed on QNLI seed 2 with the old (2 steps) and the new (44 steps) warm-up (results/shared-warmup/)
for WU in 2 44; do
  (cd benchmarks && python shared_warmup.py --task qnli --seed 2 --warmup $WU --steps 150 --data-dir /tmp/shared/data/glue \
    > results/shared-warmup/qnli-seed2-warmup$WU.log)
done
# PrunePEFT (full fidelity) with 3a474bc's warm-up, from a worktree of 3a474bc, in a new work dir whose baseline
# folders are links to /tmp/pp-bench's (baselines do not search): SST-2, RTE, movie seeds 1-3, QNLI seed 2
link_baselines() {  # a work dir for a new search rule whose baseline folders are links to /tmp/pp-bench's
  for T in qnli-nall-len128-ep3 sst2-n5000-len64-ep3 rte-nall-len128-ep3 movie-nall-len64-ep3; do
    mkdir -p "$1/$T"
    for M in lora lora-all adalora adapter dora; do ln -sfn /tmp/pp-bench/$T/$M "$1/$T/$M"; done
  done
}
link_baselines /tmp/pp-bench-w2
W2=(--threads 1 --work-dir /tmp/pp-bench-w2 --data-dir /tmp/shared/data/glue)
python benchmarks/quality.py --tasks sst2 rte movie --methods prunepeft --seeds 1 2 3 "${W2[@]}" --out /tmp/bench/w2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${W2[@]}" --out /tmp/bench/w2-qnli
for T in sst2 rte movie qnli; do
  python benchmarks/quality.py --tasks $T --methods lora lora-all adalora adapter dora prunepeft --seeds 1 2 3 "${W2[@]}" \
    --report-only --out benchmarks/results/$T-3a474bc
done
# QNLI seeds 2-3 of every baseline but DoRA's seed 2 (AdaLoRA from a worktree of 863bf8e, the rest of 2164f7d):
# (run in pieces across sessions: benchmarks/README.md says which are measured)
python benchmarks/quality.py --tasks qnli --methods adalora --seeds 2 3 "${W[@]}" --out /tmp/bench/qnli-adalora
python benchmarks/quality.py --tasks qnli --methods lora-all lora adapter --seeds 2 3 "${W[@]}" --out /tmp/bench/qnli23
python benchmarks/quality.py --tasks qnli --methods dora --seeds 3 "${W[@]}" --out /tmp/bench/qnli3-dora
# PrunePEFT with eec87d3's warm-up (at most half the shared turn's planned steps), from a worktree of 3c650a0
# (eec87d3's code, docstrings aside), in a work dir whose baseline folders link to /tmp/pp-bench's
link_baselines /tmp/pp-bench-w3
W3=(--threads 1 --work-dir /tmp/pp-bench-w3 --data-dir /tmp/shared/data/glue)
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${W3[@]}" --out /tmp/bench/w3-sst2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${W3[@]}" --out /tmp/bench/w3-qnli2
python benchmarks/quality.py --tasks movie rte --methods prunepeft --seeds 1 2 3 "${W3[@]}" --out /tmp/bench/w3-movie-rte
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 1 3 "${W3[@]}" --out /tmp/bench/w3-qnli13
python benchmarks/quality.py --tasks sst2 movie rte qnli --methods prunepeft-low --seeds 1 2 3 "${W3[@]}" --out /tmp/bench/w3-low
for T in sst2 rte movie qnli; do
  python benchmarks/quality.py --tasks $T --methods lora lora-all adalora adapter dora prunepeft --seeds 1 2 3 "${W3[@]}" \
    --report-only --out benchmarks/results/$T-eec87d3
done
# does a configuration's shape explain its score? every finished SST-2 (5,000) search of the default space
python benchmarks/config_structure.py --runs '/tmp/pp-bench*/sst2-n5000-len64-ep3/*/seed*' --out benchmarks/results/config-structure-sst2
# the current default's four tables together, with issue 8's target check
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods lora lora-all adalora adapter dora prunepeft --seeds 1 2 3 "${W3[@]}" \
  --report-only --out benchmarks/results/all-tasks-eec87d3
# Spaces of every projection at a low rank, SST-2 5,000 x 3 seeds, at 2973284 (the search of eec87d3), on a
# fresh machine; and LoRA-all seeds 1-2 rerun there (the same scores as recorded: reproducible across machines)
WF=(--threads 1 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WF[@]}" --work-dir /work/bench/space-lora2 \
  --set 'search.space=lora-2:q,k,v,o,ffn_in,ffn_out' --out benchmarks/results/space-lora2-sst2
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WF[@]}" --work-dir /work/bench/space-lora12 \
  --set 'search.space=lora-1:q,k,v,o,ffn_in,ffn_out lora-2:q,k,v,o,ffn_in,ffn_out' --out benchmarks/results/space-lora1-lora2-sst2
python benchmarks/quality.py --tasks sst2 --methods lora-all --seeds 1 2 "${WF[@]}" --work-dir /work/bench/w4 --out benchmarks/results/sst2-lora-all-rerun
# QNLI seed 3 of the current default (seed 1's shared turn stalled at the prior: stopped after 725 of 1,340 steps),
# then QNLI and all four tables regenerated from the recorded runs plus this work dir
W5=(--threads 1 --work-dir /work/bench/w3 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${W5[@]}" --out /tmp/bench/w5-qnli3
python benchmarks/quality.py --tasks qnli --methods lora lora-all adalora adapter dora prunepeft --seeds 1 2 3 "${W5[@]}" --report-only \
  --runs-from benchmarks/results/qnli-eec87d3/quality.json --out benchmarks/results/qnli-eec87d3
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods lora lora-all adalora adapter dora prunepeft --seeds 1 2 3 "${W5[@]}" \
  --report-only --runs-from benchmarks/results/all-tasks-eec87d3/quality.json benchmarks/results/qnli-eec87d3/quality.json \
  --out benchmarks/results/all-tasks-eec87d3
# why QNLI seed 1 stalls: its shared turn replayed at the default rate (3e-3) and at 1e-3 (the committed 1e-3 log
# stops at step 175: that replay was stopped once it had learned, to free the lane)
python benchmarks/shared_warmup.py --task qnli --seed 1 --warmup 22 --steps 300 > benchmarks/results/shared-warmup/qnli-seed1-warmup22.log
python benchmarks/shared_warmup.py --task qnli --seed 1 --warmup 22 --steps 300 --set train.learning_rate=1e-3 train.head_learning_rate=1e-3 \
  > benchmarks/results/shared-warmup/qnli-seed1-warmup22-lr1e-3.log
# the search at 1/3 of the final training's rates (search.learning_rate_scale), from a worktree of bac936a (the commit adding the key)
WL=(--threads 1 --work-dir /work/bench/lr3 --data-dir ../shared/data/glue --set search.learning_rate_scale=0.3333)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 1 "${WL[@]}" --out benchmarks/results/qnli-search-lr-third
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WL[@]}" --out benchmarks/results/sst2-search-lr-third
# the mixed space on QNLI seeds 2-3 (2026-12-05, a worktree of 070231b, two lanes)
WM=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/mix --set 'search.space=lora-1:q,k,v,o,ffn_in,ffn_out lora-2:q,k,v,o,ffn_in,ffn_out')
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WM[@]}" --out /work/logs/mix-qnli-s2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${WM[@]}" --out /work/logs/mix-qnli-s3
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 3 "${WM[@]}" --report-only --out benchmarks/results/space-lora1-lora2-qnli
# RTE seed 3 and the low-fidelity rows of the current default (2026-12-05, a worktree of 070231b, two lanes),
# then the default's tables regenerated from the recorded runs plus this work dir
W7=(--threads 1 --work-dir /work/bench/w6 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 3 "${W7[@]}" --out /work/logs/rte-s3
python benchmarks/quality.py --tasks rte --methods prunepeft-low --seeds 1 2 3 "${W7[@]}" --out /work/logs/rte-low
python benchmarks/quality.py --tasks sst2 --methods prunepeft-low --seeds 1 2 3 "${W7[@]}" --out /work/logs/sst2-low
python benchmarks/quality.py --tasks movie --methods prunepeft-low --seeds 1 "${W7[@]}" --out /work/logs/movie-low
python benchmarks/quality.py --tasks movie --methods prunepeft-low --seeds 2 "${W7[@]}" --out /work/logs/movie-low2
python benchmarks/quality.py --tasks movie --methods prunepeft-low --seeds 3 "${W7[@]}" --out /work/logs/movie-low3
M7=(lora lora-all adalora adapter dora prunepeft prunepeft-low)
for t in rte sst2 movie; do
  python benchmarks/quality.py --tasks $t --methods "${M7[@]}" --seeds 1 2 3 "${W7[@]}" --report-only \
    --runs-from benchmarks/results/$t-eec87d3/quality.json --out benchmarks/results/$t-eec87d3
done
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods "${M7[@]}" --seeds 1 2 3 "${W7[@]}" --report-only \
  --runs-from benchmarks/results/{all-tasks,qnli,rte,sst2,movie}-eec87d3/quality.json --out benchmarks/results/all-tasks-eec87d3

# a floor of LoRA r=1 on every linear, the search placing the rest (2026-12-05, a worktree of 1e41175, two lanes;
# QNLI seed 3 was stopped in its final training to free a lane for the coverage-rank runs below)
WF=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/floor --set 'search.floor=lora-1:q,k,v,o,ffn_in,ffn_out')
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WF[@]}" --out /work/logs/floor-qnli-s2
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WF[@]}" --out /work/logs/floor-sst2
python benchmarks/quality.py --tasks sst2 qnli --methods prunepeft --seeds 1 2 3 "${WF[@]}" --report-only --out benchmarks/results/floor

# kept units per partition: alone on a criterion or sharing it, from the search folders above (trains nothing;
# run in /work/bench, 2026-12-05; results/block-survival/)
(cd /work/bench && python "$OLDPWD/benchmarks/block_survival.py" floor/*/prunepeft/seed* w6/*/prunepeft*/seed* mix/*/prunepeft/seed* \
  --out "$OLDPWD/benchmarks/results/block-survival")

# Eq. 1's rank weight stretched to the units a criterion ranks (2026-12-05, a worktree of 47fa281, two lanes),
# then the table (results/coverage-ranks/) and the kept units per partition of these searches
WC=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/cov --set search.coverage_ranks=true)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WC[@]}" --out /work/logs/cov-qnli-s2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${WC[@]}" --out /work/logs/cov-qnli-s3
for s in 1 2 3; do python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds $s "${WC[@]}" --out /work/logs/cov-sst2-s$s; done
python benchmarks/quality.py --tasks sst2 qnli --methods prunepeft --seeds 1 2 3 "${WC[@]}" --report-only --out benchmarks/results/coverage-ranks
(cd /work/bench && python "$OLDPWD/benchmarks/block_survival.py" cov/*/prunepeft/seed* --out "$OLDPWD/benchmarks/results/block-survival-coverage")

# the final training warm-started from the search's survivors (2026-12-05, a worktree of ebe0022, two lanes; results/warm-start/)
WW=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/warm --set search.warm_start=true)
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WW[@]}" --out /work/logs/warm-sst2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WW[@]}" --out /work/logs/warm-qnli
python benchmarks/quality.py --tasks sst2 qnli --methods prunepeft --seeds 1 2 3 "${WW[@]}" --report-only --out benchmarks/results/warm-start

# the floor, fair scores across layers and stretched ranks together (2026-12-05, a worktree of 8ed22ac, two lanes;
# results/floor-fair-layers-coverage/), then the kept units per partition of these searches
WL=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/flc
    --set 'search.floor=lora-1:q,k,v,o,ffn_in,ffn_out' search.fair_layers=true search.coverage_ranks=true)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WL[@]}" --out /work/logs/flc-qnli
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WL[@]}" --out /work/logs/flc-sst2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${WL[@]}" --out /work/logs/flc-qnli3
python benchmarks/quality.py --tasks movie --methods prunepeft --seeds 1 2 3 "${WL[@]}" --out /work/logs/flc-movie
python benchmarks/quality.py --tasks sst2 qnli movie --methods prunepeft --seeds 1 2 3 "${WL[@]}" --report-only --out benchmarks/results/floor-fair-layers-coverage
(cd /work/bench && python "$OLDPWD/benchmarks/block_survival.py" flc/*/prunepeft/seed* --out "$OLDPWD/benchmarks/results/block-survival-flc")

# QNLI: fair scores across layers alone, low fidelity with the current warm-up, the random-order ablation
# (2026-12-06, a worktree of fd4d61a, two lanes); then the low-fidelity rows into the all-tasks table
WF=(--threads 1 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WF[@]}" --work-dir /work/bench/fl --set search.fair_layers=true --out /work/logs/fl-qnli-s2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WF[@]}" --work-dir /work/bench/fl --set search.fair_layers=true --report-only --out benchmarks/results/fair-layers-qnli
python benchmarks/quality.py --tasks qnli --methods prunepeft-low --seeds 2 3 "${WF[@]}" --work-dir /work/bench/low --out benchmarks/results/qnli-low-fd4d61a
python benchmarks/quality.py --tasks qnli --methods random --seeds 2 3 "${WF[@]}" --work-dir /work/bench/rnd --out benchmarks/results/qnli-random
python benchmarks/quality.py --tasks sst2 --methods random --seeds 1 2 3 "${WF[@]}" --work-dir /work/bench/rnd --out benchmarks/results/sst2-random-fd4d61a
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods lora lora-all adalora adapter dora prunepeft prunepeft-low --seeds 1 2 3 \
    --threads 1 --work-dir /work/bench/w6 --data-dir ../shared/data/glue --report-only --runs-from benchmarks/results/all-tasks-eec87d3/quality.json \
    benchmarks/results/qnli-eec87d3/quality.json benchmarks/results/rte-eec87d3/quality.json benchmarks/results/sst2-eec87d3/quality.json \
    benchmarks/results/movie-eec87d3/quality.json benchmarks/results/qnli-low-fd4d61a/quality.json --out benchmarks/results/all-tasks-eec87d3
python benchmarks/config_structure.py --runs "/work/bench/*/qnli-nall-len128-ep3/*/seed*" --out benchmarks/results/config-structure-qnli

# QNLI seeds 2-3 of the habit and the adapter (2026-12-06, a new machine, a worktree of f6f04c1, two lanes; each lane went on
# to AdaLoRA, stopped for the runs below; results/qnli-baselines-f6f04c1/); then the all-tasks table again, with them
WB=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/b7)
python benchmarks/quality.py --tasks qnli --methods lora adapter --seeds 2 "${WB[@]}" --out /work/logs/b7-qnli-s2
python benchmarks/quality.py --tasks qnli --methods lora adapter --seeds 3 "${WB[@]}" --out /work/logs/b7-qnli-s3
python benchmarks/quality.py --tasks qnli --methods lora adapter --seeds 2 3 "${WB[@]}" --report-only --out benchmarks/results/qnli-baselines-f6f04c1
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods lora lora-all adalora adapter dora prunepeft prunepeft-low --seeds 1 2 3 \
    "${WB[@]}" --report-only --runs-from benchmarks/results/all-tasks-eec87d3/quality.json benchmarks/results/qnli-low-fd4d61a/quality.json \
    benchmarks/results/qnli-baselines-f6f04c1/quality.json --out benchmarks/results/all-tasks-eec87d3

# Do the criteria see which units matter? The whole supernet trained without pruning and the default search, SST-2 seeds 1-2
# (same lanes, after the runs above), then each unit removed in turn (results/unit-ablation-sst2/)
WU=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/ua)
for s in 1 2; do python benchmarks/quality.py --tasks sst2 --methods none prunepeft --seeds $s "${WU[@]}" --out /work/logs/ua-s$s; done
python benchmarks/unit_ablation.py --tasks sst2 --seeds 1 2 --threads 1 --work-dir /work/bench/ua --out benchmarks/results/unit-ablation-sst2

# QNLI seeds 2-3 of AdaLoRA and seed 3 of DoRA (2026-12-06, a worktree of d73c521, lane A), and QNLI seed 1 of the
# default search with the shared turn's retry at a third of the rate (a worktree of
# 1fbaa31, lane B); then the QNLI and all-tasks tables regenerated from the recorded runs plus these work dirs
WA=(--threads 1 --work-dir /work/bench/w8 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks qnli --methods adalora --seeds 2 "${WA[@]}" --out /work/logs/qnli-adalora-s2
python benchmarks/quality.py --tasks qnli --methods adalora --seeds 3 "${WA[@]}" --out /work/logs/qnli-adalora-s3
python benchmarks/quality.py --tasks qnli --methods dora --seeds 3 "${WA[@]}" --out /work/logs/qnli-dora-s3
WB=(--threads 1 --work-dir /work/bench/w9 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 1 "${WB[@]}" --out /work/logs/qnli-s1-retry
python benchmarks/quality.py --tasks qnli --methods adalora dora --seeds 1 2 3 "${WA[@]}" --report-only \
  --runs-from benchmarks/results/all-tasks-eec87d3/quality.json --out benchmarks/results/qnli-baselines-d73c521
python benchmarks/quality.py --tasks qnli --methods prunepeft-low --seeds 1 --threads 2 --work-dir /work/bench/w9 --data-dir ../shared/data/glue \
  --out /work/logs/qnli-low-s1
python benchmarks/quality.py --tasks qnli --methods prunepeft prunepeft-low --seeds 1 "${WB[@]}" --report-only --out benchmarks/results/qnli-s1-retry-1fbaa31
python benchmarks/quality.py --tasks sst2 qnli rte movie --methods lora lora-all adalora adapter dora prunepeft prunepeft-low --seeds 1 2 3 \
  "${WB[@]}" --report-only --runs-from benchmarks/results/all-tasks-eec87d3/quality.json benchmarks/results/qnli-baselines-d73c521/quality.json \
  --out benchmarks/results/all-tasks-eec87d3

# The average of every criterion in every block, no warm-up (2026-12-06, a worktree of a1602de, two lanes; the runs read
# the same file from /work/bench/avg/strategy.json), QNLI seeds 2-3 (results/every-criterion-qnli/); the report-only
# invocation reads both lanes' run folders linked into /work/bench/avg/all
WE=(--threads 1 --data-dir ../shared/data/glue --set search.strategy_from=benchmarks/strategies/every-criterion.json)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WE[@]}" --work-dir /work/bench/avg/w1 --out /work/logs/avg-qnli-s2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${WE[@]}" --work-dir /work/bench/avg/w2 --out /work/logs/avg-qnli-s3
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 3 "${WE[@]}" --work-dir /work/bench/avg/all --report-only \
  --out benchmarks/results/every-criterion-qnli
# The default search pruning layer by layer (search.balance_layers; a worktree of 8275747, the same two lanes after the
# runs above): QNLI seeds 2-3 (results/balance-layers-qnli/), then SST-2 and movie-sentiment seeds 1-3; the report-only
# invocations read both lanes' run folders linked into /work/bench/bal/all
WBL=(--threads 1 --data-dir ../shared/data/glue --set search.balance_layers=true)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 "${WBL[@]}" --work-dir /work/bench/bal/w1 --out /work/logs/bal-qnli-s2
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 3 "${WBL[@]}" --work-dir /work/bench/bal/w2 --out /work/logs/bal-qnli-s3
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 2 3 "${WBL[@]}" --work-dir /work/bench/bal/all --report-only \
  --out benchmarks/results/balance-layers-qnli
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 3 "${WBL[@]}" --work-dir /work/bench/bal/w1 --out /work/logs/bal-sst2-a
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 2 "${WBL[@]}" --work-dir /work/bench/bal/w2 --out /work/logs/bal-sst2-b
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WBL[@]}" --work-dir /work/bench/bal/all --report-only \
  --out benchmarks/results/balance-layers-sst2
# (lane 1 was stopped after its seed 1 to give seed 3 to lane 2, which ran it after seed 2)
python benchmarks/quality.py --tasks movie --methods prunepeft --seeds 1 "${WBL[@]}" --work-dir /work/bench/bal/w1 --out /work/logs/bal-movie-a
python benchmarks/quality.py --tasks movie --methods prunepeft --seeds 2 "${WBL[@]}" --work-dir /work/bench/bal/w2 --out /work/logs/bal-movie-b
python benchmarks/quality.py --tasks movie --methods prunepeft --seeds 3 "${WBL[@]}" --work-dir /work/bench/bal/w2 --out /work/logs/bal-movie-c
python benchmarks/quality.py --tasks movie --methods prunepeft --seeds 1 2 3 "${WBL[@]}" --work-dir /work/bench/bal/all --report-only \
  --out benchmarks/results/balance-layers-movie
# Where each criterion puts each layer in its prune order (trains nothing; results/depth-bias/): QNLI seed 1 of the
# default (the retry run above), the averaged criteria's and the balanced searches' seeds 2-3
python benchmarks/depth_bias.py /work/bench/w9/qnli-nall-len128-ep3/prunepeft/seed1 /work/bench/avg/w1/qnli-nall-len128-ep3/prunepeft/seed2 \
  /work/bench/avg/w2/qnli-nall-len128-ep3/prunepeft/seed3 /work/bench/bal/w1/qnli-nall-len128-ep3/prunepeft/seed2 \
  /work/bench/bal/w2/qnli-nall-len128-ep3/prunepeft/seed3 --out benchmarks/results/depth-bias
# Bias units beside LoRA in the space (2026-12-06; a worktree of 9d3111f holding the bias kind as committed in 7491d13,
# two lanes; every run in one work dir): SST-2 seeds 1-3 (results/space-bias-sst2/), RTE seeds 1-2 (results/space-bias-rte/)
WB=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/bias/search --set "search.space=lora-4:q,k,v,o,ffn_in,ffn_out bias:q,k,v,o,ffn_in,ffn_out")
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 "${WB[@]}" --out /work/bench/bias/search-out
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 2 3 "${WB[@]}" --out /work/bench/bias/out-l1
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 1 "${WB[@]}" --out /work/bench/bias/out-l2
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 2 "${WB[@]}" --out /work/bench/bias/out-l3
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 3 "${WB[@]}" --report-only --out benchmarks/results/space-bias-sst2
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 1 2 "${WB[@]}" --report-only --out benchmarks/results/space-bias-rte
# The search with one criterion, activation, in every block (the one criterion that does not prune the top layers
# first, results/depth-bias/; 2026-12-06, a worktree of 7491d13): QNLI seeds 2-3 on two lanes, SST-2 seeds 1-3 on a
# third beside them (results/activation-qnli/, results/activation-sst2/); the report-only invocation reads the QNLI
# lanes' run folders linked into /work/bench/act/all
WA=(--threads 1 --data-dir ../shared/data/glue)
python benchmarks/quality.py --tasks qnli --methods activation --seeds 2 "${WA[@]}" --work-dir /work/bench/act/w2 --out /work/logs/act-qnli-s2
python benchmarks/quality.py --tasks qnli --methods activation --seeds 3 "${WA[@]}" --work-dir /work/bench/act/w3 --out /work/logs/act-qnli-s3
python benchmarks/quality.py --tasks sst2 --methods activation --seeds 1 2 3 "${WA[@]}" --work-dir /work/bench/act/sst2 --out /work/logs/act-sst2
python benchmarks/quality.py --tasks qnli --methods activation --seeds 2 3 "${WA[@]}" --work-dir /work/bench/act/all --report-only \
  --out benchmarks/results/activation-qnli
python benchmarks/quality.py --tasks sst2 --methods activation --seeds 1 2 3 "${WA[@]}" --work-dir /work/bench/act/sst2 --report-only \
  --out benchmarks/results/activation-sst2
# The shared turn's collapse watch (search/collapse.py; 2026-12-06, a worktree of the commit after c6dc2d8, two lanes):
# QNLI seed 1 of the default, whose full-rate shared turn collapses, and RTE seed 1, whose turn is slow to learn
# and must not be cut (the same score as recorded); then the four tables with this QNLI seed 1 and RTE seed 1
WC=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/collapse)
python benchmarks/quality.py --tasks qnli --methods prunepeft --seeds 1 "${WC[@]}" --out /work/bench/collapse/out-qnli
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 1 "${WC[@]}" --out /work/bench/collapse/out-rte
# the output spread the watch reads, replayed on the shared turns of QNLI seed 1 and RTE seeds 1-3
python benchmarks/shared_warmup.py --task qnli --seed 1 --warmup 22 --steps 150 --spread > benchmarks/results/shared-warmup/collapse-qnli-seed1.log
for S in 1 2 3; do
  python benchmarks/shared_warmup.py --task rte --seed $S --warmup 5 --planned-examples 344 --steps 225 --spread \
    > benchmarks/results/shared-warmup/collapse-rte-seed$S.log
done
# SST-2 seeds 1-2 of the default rerun with the collapse watch (a worktree of 5102478, two lanes): the recorded scores again
WR=(--threads 1 --data-dir ../shared/data/glue --work-dir /work/bench/repro)
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 "${WR[@]}" --out /work/bench/repro/out-s1
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 2 "${WR[@]}" --out /work/bench/repro/out-s2
python benchmarks/quality.py --tasks sst2 --methods prunepeft --seeds 1 2 "${WR[@]}" --report-only --out benchmarks/results/sst2-repro-5102478
# RTE seeds 2-3 of the default rerun with the collapse watch (the same worktree and work dir, two lanes): the recorded scores again
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 2 "${WR[@]}" --out /work/bench/repro/out-rte-s2
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 3 "${WR[@]}" --out /work/bench/repro/out-rte-s3
python benchmarks/quality.py --tasks rte --methods prunepeft --seeds 2 3 "${WR[@]}" --report-only --out benchmarks/results/rte-repro-5102478

# Placement oracle (2026-12-06, a worktree of 3342e6b, two lanes, one per seed): can any choice of units beat LoRA on all
# linears? The units the dev set ranks most (top) and least (bottom) important in the whole supernet, filling the budget,
# trained as a final training. SST-2 seeds 1-2 from the unit-ablation-sst2 importances above; movie-sentiment seeds 1-2
# and SST-2 seed 3 from whole supernets trained here (unit_ablation without a search of the same seed);
# results/unit-ablation-movie-seed{1,2}/, results/unit-ablation-sst2-seed3/ (the lanes wrote them to /work/bench/oracle-w/ua-*; copied),
# results/placement-oracle/
WO=(--threads 1 --work-dir /work/bench/oracle-w)
SCORES=(--scores-from benchmarks/results/all-tasks-5102478/quality.json benchmarks/results/sst2-random-fd4d61a/quality.json)
for s in 1 2; do  # lane s
  python benchmarks/quality.py --tasks movie --methods none --seeds $s "${WO[@]}" --data-dir ../shared/data/glue --out /work/logs/none-movie-s$s
  python benchmarks/placement_oracle.py --ablation benchmarks/results/unit-ablation-sst2/unit_ablation.json --seeds $s "${WO[@]}" "${SCORES[@]}" --out /work/logs/oracle-sst2-s$s
  python benchmarks/unit_ablation.py --tasks movie --seeds $s "${WO[@]}" --out benchmarks/results/unit-ablation-movie-seed$s
  python benchmarks/placement_oracle.py --ablation benchmarks/results/unit-ablation-movie-seed$s/unit_ablation.json --seeds $s "${WO[@]}" "${SCORES[@]}" --out /work/logs/oracle-movie-s$s
done
python benchmarks/quality.py --tasks sst2 --methods none --seeds 3 "${WO[@]}" --data-dir ../shared/data/glue --out /work/logs/none-sst2-s3
python benchmarks/unit_ablation.py --tasks sst2 --seeds 3 "${WO[@]}" --out benchmarks/results/unit-ablation-sst2-seed3
python benchmarks/placement_oracle.py --seeds 1 2 3 "${WO[@]}" "${SCORES[@]}" --report-only --out benchmarks/results/placement-oracle \
  --ablation benchmarks/results/unit-ablation-sst2/unit_ablation.json benchmarks/results/unit-ablation-sst2-seed3/unit_ablation.json \
  benchmarks/results/unit-ablation-movie-seed1/unit_ablation.json benchmarks/results/unit-ablation-movie-seed2/unit_ablation.json
