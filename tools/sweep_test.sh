#!/usr/bin/env bash
# The sweep routes of docs/reproduce.md, end to end with tiny runs (2 seeds of
# fcn on R, 300 training and 200 test images): the same matrix is run
#   1. directly (`warpgrad reproduce table1`),
#   2. as a Slurm job array (`--slurm FILE`, `sbatch --wait`, `--collect`) on
#      the single-node cluster of tools/slurm_up.sh,
#   3. with GNU parallel (`--print-commands | parallel --joblog --resume`),
# and each collected table1.csv must equal the direct one (wall times aside;
# the runs are bit-reproducible). `SWEEP_SKIP_SLURM=1` skips route 2 where
# no Slurm can run. Needs root for Slurm and the packages (installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if ! command -v parallel >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends parallel >/dev/null
fi
cargo build -q -p warpgrad-cli
export PATH="$root/target/debug:$PATH"
work=$(mktemp -d /tmp/warpgrad-sweep.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
sel=(--datasets r --models fcn --seeds 2 --budget quick --train-size 300 --test-size 200 --threads 1)
# The table without its wall-time column (the last).
table() { cut -d, -f1-7 "$1/table1.csv"; }

warpgrad reproduce table1 "${sel[@]}" --runs direct --results direct-results >/dev/null 2>&1
table direct-results >direct.csv
[ "$(wc -l <direct.csv)" -eq 2 ] || { echo "sweep: direct run gave no row" >&2; cat direct.csv >&2; exit 1; }

if [ "${SWEEP_SKIP_SLURM:-0}" != 1 ]; then
    "$root/tools/slurm_up.sh"
    warpgrad reproduce table1 "${sel[@]}" --runs slurm --slurm job.sbatch --slurm-cpus 1 2>/dev/null
    timeout 600 sbatch --wait --quiet job.sbatch
    warpgrad reproduce table1 "${sel[@]}" --runs slurm --results slurm-results --collect >/dev/null 2>&1
    table slurm-results | diff -u direct.csv - || { echo "sweep: Slurm table differs" >&2; cat slurm/slurm-logs/* >&2; exit 1; }
    # Resubmitting the finished array redoes nothing.
    timeout 600 sbatch --wait --quiet job.sbatch
    grep -q "already finished" slurm/slurm-logs/*.log
    echo "sweep: Slurm job array matches the direct runs" >&2
fi

warpgrad reproduce table1 "${sel[@]}" --runs par --print-commands >commands.txt
parallel --joblog joblog.txt --resume -j 2 <commands.txt >/dev/null 2>&1
# --resume skips what the joblog records as done: a second pass runs nothing.
parallel --joblog joblog.txt --resume -j 2 <commands.txt >/dev/null 2>&1
[ "$(wc -l <joblog.txt)" -eq 3 ] || { echo "sweep: parallel --resume reran jobs" >&2; cat joblog.txt >&2; exit 1; }
warpgrad reproduce table1 "${sel[@]}" --runs par --results par-results --collect >/dev/null 2>&1
table par-results | diff -u direct.csv - || { echo "sweep: GNU parallel table differs" >&2; exit 1; }
echo "sweep: GNU parallel matches the direct runs" >&2
