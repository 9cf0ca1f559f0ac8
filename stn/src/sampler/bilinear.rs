//! The bilinear sampler, one sample point at a time: eqs. (5)–(7) of the
//! paper and the chain rule into the grid's normalised units, as plain
//! scalar Rust. This is the page to read (docs/gradients.md walks through it).
//!
//! Notation: g ∈ [−1, 1] is a grid value (normalised), p the pixel
//! coordinate it names along one axis, U the input plane (row n = y, column
//! m = x), V the sampled value.
//!
//! 1. [`axis`]: g → p (unnormalise, then pad), p's two neighbours ⌊p⌋ and
//!    ⌊p⌋ + 1, their eq. (5) weights k(p − m) = max(0, 1 − |p − m|), the
//!    weights' derivatives dk/dp (eq. 7) and the chain factor dp/dg.
//! 2. [`sample`]: eq. (3) with those weights, V = Σ_n Σ_m U_nm k_x k_y.
//! 3. [`scatter`]: eq. (6), ∂L/∂U_nm += ∂L/∂V · k_x k_y.
//! 4. [`gradient`]: eq. (7), ∂V/∂p_x and ∂V/∂p_y in pixel units.
//! 5. [`grid_sample_reference`] and [`grid_sample_backward_reference`]: the
//!    whole op on tensors, point by point, with ∂L/∂g = Σ_c ∂L/∂V · ∂V/∂p ·
//!    dp/dg.
//!
//! `forward` and `backward` (at the end) are what `grid_sample` calls: they hand the
//! same arithmetic to `kernels/` (SIMD blocks of points, prefetching,
//! threads), which returns exactly the reference's bits (tested there).

use super::coords::{int_tame, pad, tame, unnormalise, unnormalise_scale};
use super::kernels::tasks;
use super::{SampleOptions, Shapes};
use engine::Tensor;

/// One axis of one sample point: eq. (5)'s two neighbours and weights,
/// eq. (7)'s weight derivatives, and the chain factor back to grid units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// Pixel indices of the neighbours ⌊p⌋ and ⌊p⌋ + 1, clamped into the
    /// image: a neighbour outside reads the edge pixel with weight 0 (no
    /// branch, and the kernels do the same, so the bits agree).
    pub idx: [usize; 2],
    /// Eq. (5): k(p − ⌊p⌋) = 1 − frac and k(p − ⌊p⌋ − 1) = frac, 0 for a
    /// neighbour outside the image (zero padding) or for a NaN coordinate.
    pub wt: [f32; 2],
    /// Eq. (7): dk/dp of the two weights, −1 and +1 (0 where the weight is
    /// 0). At an integer p the neighbours are still p and p + 1, so this is
    /// the right derivative (PyTorch's choice); see docs/gradients.md.
    pub dwt: [f32; 2],
    /// dp/dg: the unnormalisation's (W − 1)/2 or W/2, times the padding's
    /// derivative (1, 0 where clamped, ±1 reflected), times 0 for a wild
    /// coordinate (|p| > 2²², ±Inf, NaN).
    pub mult: f32,
}

/// The [`Axis`] of grid value `g` on an axis of `size` pixels.
pub fn axis(g: f32, size: usize, opts: SampleOptions) -> Axis {
    let (padding, ac) = (opts.padding, opts.align_corners);
    axis_padded(g, size, ac, |p, size| pad(p, size, padding, ac))
}

