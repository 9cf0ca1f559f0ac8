"""Checks files written by `warpgrad export` against real runtimes.

Reads a JSON manifest: a list of cases, each with
  name, onnx, safetensors, checkpoint, inputs (.npy, N×1×S×S), logits (.npy, N×K).
For each case: onnx.checker.check_model passes; onnxruntime's logits on the
inputs match warpgrad's (max |diff| <= rtol · max |logit|) with the same
predicted classes; the safetensors file, loaded in NumPy, holds exactly the
checkpoint's parameters (read here from the .wgck bytes by an independent
parser). Prints one JSON line per case and exits non-zero if any check fails.

Usage: python check_export.py MANIFEST.json [--rtol 1e-4]
"""

import json
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file


def wgck_params(path):
    """The parameters of a warpgrad checkpoint (format v1, see layers/src/checkpoint.rs)."""
    b = open(path, "rb").read()
    assert b[:8] == b"WGRDCKPT", f"{path}: not a warpgrad checkpoint"
    pos = 24 + 16  # header, then step and epoch
    (n,) = struct.unpack_from("<Q", b, pos)
    pos += 8 + n  # the configuration
    (count,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    params = {}
    for _ in range(count):
        (ln,) = struct.unpack_from("<I", b, pos)
        name = b[pos + 4 : pos + 4 + ln].decode()
        pos += 4 + ln
        (ndim,) = struct.unpack_from("<I", b, pos)
        dims = struct.unpack_from(f"<{ndim}Q", b, pos + 4)
        pos += 4 + 8 * ndim
        size = int(np.prod(dims, dtype=np.int64))
        params[name] = np.frombuffer(b, "<f4", size, pos).reshape(dims)
        pos += 4 * size
    return params


def check(case, rtol):
    out = {"name": case["name"]}
    model = onnx.load(case["onnx"])
    onnx.checker.check_model(model, full_check=True)
    out["opset"] = model.opset_import[0].version
    sess = ort.InferenceSession(case["onnx"], providers=["CPUExecutionProvider"])
    x = np.load(case["inputs"])
    want = np.load(case["logits"])
    got = sess.run(["logits"], {"input": x})[0]
    diff = np.abs(got.astype(np.float64) - want)
    scale = float(np.abs(want).max())
    out["max_abs_diff"] = float(diff.max())
    out["max_rel_diff"] = float(diff.max() / scale)
    out["images"] = int(x.shape[0])
    out["classes_equal"] = bool((got.argmax(1) == want.argmax(1)).all())
    out["logits_ok"] = out["max_rel_diff"] <= rtol and out["classes_equal"]
    if case.get("safetensors"):
        st = load_file(case["safetensors"])
        ck = wgck_params(case["checkpoint"])
        same = st.keys() == ck.keys() and all(
            st[k].dtype == np.float32 and st[k].shape == ck[k].shape and np.array_equal(st[k], ck[k])
            for k in ck
        )
        out["safetensors_params"] = len(st)
        out["safetensors_ok"] = bool(same)
    out["ok"] = out["logits_ok"] and out.get("safetensors_ok", True)
    return out


def main():
    args = sys.argv[1:]
    rtol = 1e-4
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i : i + 2]
    cases = json.load(open(args[0]))
    ok = True
    for case in cases:
        r = check(case, rtol)
        print(json.dumps(r), flush=True)
        ok &= r["ok"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
