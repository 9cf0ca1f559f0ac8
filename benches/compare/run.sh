#!/usr/bin/env bash
# Side-by-side of warpgrad and PyTorch on CPU (not part of CI).
#
# Builds bench_report in release, gets a Python with torch (VENV=path reuses
# one; otherwise benches/compare/.venv is created and `torch numpy` installed
# from PyPI, or from TORCH_INDEX_URL), runs every workload interleaved with
# PyTorch at 1 and 2 threads (compare.py), measures peak memory of a short
# training run of each model, and writes docs/benchmarks.md and
# benches/compare/last_run.json.
#
# Knobs (environment): VENV, TORCH_INDEX_URL, THREADS (default 1,2),
# ROUNDS (4), QUICK=1 (a few rows, one round: smoke test), OUT_MD, OUT_JSON,
# COMPARE_AVX2_COLUMN=1 (ours also capped at AVX2; automatic on AVX-512).
# Our side is the plain library (no process-wide allocator setting).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

: "${CARGO_TARGET_DIR:=$root/target}"
export CARGO_TARGET_DIR
threads="${THREADS:-1,2}"
rounds="${ROUNDS:-4}"
out_md="${OUT_MD:-$root/docs/benchmarks.md}"
out_json="${OUT_JSON:-$here/last_run.json}"

# Python with torch.
venv="${VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --upgrade pip >&2
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
        "$venv/bin/pip" install torch --index-url "$TORCH_INDEX_URL" >&2
        "$venv/bin/pip" install numpy >&2
    else
        "$venv/bin/pip" install torch numpy >&2
    fi
fi
py="$venv/bin/python"
"$py" -c 'import torch; print("torch", torch.__version__)' >&2

echo "building bench_report (release)" >&2
cargo build --release -p warpgrad-benches --bin bench_report >&2
ours="$CARGO_TARGET_DIR/release/bench_report"

extra=()
if [[ "${QUICK:-0}" == 1 ]]; then
    extra=(--quick)
    rounds=1
fi

# PyTorch runs with its defaults (OpenMP wait policy etc.), as users run it.
"$py" "$here/compare.py" \
    --ours "$ours" --python "$py" --threads "$threads" --rounds "$rounds" \
    --json "$out_json" --md "$out_md" "${extra[@]}"