/// [`axis`] with the padding passed as a function `pad(p, size) → (p', dp'/dp)`
/// (the kernels pick it once per block rather than per point).
#[inline(always)]
pub fn axis_padded(
    g: f32,
    size: usize,
    align_corners: bool,
    pad: impl Fn(f32, usize) -> (f32, f32),
) -> Axis {
    // g → p: align_corners: (g + 1)/2 · (W − 1); else ((g + 1)·W − 1)/2.
    // `tame` clamps NaN/±Inf/huge values (ok = 0 for NaN, tame_grad = 0 for
    // anything wild) so no index below can overflow.
    let (p, ok, tame_grad) = tame(unnormalise(g, size, align_corners));
    // Padding: zeros leaves p alone (dp = 1); border clamps it into the
    // image (dp = 0 on and beyond the edge); reflection folds it (dp = ±1).
    let (p, dp) = pad(p, size);
    let f0 = p.floor();
    let frac = p - f0;
    // ⌊p⌋ as an integer (`f0 as i32`, written so that it vectorises).
    let i0 = int_tame(f0);
    let i1 = i0 + 1;
    let last = size as i32 - 1;
    // 1 if pixel i exists (a negative i wraps to a huge u32).
    let inside = |i: i32| if (i as u32) <= last as u32 { 1.0 } else { 0.0 };
    let m0 = ok * inside(i0);
    let m1 = ok * inside(i1);
    Axis {
        idx: [i0.max(0).min(last) as usize, i1.max(0).min(last) as usize],
        // Eq. (5): max(0, 1 − |p − m|) for m = ⌊p⌋ and ⌊p⌋ + 1.
        wt: [(1.0 - frac) * m0, frac * m1],
        // Eq. (7): d/dp of those: −1 and +1.
        dwt: [-m0, m1],
        mult: unnormalise_scale(size, align_corners) * dp * tame_grad,
    }
}

/// Eq. (3) with the weights of eq. (5): V at one point of the plane `u`
/// (rows of `w` pixels). Each neighbouring row is blended along x, then the
/// two rows along y.
pub fn sample(u: &[f32], w: usize, x: &Axis, y: &Axis) -> f32 {
    let at = |n: usize, m: usize| u[y.idx[n] * w + x.idx[m]];
    let r0 = at(0, 0) * x.wt[0] + at(0, 1) * x.wt[1];
    let r1 = at(1, 0) * x.wt[0] + at(1, 1) * x.wt[1];
    r0 * y.wt[0] + r1 * y.wt[1]
}

/// Eq. (6): adds ∂L/∂V = `g` into the four neighbours of the plane `du`,
/// each times its weight k_x · k_y (∂V/∂U_nm).
pub fn scatter(du: &mut [f32], w: usize, x: &Axis, y: &Axis, g: f32) {
    let g0 = g * y.wt[0];
    du[y.idx[0] * w + x.idx[0]] += g0 * x.wt[0];
    du[y.idx[0] * w + x.idx[1]] += g0 * x.wt[1];
    let g1 = g * y.wt[1];
    du[y.idx[1] * w + x.idx[0]] += g1 * x.wt[0];
    du[y.idx[1] * w + x.idx[1]] += g1 * x.wt[1];
}

/// Eq. (7): (∂V/∂p_x, ∂V/∂p_y) at one point of the plane `u`, in pixel
/// units: eq. (3) with one axis's weights replaced by their derivatives.
/// Inside a cell that is U(n, m+1) − U(n, m) blended along y, and
/// U(n+1, m) − U(n, m) blended along x.
pub fn gradient(u: &[f32], w: usize, x: &Axis, y: &Axis) -> (f32, f32) {
    let at = |n: usize, m: usize| u[y.idx[n] * w + x.idx[m]];
    let (v00, v01, v10, v11) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
    // Rows blended along x (r) and differentiated along x (rd).
    let r0 = v00 * x.wt[0] + v01 * x.wt[1];
    let r1 = v10 * x.wt[0] + v11 * x.wt[1];
    let rd0 = v00 * x.dwt[0] + v01 * x.dwt[1];
    let rd1 = v10 * x.dwt[0] + v11 * x.dwt[1];
    (rd0 * y.wt[0] + rd1 * y.wt[1], r0 * y.dwt[0] + r1 * y.dwt[1])
}

