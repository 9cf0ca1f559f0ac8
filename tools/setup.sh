#!/usr/bin/env bash
# Installs what the build and CI need on a fresh machine: the Rust toolchain's
# rustfmt and clippy components (cargo and rustc come with the machine).
set -euo pipefail
if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup)" >&2; exit 1; }
