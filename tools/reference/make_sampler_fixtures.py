"""Write the PyTorch reference fixtures for warpgrad's sampler and affine grid.

Every combination of mode (bilinear, nearest, bicubic) x padding (zeros,
border, reflection) x align_corners (False, True) is evaluated on four
cases that share their inputs per align_corners setting:

* ``up``    input 2x3x5x6, output 7x9: a random affine warp of a regular grid
            scaled beyond [-1, 1] (upsampling, points outside the image).
* ``down``  input 2x3x5x6, output 3x4: uniform points in [-1.3, 1.3], some
            coordinates set to exactly -1 or +1 (downsampling, border points).
* ``kinks`` input 2x3x4x8 (align_corners=False) or 2x3x5x9 (True): grid values
            whose pixel coordinates are exact integers, half-integers (nearest's
            ties) and points just outside the image. The sizes make these
            values dyadic, so they are exact in float32 AND float64 and the
            reference evaluates PyTorch's sub-gradient at exactly the kink.
* ``thin``  input 2x3x1x4, output 3x5: a one-pixel-high image (reflection and
            clamping on a degenerate axis), points in [-1.5, 1.5].

Inputs are drawn in float32; the reference is computed by PyTorch in float64 on
those exact float32 values, then cast to float32. (That is the correctly
rounded answer for the float32 inputs; PyTorch's own float32 result differs
from it by rounding only, see the summary printed at the end.)

Files: ``{ac}_{case}_{input,grid,grad_output}.npy`` and
``{mode}_{padding}_{ac}_{case}_{output,grad_input,grad_grid}.npy`` with
``ac`` = ``ac0``/``ac1``; affine grid: ``affine_{ac}_{case}_{theta,grid,
grad_grid,grad_theta}.npy`` with the size in ``affine_{ac}_{case}_size.npy``.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "stn", "tests", "fixtures", "sampler")
MODES = ["bilinear", "nearest", "bicubic"]
PADDINGS = ["zeros", "border", "reflection"]


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(arr, dtype=np.float32))


def norm_from_pix(u, size, ac):
    """Inverse of grid_sample's unnormalisation: pixel coordinate -> [-1, 1] scale."""
    if ac:
        return 2.0 * u / (size - 1) - 1.0
    return (2.0 * u + 1.0) / size - 1.0


def special_values(size, ac, rng, count):
    """Grid values at integer / half-integer pixel coordinates, inside and outside."""
    pix = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, size - 1.5, size - 1.0,
           size - 0.5, size, size + 1.0, 2.0 * size - 1.0, -size - 0.5]
    vals = [norm_from_pix(p, size, ac) for p in pix] + [-1.0, 1.0, 0.0]
    vals = np.array(vals, dtype=np.float64)
    assert np.all(vals.astype(np.float32).astype(np.float64) == vals), "not exact in f32"
    return rng.choice(vals, size=count)


