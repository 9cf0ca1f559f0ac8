#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment the interop tests run
# exported models in: onnxruntime, onnx, numpy, safetensors from PyPI, pinned
# to the versions the export test was written against.
# It lives outside the repository and is kept between runs; a marker file
# records the package list, so a changed list rebuilds it.
# Prints the venv's python on stdout; everything else goes to stderr.
set -euo pipefail
VENV="${WARPGRAD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/warpgrad-venv}"
PACKAGES="numpy==2.4.6 onnx==1.23.2 onnxruntime==1.32.0 safetensors==0.8.0"
MARKER="$VENV/.warpgrad-packages"
if [ -x "$VENV/bin/python" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$PACKAGES" ] \
    && "$VENV/bin/python" -c "
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is None for m in ['numpy', 'onnx', 'onnxruntime', 'safetensors']))
" 2>/dev/null; then
    echo "python_env: reusing $VENV" >&2
else
    echo "python_env: creating $VENV ($PACKAGES)" >&2
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "python_env: $VENV exists and is not a virtual environment; not replacing it" >&2
        exit 1
    fi
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PACKAGES >&2
    "$VENV/bin/python" -c "import numpy, onnx, onnxruntime, safetensors" >&2
    echo "$PACKAGES" > "$MARKER"
fi
echo "$VENV/bin/python"
