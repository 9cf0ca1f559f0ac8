#!/usr/bin/env bash
# Copies the small files of every finished run folder given (results.json,
# metrics.jsonl, config.json; not the checkpoints) into DEST/<run name>/, so
# that the runs behind a results page survive the machine they ran on.
#
#   tools/archive_runs.sh DEST RUN_DIR...
set -euo pipefail
dest="$1"; shift
for run in "$@"; do
  [[ -f "$run/results.json" ]] || { echo "skip $run (not finished)" >&2; continue; }
  out="$dest/$(basename "$run")"
  mkdir -p "$out"
  for f in results.json metrics.jsonl config.json; do
    cp "$run/$f" "$out/$f.tmp" && mv "$out/$f.tmp" "$out/$f"
  done
  echo "archived $run -> $out"
done
