#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/seeds/<target>/): a few small valid
files of each format, so the fuzzer starts from inputs that reach deep into
the readers. Run from the repository root; the output is committed."""
import gzip, os, shutil, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(code, dims, fmt, values):
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + b"".join(struct.pack(">" + fmt, v) for v in values)


arrays = {
    "u8_labels": idx(0x08, [10], "B", [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]),
    "u8_images": idx(0x08, [2, 3, 3], "B", list(range(0, 180, 10))),
    "i8": idx(0x09, [4], "b", [-128, -1, 0, 127]),
    "i16": idx(0x0B, [2, 2], "h", [-32768, -1, 1, 32767]),
    "i32": idx(0x0C, [3], "i", [-(2**31), 0, 2**31 - 1]),
    "f32": idx(0x0D, [2, 1, 2], "f", [0.5, -1.25, float("nan"), float("inf")]),
    "f64": idx(0x0E, [3], "d", [1e-300, -0.0, 2.5]),
    "scalar": idx(0x08, [], "B", [7]),
    "empty": idx(0x0D, [0, 5], "f", []),
}
for name, b in arrays.items():
    put("idx", name + ".idx", b)
    put("idx", name + ".idx.gz", gzip.compress(b, mtime=0))
    put("idx_gz", name + ".idx", b)
# Two gzip members, as the reader accepts.
b = arrays["u8_images"]
put("idx", "two_members.idx.gz", gzip.compress(b[:20], mtime=0) + gzip.compress(b[20:], mtime=0))


def ck_name(s):
    return struct.pack("<I", len(s)) + s.encode()


def ck_tensor(name, dims, values):
    return (ck_name(name) + struct.pack("<I", len(dims))
            + b"".join(struct.pack("<Q", d) for d in dims)
            + b"".join(struct.pack("<f", v) for v in values))


def checkpoint(step, epoch, config, params, optim, owords, words):
    body = struct.pack("<QQ", step, epoch) + struct.pack("<Q", len(config)) + config.encode()
    for ts in (params, optim):
        body += struct.pack("<Q", len(ts)) + b"".join(ck_tensor(*t) for t in ts)
    for ws in (owords, words):
        body += struct.pack("<Q", len(ws)) + b"".join(ck_name(n) + struct.pack("<Q", v) for n, v in ws)
    out = b"WGRDCKPT" + struct.pack("<IIQ", 1, 0, len(body)) + body
    return out + struct.pack("<I", zlib.crc32(out))


put("checkpoint", "small.wgck", checkpoint(
    12, 1, '{"model":"fcn","lr":0.01}',
    [("fc.w", [2, 3], [0.1, -0.2, 0.3, 0.0, 1.0, -1.0]), ("fc.b", [2], [0.5, 0.25])],
    [("adam.m.fc.w", [2, 3], [0.0] * 6)],
    [("adam.t", 12)], [("rng.data", 2**64 - 8), ("rng.dropout", 42)]))
put("checkpoint", "empty.wgck", checkpoint(0, 0, "", [], [], [], []))
put("checkpoint", "scalar.wgck", checkpoint(1, 0, "{}", [("s", [], [3.5])], [], [], []))

# The .npy seeds are the reader's test fixtures.
fixtures = os.path.join(ROOT, "engine", "tests", "fixtures")
os.makedirs(os.path.join(SEEDS, "npy"), exist_ok=True)
for f in sorted(os.listdir(fixtures)):
    if f.endswith(".npy"):
        shutil.copy(os.path.join(fixtures, f), os.path.join(SEEDS, "npy", f))