def make_cases(ac, rng):
    cases = {}
    # up: a random affine warp of a regular grid, zoomed out so it leaves [-1, 1].
    n, c, h, w, ho, wo = 2, 3, 5, 6, 7, 9
    ys, xs = np.meshgrid(np.linspace(-1, 1, ho), np.linspace(-1, 1, wo), indexing="ij")
    grid = np.zeros((n, ho, wo, 2))
    for b in range(n):
        a = np.eye(2) * 1.3 + rng.normal(0, 0.2, (2, 2))
        t = rng.normal(0, 0.2, 2)
        grid[b, ..., 0] = a[0, 0] * xs + a[0, 1] * ys + t[0]
        grid[b, ..., 1] = a[1, 0] * xs + a[1, 1] * ys + t[1]
    grid += rng.normal(0, 0.01, grid.shape)
    cases["up"] = (rng.normal(0, 1, (n, c, h, w)), grid, (n, c, ho, wo))
    # down: uniform points with some exact borders.
    ho, wo = 3, 4
    grid = rng.uniform(-1.3, 1.3, (n, ho, wo, 2))
    mask = rng.uniform(size=grid.shape) < 0.25
    grid[mask] = rng.choice([-1.0, 1.0], size=mask.sum())
    cases["down"] = (rng.normal(0, 1, (n, c, h, w)), grid, (n, c, ho, wo))
    # kinks: dyadic sizes so integer pixel coordinates are exact.
    h, w = (5, 9) if ac else (4, 8)
    ho, wo = 5, 6
    grid = np.zeros((n, ho, wo, 2))
    grid[..., 0] = special_values(w, ac, rng, (n, ho, wo))
    grid[..., 1] = special_values(h, ac, rng, (n, ho, wo))
    cases["kinks"] = (rng.normal(0, 1, (n, c, h, w)), grid, (n, c, ho, wo))
    out = {}
    for name, (inp, grid, oshape) in cases.items():
        out[name] = (inp.astype(np.float32), grid.astype(np.float32),
                     rng.normal(0, 1, oshape).astype(np.float32))
    # thin: a one-pixel-high input (the degenerate axis of every padding),
    # drawn from its own generator so the other cases stay as they were.
    thin = np.random.default_rng(7 + int(ac))
    n, c, h, w, ho, wo = 2, 3, 1, 4, 3, 5
    out["thin"] = (thin.normal(0, 1, (n, c, h, w)).astype(np.float32),
                   thin.uniform(-1.5, 1.5, (n, ho, wo, 2)).astype(np.float32),
                   thin.normal(0, 1, (n, c, ho, wo)).astype(np.float32))
    return out


def run(inp, grid, gout, mode, padding, ac, dtype):
    x = torch.from_numpy(inp).to(dtype).requires_grad_()
    g = torch.from_numpy(grid).to(dtype).requires_grad_()
    y = F.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=ac)
    y.backward(torch.from_numpy(gout).to(dtype))
    return [t.detach().double().numpy() for t in (y, x.grad, g.grad)]


def rel_err(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) if a.size else 0.0


def main():
    os.makedirs(OUT, exist_ok=True)
    worst_f32 = 0.0
    count = 0
    for ac in (False, True):
        tag = "ac1" if ac else "ac0"
        rng = np.random.default_rng(1506_02025 + int(ac))
        for case, (inp, grid, gout) in make_cases(ac, rng).items():
            save(f"{tag}_{case}_input", inp)
            save(f"{tag}_{case}_grid", grid)
            save(f"{tag}_{case}_grad_output", gout)
            for mode in MODES:
                for padding in PADDINGS:
                    ref = run(inp, grid, gout, mode, padding, ac, torch.float64)
                    f32 = run(inp, grid, gout, mode, padding, ac, torch.float32)
                    for name, r in zip(("output", "grad_input", "grad_grid"), ref):
                        save(f"{mode}_{padding}_{tag}_{case}_{name}", r)
                    errs = [rel_err(a, b) for a, b in zip(f32, ref)]
                    worst_f32 = max(worst_f32, *errs)
                    count += 1
                    print(f"{mode:8} {padding:10} {tag} {case:5}  torch f32 vs f64 "
                          f"rel err: out {errs[0]:.1e} dU {errs[1]:.1e} dgrid {errs[2]:.1e}")
    # affine_grid and its backward.
    rng = np.random.default_rng(2015)
    for ac in (False, True):
        tag = "ac1" if ac else "ac0"
        for case, size in (("wide", (2, 3, 5, 7)), ("tall", (3, 1, 8, 4)), ("one", (1, 2, 1, 6))):
            theta = rng.normal(0, 1, (size[0], 2, 3)).astype(np.float32)
            th = torch.from_numpy(theta).double().requires_grad_()
            grid = F.affine_grid(th, list(size), align_corners=ac)
            ggrid = rng.normal(0, 1, grid.shape).astype(np.float32)
            grid.backward(torch.from_numpy(ggrid).double())
            save(f"affine_{tag}_{case}_theta", theta)
            save(f"affine_{tag}_{case}_size", np.array(size))
            save(f"affine_{tag}_{case}_grid", grid.detach().numpy())
            save(f"affine_{tag}_{case}_grad_grid", ggrid)
            save(f"affine_{tag}_{case}_grad_theta", th.grad.numpy())
    print(f"{count} grid_sample cases; worst torch float32 vs float64 relative error "
          f"{worst_f32:.2e}")


if __name__ == "__main__":
    main()
