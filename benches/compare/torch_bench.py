#!/usr/bin/env python3
"""PyTorch side of the warpgrad side-by-side: the same workloads as
`bench_report` (benches/compare/warpgrad_runner), timed the same way
(warm-up, then at least `reps` runs and at least `min_time_ms`; wall-clock
per run), printed as one JSON line per job.

    python torch_bench.py --op forward --workload W1 --threads 2 --reps 20
    python torch_bench.py --serve --threads 2   # jobs on stdin, one per line:
        op=forward workload=W1 reps=20 warmup=2 min_time_ms=300

Ops (as bench_report's): forward, backward (dinput and dgrid), backward_grid
(dgrid only), affine_grid, two_step (affine_grid + grid_sample, forward and
backward to theta: what PyTorch offers for warpgrad's fused sampler), conv_fwd,
conv_bwd, train, infer, peak, info. Shapes mirror warpgrad_benches (src/lib.rs);
keep the two in step.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 256
LR = 0.01

# name: (N, C, H_in (= W_in), H_out (= W_out))
WORKLOADS = {
    "W1": (256, 1, 28, 28),
    "W2": (256, 1, 42, 42),
    "W3": (256, 1, 60, 30),
    "W4": (64, 32, 28, 28),
    "W5": (8, 3, 224, 224),
    "W6": (8, 3, 448, 224),
}

# name: (cin, cout, k, side, need_input_grad)
CONV_LAYERS = {
    "cls1": (1, 32, 9, 28, True),
    "cls2": (32, 64, 7, 10, True),
    "loc1": (1, 20, 5, 21, False),
    "loc2": (20, 20, 5, 8, True),
    "tut_loc1": (1, 8, 7, 28, False),
    "tut_loc2": (8, 10, 5, 11, True),
    "tut_cls1": (1, 10, 5, 28, True),
    "tut_cls2": (10, 20, 5, 12, True),
    "cnn42_1": (1, 32, 9, 42, False),
    "cnn42_2": (32, 64, 7, 17, True),
    "cnn60_1": (1, 32, 9, 60, False),
    "cnn60_2": (32, 64, 7, 26, True),
}

IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def near_identity_theta(n, gen):
    """N x 2 x 3 affine transforms near the identity (as warpgrad_benches)."""
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)
    a = torch.deg2rad(u(-10.0, 10.0))
    s = u(0.9, 1.1)
    tx, ty = u(-0.1, 0.1), u(-0.1, 0.1)
    c, si = s * torch.cos(a), s * torch.sin(a)
    return torch.stack([c, -si, tx, si, c, ty], dim=1).view(n, 2, 3)


class SamplerCase:
    def __init__(self, name, seed=1):
        n, c, hi, ho = WORKLOADS[name]
        gen = torch.Generator().manual_seed(seed)
        self.size = (n, c, ho, ho)
        self.input = torch.rand(n, c, hi, hi, generator=gen)
        self.theta = near_identity_theta(n, gen)
        grid = F.affine_grid(near_identity_theta(n, gen), self.size, align_corners=False)
        jitter = (torch.rand(grid.shape, generator=gen) * 2 - 1) / hi
        self.grid = (grid + jitter).contiguous()
        self.grad_out = torch.randn(n, c, ho, ho, generator=gen)
        self.out_elems = n * c * ho * ho
        self.grid_points = n * ho * ho

    def forward(self):
        return F.grid_sample(self.input, self.grid, mode="bilinear",
                             padding_mode="zeros", align_corners=False)

    def backward(self, need_input):
        # The kernel autograd calls, with the same output mask.
        return torch.ops.aten.grid_sampler_2d_backward(
            self.grad_out, self.input, self.grid, 0, 0, False, [need_input, True])

    def affine_grid(self):
        return F.affine_grid(self.theta, self.size, align_corners=False)

    def two_step(self):
        theta = self.theta.detach().requires_grad_(True)
        grid = F.affine_grid(theta, self.size, align_corners=False)
        out = F.grid_sample(self.input, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        (g,) = torch.autograd.grad(out, theta, self.grad_out)
        return g


class ConvCase:
    def __init__(self, name, batch, seed=5):
        cin, cout, k, side, self.need_input = CONV_LAYERS[name]
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(cin * k * k)
        self.x = torch.rand(batch, cin, side, side, generator=gen)
        self.w = (torch.rand(cout, cin, k, k, generator=gen) * 2 - 1) * bound
        self.b = torch.zeros(cout)
        o = side - k + 1
        self.grad_out = torch.randn(batch, cout, o, o, generator=gen)

    def forward(self):
        return F.conv2d(self.x, self.w, self.b)

    def backward(self):
        return torch.ops.aten.convolution_backward(
            self.grad_out, self.x, self.w, [self.w.shape[0]], [1, 1], [0, 0], [1, 1],
            False, [0, 0], 1, [self.need_input, True, True])


def regression_head(din):
    head = nn.Linear(din, 6)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(IDENTITY))
    return head


class StCnnRts(nn.Module):
    """The paper's ST-CNN (affine) for RTS, as warpgrad's `st-cnn-aff` on 42x42."""

    def __init__(self):
        super().__init__()
        self.loc = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 20, 5), nn.ReLU(), nn.Flatten(), nn.Linear(320, 50), nn.ReLU())
        self.head = regression_head(50)
        self.cls = nn.Sequential(
            nn.Conv2d(1, 32, 9), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 7), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))

    def forward(self, x):
        theta = self.head(self.loc(x)).view(-1, 2, 3)
        # Zoom in to 56x56, then average-pool x2 (appendix A).
        grid = F.affine_grid(theta, (x.size(0), x.size(1), 56, 56), align_corners=False)
        v = F.grid_sample(x, grid, align_corners=False)
        return self.cls(F.avg_pool2d(v, 2))


class Tutorial(nn.Module):
    """The PyTorch tutorial's STN without its dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, 7), nn.MaxPool2d(2, stride=2), nn.ReLU(True),
            nn.Conv2d(8, 10, 5), nn.MaxPool2d(2, stride=2), nn.ReLU(True))
        self.fc_loc = nn.Sequential(nn.Linear(90, 32), nn.ReLU(True), regression_head(32))

    def forward(self, x):
        xs = self.localization(x).view(-1, 90)
        theta = self.fc_loc(xs).view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(x.view(-1, 320)))
        return self.fc2(x)


