#!/usr/bin/env bash
# The full-budget Table 1 sweep on one 2-core machine: every run of
# `warpgrad reproduce table1 --budget full --seeds 3`, two at a time with one
# thread each (more images/s in total than one 2-thread run at a time), the
# cells that decide the most first (ST-CNN and CNN on RTS, then TC, then the
# FCN rows, then R, P, E). Finished runs are skipped and stopped ones resumed
# (the printed commands carry --resume-or-start), so rerun it after a stop.
# Then `warpgrad reproduce table1 --budget full --seeds 3 --collect` archives
# the finished runs under docs/results/runs/ and writes the table.
#
#   tools/table1_sweep.sh            (knobs: WARPGRAD binary, JOBS, SEEDS)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${WARPGRAD:-target/release/warpgrad}"
jobs="${JOBS:-2}"
seeds="${SEEDS:-3}"
groups=(
  "rts st-cnn-aff,st-cnn-proj,st-cnn-tps"
  "rts cnn"
  "tc st-cnn-aff,cnn"
  "rts fcn,st-fcn-aff,st-fcn-proj,st-fcn-tps"
  "tc fcn,st-fcn-aff"
  "r st-cnn-aff,st-cnn-proj,st-cnn-tps,cnn,fcn,st-fcn-aff,st-fcn-proj,st-fcn-tps"
  "p st-cnn-aff,st-cnn-proj,st-cnn-tps,cnn,fcn,st-fcn-aff,st-fcn-proj,st-fcn-tps"
  "e st-cnn-aff,st-cnn-proj,st-cnn-tps,cnn,fcn,st-fcn-aff,st-fcn-proj,st-fcn-tps"
)
cmds=()
for g in "${groups[@]}"; do
  read -r d models <<<"$g"
  while read -r line; do
    out="${line##*--out=}"
    out="${out%% *}"
    [[ -f "$out/results.json" ]] && continue
    mkdir -p "$(dirname "$out")"
    cmds+=("$bin ${line#warpgrad } > $out.log 2>&1")
  done < <("$bin" reproduce table1 --budget full --seeds "$seeds" --threads 1 \
    --datasets "$d" --models "$models" --print-commands)
done
echo "sweep: ${#cmds[@]} runs to do, $jobs at a time"
printf '%s\n' "${cmds[@]}" | xargs -P "$jobs" -I{} bash -c '{}' || true
echo "sweep: $(ls runs/table1/full/*/results.json 2>/dev/null | wc -l) runs finished"
