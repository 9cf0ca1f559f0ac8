#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets: idx, idx_gz, checkpoint, npy)
# for a bounded time from its committed seeds (fuzz/seeds/<target>), with
# libFuzzer's limits: 1 GiB RSS, 128 MiB for one allocation, 10 s per input.
# A panic, hang, leak of the limits or broken heap bound fails the script and
# leaves the input in fuzz/artifacts/<target>/.
#
#   tools/fuzz_smoke.sh                 # 60 s a target
#   FUZZ_SECONDS=600 tools/fuzz_smoke.sh checkpoint
#
# Needs cargo-fuzz (installed here from crates.io if missing) and uses
# RUSTC_BOOTSTRAP=1 so the stable toolchain accepts the sanitizer flags.
# The working corpus (fuzz/corpus/<target>) is kept between runs, uncommitted.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx idx_gz checkpoint npy)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
cargo fuzz build -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "fuzz $t: ${secs} s" >&2
    if ! cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -malloc_limit_mb=128 \
        -timeout=10 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/, log $log)" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#peak' "$log" | tail -4 >&2 || true
done