/// Bilinear `grid_sample` point by point: `input` N×C×H×W sampled at `grid`
/// N×H'×W'×2 (x first, normalised) gives N×C×H'×W'. The reference the
/// kernels are tested against; `grid_sample` computes the same bits faster.
///
/// # Panics
/// If the shapes do not fit together (as `grid_sample`).
pub fn grid_sample_reference(input: &Tensor, grid: &Tensor, opts: SampleOptions) -> Tensor {
    let s = Shapes::check("grid_sample_reference", input, grid, None);
    let (u, pts, plane, out_plane) = (input.data(), grid.data(), s.h * s.w, s.ho * s.wo);
    let mut out = vec![0.0f32; s.n * s.c * out_plane];
    for b in 0..s.n {
        for i in 0..out_plane {
            let g = &pts[(b * out_plane + i) * 2..][..2];
            let (x, y) = (axis(g[0], s.w, opts), axis(g[1], s.h, opts));
            for ch in 0..s.c {
                let u_c = &u[(b * s.c + ch) * plane..][..plane];
                out[(b * s.c + ch) * out_plane + i] = sample(u_c, s.w, &x, &y);
            }
        }
    }
    Tensor::from_vec(out, &[s.n, s.c, s.ho, s.wo])
}

/// Backward of [`grid_sample_reference`]: (∂L/∂input, ∂L/∂grid) for
/// `grad_output` = ∂L/∂V. ∂U adds eq. (6) point after point; ∂grid sums eq.
/// (7) over the channels in order (starting from 0), then multiplies by
/// dp/dg: ∂L/∂g_x = (Σ_c ∂L/∂V_c · ∂V_c/∂p_x) · dp_x/dg_x.
///
/// # Panics
/// If the shapes do not fit together (as `grid_sample_backward`).
pub fn grid_sample_backward_reference(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    opts: SampleOptions,
) -> (Tensor, Tensor) {
    let s = Shapes::check(
        "grid_sample_backward_reference",
        input,
        grid,
        Some(grad_output),
    );
    let (u, pts, gout) = (input.data(), grid.data(), grad_output.data());
    let (plane, out_plane) = (s.h * s.w, s.ho * s.wo);
    let mut du = vec![0.0f32; s.n * s.c * plane];
    let mut dgrid = vec![0.0f32; s.n * out_plane * 2];
    for b in 0..s.n {
        for i in 0..out_plane {
            let g = &pts[(b * out_plane + i) * 2..][..2];
            let (x, y) = (axis(g[0], s.w, opts), axis(g[1], s.h, opts));
            let (mut gx, mut gy) = (0.0f32, 0.0f32);
            for ch in 0..s.c {
                let k = (b * s.c + ch) * plane;
                let go = gout[(b * s.c + ch) * out_plane + i];
                scatter(&mut du[k..k + plane], s.w, &x, &y, go);
                let (dx, dy) = gradient(&u[k..k + plane], s.w, &x, &y);
                gx += go * dx;
                gy += go * dy;
            }
            // The chain rule from pixel units to grid units.
            dgrid[(b * out_plane + i) * 2] = gx * x.mult;
            dgrid[(b * out_plane + i) * 2 + 1] = gy * y.mult;
        }
    }
    (
        Tensor::from_vec(du, input.shape()),
        Tensor::from_vec(dgrid, grid.shape()),
    )
}

/// What [`grid_sample`](super::grid_sample) runs in bilinear mode: the
/// numbers of [`grid_sample_reference`], from the block kernels on threads.
pub(crate) fn forward(input: &Tensor, grid: &Tensor, s: &Shapes, opts: SampleOptions) -> Tensor {
    tasks::forward_bilinear(input, grid, s, opts)
}

/// What the bilinear backward runs: the numbers of
/// [`grid_sample_backward_reference`] (only those asked for), from the
/// block kernels on threads.
pub(crate) fn backward(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    s: &Shapes,
    opts: SampleOptions,
    need_input: bool,
    need_grid: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    tasks::backward_bilinear(input, grid, grad_output, s, opts, need_input, need_grid)
}