class Cnn(nn.Module):
    """The paper's CNN baseline, as warpgrad's `cnn` on a side x side canvas."""

    def __init__(self, side):
        super().__init__()
        f = ((side - 8) // 2 - 6) // 2
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 9), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 7), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * f * f, 10))

    def forward(self, x):
        return self.net(x)


MODELS = {"rts": (StCnnRts, 42), "tutorial": (Tutorial, 28),
          "cnn42": (lambda: Cnn(42), 42), "cnn60": (lambda: Cnn(60), 60)}


class Trainer:
    def __init__(self, name, batch, seed=11):
        cls, side = MODELS[name]
        torch.manual_seed(seed)
        self.model = cls()
        gen = torch.Generator().manual_seed(seed + 3)
        self.x = torch.rand(batch, 1, side, side, generator=gen)
        self.y = torch.randint(0, 10, (batch,), generator=gen)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=0.9)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss.item()

    def infer(self):
        with torch.inference_mode():
            return self.model(self.x)


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def build(job):
    op, wl, batch = job["op"], job["workload"], job["batch"]
    if op in ("forward", "backward", "backward_grid", "two_step", "affine_grid"):
        c = SamplerCase(wl)
        items = c.grid_points if op == "affine_grid" else c.out_elems
        unit = "grid_points" if op == "affine_grid" else "elements"
        return c, items, unit
    if op in ("conv_fwd", "conv_bwd"):
        return ConvCase(wl, batch), batch, "images"
    if op in ("train", "infer", "peak"):
        return Trainer(wl, batch), batch, "images"
    raise ValueError(f"unknown op '{op}'")


def run_once(case, op):
    if op == "forward":
        case.forward()
    elif op == "backward":
        case.backward(True)
    elif op == "backward_grid":
        case.backward(False)
    elif op == "affine_grid":
        case.affine_grid()
    elif op == "two_step":
        case.two_step()
    elif op == "conv_fwd":
        case.forward()
    elif op == "conv_bwd":
        case.backward()
    elif op == "infer":
        case.infer()
    else:  # train, peak
        case.step()


def case_key(job):
    op = job["op"]
    fam = ("conv" if op.startswith("conv") else
           "model" if op in ("train", "infer", "peak") else "sampler")
    return f"{fam}/{job['workload']}/{job['batch']}"


def info():
    return {
        "impl": "torch",
        "op": "info",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "parallel_info": torch.__config__.parallel_info(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def report(job, cache):
    if job["op"] == "info":
        return info()
    key = case_key(job)
    if key not in cache:
        cache[key] = build(job)
    case, items, unit = cache[key]
    op = job["op"]
    if op == "affine_grid":  # the case is shared with the sampler ops
        items, unit = case.grid_points, "grid_points"
    for _ in range(job["warmup"]):
        run_once(case, op)
    times = []
    start = time.perf_counter()
    while len(times) < max(job["reps"], 1) or (
            (time.perf_counter() - start) * 1e3 < job["min_time_ms"] and len(times) < 10000):
        t0 = time.perf_counter()
        run_once(case, op)
        times.append((time.perf_counter() - t0) * 1e3)
    s = sorted(times)
    m = len(s) // 2
    med = s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2
    out = {
        "impl": "torch", "op": op, "workload": job["workload"],
        "threads": str(torch.get_num_threads()), "batch": job["batch"], "reps": len(times),
        "median_ms": med, "min_ms": s[0], "items": items, "items_unit": unit,
        "items_per_s": items / (med / 1e3),
    }
    if op == "peak":
        out["peak_rss_kib"] = rss_kib("VmHWM")
        out["baseline_rss_kib"] = cache.get("_baseline_rss")
    out["times_ms"] = [round(t, 4) for t in times]
    return out


def parse_line(line):
    job = {"op": "", "workload": "", "reps": 10, "warmup": 2, "min_time_ms": 0.0,
           "batch": BATCH}
    for word in line.split():
        k, v = word.split("=", 1)
        if k not in job:
            raise ValueError(f"unknown key '{k}'")
        job[k] = v if k in ("op", "workload") else type(job[k])(float(v))
    return job


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--op", default="")
    ap.add_argument("--workload", default="")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-time-ms", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=BATCH)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    # What a training process holds before its first step (framework, model).
    cache = {"_baseline_rss": rss_kib("VmRSS")}
    if not a.serve:
        if not a.op:
            ap.error("--op is required without --serve")
        job = {"op": a.op, "workload": a.workload, "reps": a.reps, "warmup": a.warmup,
               "min_time_ms": a.min_time_ms, "batch": a.batch}
        print(json.dumps(report(job, cache)), flush=True)
        return
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = report(parse_line(line), cache)
        except Exception as e:  # report and keep serving
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
