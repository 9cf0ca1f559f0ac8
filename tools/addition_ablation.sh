#!/usr/bin/env bash
# The addition recipe ablation of docs/results/addition.md: two projective
# transformers before the FCN (2st-fcn-proj) on MNIST addition, trained on the
# first 50,000 training pairs and scored on the last 10,000 (--val-size 10000);
# the test set is never looked at. One row per change against the `addition`
# recipe, at a shorter schedule than the full budget's 120 epochs (EPOCHS).
# Finished runs are skipped and stopped ones resumed, so rerun it until every
# row is done.
#
#   tools/addition_ablation.sh [ROWS...]     (default: every row, in order)
#
# Knobs (environment): EPOCHS (60), EVAL_EVERY (6), SEEDS ("1"), JOBS (1),
# MODEL (2st-fcn-proj), RUNS (runs/addition/ablation), WARPGRAD (target/release/warpgrad).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${EPOCHS:-60}"
seeds="${SEEDS:-1}"
jobs="${JOBS:-1}"
model="${MODEL:-2st-fcn-proj}"
runs="${RUNS:-runs/addition/ablation}"
bin="${WARPGRAD:-target/release/warpgrad}"

# name | flags added to the addition recipe
rows=(
  "base|"
  "lr1e-3|--lr 0.001 --warmup 1000"
  "loc1|--loc-lr 1"
  "loc0.1|--loc-lr 0.1"
  "ls0|--label-smoothing 0"
  # Second round: the first round's two gains (lr 1e-3 and the localisation
  # net at 1x both give it lr 3e-4 or more) together, and a faster one still.
  "lr1e-3+loc1|--lr 0.001 --warmup 1000 --loc-lr 1"
  "loc3|--loc-lr 3"
  "lr1e-3+loc3|--lr 0.001 --warmup 1000 --loc-lr 3"
  # Third round: the localisation net at lr 3e-4 (the first round's best)
  # under a faster classifier still.
  "lr2e-3+loc0.15|--lr 0.002 --warmup 2000 --loc-lr 0.15"
  "lr4e-3+loc0.075|--lr 0.004 --warmup 2000 --loc-lr 0.075"
)

run_dir() { echo "$runs/$model-$1-s$2"; }
command_of() {
  echo "$bin train --dataset addition --model $model --epochs $epochs --val-size 10000 --eval-every ${EVAL_EVERY:-6} --threads 1 --seed $3 --out $4 --resume-or-start $2"
}
source tools/ablation_lib.sh
ablate "$@"
