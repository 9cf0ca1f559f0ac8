//! Fused grid generator + sampler for the affine (eq. 1) and plane projective
//! transforms: V = sampler(U, T_θ(G)) computed straight from θ, one output
//! pixel at a time, without materialising the N×H'×W'×2 grid; forward and
//! backward (∂L/∂θ, and ∂L/∂U only when U is tracked) as one tape op.
//!
//! Per output pixel (x_t, y_t) the source point is computed in f64 and rounded
//! once, then sampled with the bilinear kernel (eq. 5) exactly as
//! [`crate::grid_sample`] does it (same unnormalisation, padding and summation
//! order). The backward chains eq. (7) through the grid generator:
//!
//! * affine: ∂x_s/∂θ1k = (x_t, y_t, 1)k, ∂y_s/∂θ2k likewise;
//! * projective, with D = h31 x_t + h32 y_t + 1: ∂x_s/∂(h11, h12, h13) =
//!   (x_t, y_t, 1)/D, ∂y_s/∂(h21, h22, h23) likewise, and
//!   ∂(x_s, y_s)/∂h31 = −(x_s, y_s)·x_t/D, ∂(x_s, y_s)/∂h32 = −(x_s, y_s)·y_t/D.
//!
//! Agreement with the two-step path (transform → [`crate::sampler::grid_sample_var`],
//! tested in `stn/tests/fused.rs`): affine values and ∂U are bit-identical
//! (the same rounded source points and the sampler's summation order), and
//! ∂θ agrees to 1e-6 relative (bit-identical in the tests: the same f32
//! products, accumulated in f64 in the same order). Projective values agree
//! to 1e-5 absolute for images in [0, 1] and ∂U, ∂θ to 2e-5 relative to their
//! largest entry (measured: ≤ 3.3e-6), because the two-step grid comes from an
//! f32 matmul and division, the fused source points from f64.
//!
//! Only bilinear sampling with zero or border padding is fused; other options
//! ([`is_fused`] is false) fall back to the two-step path, with the same result.

use crate::sampler::grid_sample_var;
use crate::transforms::{base_axis, check_theta, grid_from_affine, Projective, Transform};
use crate::{Mode, Padding, SampleOptions};
use engine::{Tensor, Var};
use rayon::prelude::*;

/// Pixel coordinates beyond ±2²² are far outside any image (the sampler's
/// `WILD`): clamped, with a zero gradient.
const WILD: f32 = 4_194_304.0;

/// True if [`affine_sample`] and [`projective_sample`] run fused for these
/// options (bilinear, zero or border padding); otherwise they take the
/// two-step path.
pub fn is_fused(opts: SampleOptions) -> bool {
    opts.mode == Mode::Bilinear && matches!(opts.padding, Padding::Zeros | Padding::Border)
}

/// V = sampler(U, A_θ G) (eqs. 1 and 3) for θ N×6 (A_θ row-major) and
/// `input` N×C×H×W, giving N×C×H'×W' for `out_hw = [H', W']`, without
/// building the grid. Equals `Affine.grid` followed by
/// [`grid_sample_var`]; see the module docs for the tolerance.
///
/// # Panics
/// If θ is not N×6 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn affine_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("affine_sample", theta, 6);
    if !is_fused(opts) {
        let grid = grid_from_affine(theta, out_hw, opts.align_corners);
        return grid_sample_var(input, &grid, opts);
    }
    fused(Warp::Affine, input, theta, out_hw, opts)
}

/// V = sampler(U, H_θ G) for the plane projective transform, θ N×8 =
/// (h11, h12, h13, h21, h22, h23, h31, h32) with h33 = 1 (see
/// [`Projective`]), without building the grid. Equals `Projective.grid`
/// followed by [`grid_sample_var`]; see the module docs for the tolerance.
///
/// # Panics
/// If θ is not N×8 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn projective_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("projective_sample", theta, 8);
    if !is_fused(opts) {
        let grid = Projective.grid(theta, out_hw, opts.align_corners);
        return grid_sample_var(input, &grid, opts);
    }
    fused(Warp::Projective, input, theta, out_hw, opts)
}

#[derive(Clone, Copy)]
enum Warp {
    Affine,
    Projective,
}

impl Warp {
    fn params(self) -> usize {
        match self {
            Warp::Affine => 6,
            Warp::Projective => 8,
        }
    }

    /// The source point (x_s, y_s) of the output point (x, y), in f64, and the
    /// projective denominator D (1 for affine).
    #[inline]
    fn source(self, t: &[f64], x: f64, y: f64) -> (f64, f64, f64) {
        match self {
            // The same expression as `affine_grid`, so the rounded values agree.
            Warp::Affine => (x * t[0] + y * t[1] + t[2], x * t[3] + y * t[4] + t[5], 1.0),
            Warp::Projective => {
                let d = x * t[6] + y * t[7] + 1.0;
                (
                    (x * t[0] + y * t[1] + t[2]) / d,
                    (x * t[3] + y * t[4] + t[5]) / d,
                    d,
                )
            }
        }
    }
}

/// The two bilinear taps of one axis at one point (as the sampler's
/// `bilinear::fill_axis`): indices, weights, d weight / d pixel coordinate,
/// and d pixel coordinate / d grid value.
#[derive(Clone, Copy)]
struct Taps {
    idx: [usize; 2],
    w: [f32; 2],
    dw: [f32; 2],
    mult: f32,
}

impl Taps {
    #[inline]
    fn new(g: f32, size: usize, padding: Padding, align_corners: bool) -> Taps {
        let sz = size as f32;
        // Unnormalise (PyTorch's two conventions).
        let (u, scale) = if align_corners {
            ((g + 1.0) * 0.5 * (sz - 1.0), (sz - 1.0) * 0.5)
        } else {
            (((g + 1.0) * sz - 1.0) * 0.5, sz * 0.5)
        };
        // Tame wild values: NaN samples nothing, huge values get no gradient.
        let c = if u.is_nan() {
            -WILD
        } else {
            u.clamp(-WILD, WILD)
        };
        let ok = if u.is_nan() { 0.0 } else { 1.0 };
        let tame_grad = if u.abs() <= WILD { 1.0 } else { 0.0 };
        let (p, dp) = match padding {
            Padding::Border => {
                let hi = sz - 1.0;
                let d = if c > 0.0 && c < hi { 1.0 } else { 0.0 };
                (c.max(0.0).min(hi), d)
            }
            _ => (c, 1.0),
        };
        let i0 = p.floor();
        let frac = p - i0;
        let in_range = |i: f32| if i >= 0.0 && i <= sz - 1.0 { 1.0 } else { 0.0 };
        let clamp = |i: f32| i.max(0.0).min(sz - 1.0) as usize;
        let m0 = ok * in_range(i0);
        let m1 = ok * in_range(i0 + 1.0);
        Taps {
            idx: [clamp(i0), clamp(i0 + 1.0)],
            // Eq. (5): weights 1 − frac and frac; eq. (7): their slopes −1, +1.
            w: [(1.0 - frac) * m0, frac * m1],
            dw: [-m0, m1],
            mult: scale * dp * tame_grad,
        }
    }
}

/// Checked sizes of one fused problem.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

/// Per output pixel of one batch item: both axes' taps and the source point.
struct PixelTaps {
    x: Taps,
    y: Taps,
    src: (f64, f64, f64),
}

fn pixel_taps(
    warp: Warp,
    t: &[f64],
    xs: &[f64],
    ys: &[f64],
    d: Dims,
    opts: SampleOptions,
) -> Vec<PixelTaps> {
    let mut v = Vec::with_capacity(d.ho * d.wo);
    for y in ys {
        for x in xs {
            let src = warp.source(t, *x, *y);
            v.push(PixelTaps {
                x: Taps::new(src.0 as f32, d.w, opts.padding, opts.align_corners),
                y: Taps::new(src.1 as f32, d.h, opts.padding, opts.align_corners),
                src,
            });
        }
    }
    v
}

fn fused(warp: Warp, input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    let (is, p) = (input.shape(), warp.params());
    let n = theta.shape()[0];
    assert!(
        is.len() == 4 && is[0] == n && is[2] > 0 && is[3] > 0,
        "fused sampling: input must be N×C×H×W with N = {n} (θ's batch) and H, W > 0, got {is:?}"
    );
    let d = Dims {
        n,
        c: is[1],
        h: is[2],
        w: is[3],
        ho: out_hw[0],
        wo: out_hw[1],
    };
    let (xs, ys) = (
        base_axis(d.wo, opts.align_corners),
        base_axis(d.ho, opts.align_corners),
    );
    let th: Vec<f64> = theta.value().data().iter().map(|&v| v as f64).collect();
    let u = input.value().clone();
    let (in_plane, out_plane) = (d.h * d.w, d.ho * d.wo);

    // Forward, eq. (3): one task per batch item, all its channels.
    let mut out = vec![0.0f32; d.n * d.c * out_plane];
    if out_plane > 0 {
        out.par_chunks_mut(d.c * out_plane)
            .enumerate()
            .for_each(|(b, out_b)| {
                let taps = pixel_taps(warp, &th[b * p..][..p], &xs, &ys, d, opts);
                let in_b = &u.data()[b * d.c * in_plane..][..d.c * in_plane];
                for (plane, o) in in_b
                    .chunks_exact(in_plane)
                    .zip(out_b.chunks_exact_mut(out_plane))
                {
                    for (v, t) in o.iter_mut().zip(&taps) {
                        *v = sample(plane, d.w, t);
                    }
                }
            });
    }
    let out = Tensor::from_vec(out, &[d.n, d.c, d.ho, d.wo]);

    Var::custom_op("fused_sample", &[input, theta], out, move |g, needs| {
        let gout = g.data();
        let du = needs[0].then(|| {
            // Eq. (6): scatter per (item, channel) plane, pixels in order.
            let mut du = vec![0.0f32; d.n * d.c * in_plane];
            if out_plane > 0 {
                du.par_chunks_mut(d.c * in_plane)
                    .enumerate()
                    .for_each(|(b, du_b)| {
                        let taps = pixel_taps(warp, &th[b * p..][..p], &xs, &ys, d, opts);
                        for (ch, plane) in du_b.chunks_exact_mut(in_plane).enumerate() {
                            let go = &gout[(b * d.c + ch) * out_plane..][..out_plane];
                            for (&gv, t) in go.iter().zip(&taps) {
                                scatter(plane, d.w, t, gv);
                            }
                        }
                    });
            }
            Tensor::from_vec(du, &[d.n, d.c, d.h, d.w])
        });
        let dtheta = needs[1].then(|| {
            let mut dt = vec![0.0f32; d.n * p];
            dt.par_chunks_mut(p).enumerate().for_each(|(b, dt_b)| {
                let taps = pixel_taps(warp, &th[b * p..][..p], &xs, &ys, d, opts);
                let in_b = &u.data()[b * d.c * in_plane..][..d.c * in_plane];
                let go_b = &gout[b * d.c * out_plane..][..d.c * out_plane];
                let mut acc = [0.0f64; 8];
                for (k, t) in taps.iter().enumerate() {
                    // Eq. (7), summed over channels in order, then chained
                    // through unnormalisation and padding.
                    let (mut gx, mut gy) = (0.0f32, 0.0f32);
                    for ch in 0..d.c {
                        let plane = &in_b[ch * in_plane..][..in_plane];
                        let (dx, dy) = grid_grad(plane, d.w, t);
                        let gv = go_b[ch * out_plane + k];
                        gx += gv * dx;
                        gy += gv * dy;
                    }
                    let (gx, gy) = ((gx * t.x.mult) as f64, (gy * t.y.mult) as f64);
                    if gx == 0.0 && gy == 0.0 {
                        continue; // also keeps 0·∞ out where D = 0
                    }
                    let (x, y) = (xs[k % d.wo], ys[k / d.wo]);
                    let (xsrc, ysrc, den) = t.src;
                    match warp {
                        Warp::Affine => {
                            for (r, gk) in [gx, gy].into_iter().enumerate() {
                                acc[3 * r] += gk * x;
                                acc[3 * r + 1] += gk * y;
                                acc[3 * r + 2] += gk;
                            }
                        }
                        Warp::Projective => {
                            for (r, gk) in [gx, gy].into_iter().enumerate() {
                                acc[3 * r] += gk * x / den;
                                acc[3 * r + 1] += gk * y / den;
                                acc[3 * r + 2] += gk / den;
                            }
                            let c = gx * xsrc + gy * ysrc;
                            acc[6] -= c * x / den;
                            acc[7] -= c * y / den;
                        }
                    }
                }
                for (o, a) in dt_b.iter_mut().zip(acc) {
                    *o = a as f32;
                }
            });
            Tensor::from_vec(dt, &[d.n, p])
        });
        vec![du, dtheta]
    })
}

/// Eq. (3)/(5) at one point, summed in the sampler's order.
#[inline]
fn sample(plane: &[f32], width: usize, t: &PixelTaps) -> f32 {
    let mut acc = 0.0;
    for i in 0..2 {
        let row = &plane[t.y.idx[i] * width..][..width];
        let mut r = 0.0;
        for k in 0..2 {
            r += row[t.x.idx[k]] * t.x.w[k];
        }
        acc += r * t.y.w[i];
    }
    acc
}

/// Eq. (6) at one point: adds g·k(x)·k(y) to the four neighbours.
#[inline]
fn scatter(grad_plane: &mut [f32], width: usize, t: &PixelTaps, g: f32) {
    for i in 0..2 {
        let gy = g * t.y.w[i];
        let row = &mut grad_plane[t.y.idx[i] * width..][..width];
        for k in 0..2 {
            row[t.x.idx[k]] += gy * t.x.w[k];
        }
    }
}

/// Eq. (7) at one point: (∂V/∂x_pix, ∂V/∂y_pix) for one channel.
#[inline]
fn grid_grad(plane: &[f32], width: usize, t: &PixelTaps) -> (f32, f32) {
    let (mut dx, mut dy) = (0.0, 0.0);
    for i in 0..2 {
        let row = &plane[t.y.idx[i] * width..][..width];
        let (mut r, mut rd) = (0.0, 0.0);
        for k in 0..2 {
            let v = row[t.x.idx[k]];
            r += v * t.x.w[k];
            rd += v * t.x.dw[k];
        }
        dx += rd * t.y.w[i];
        dy += r * t.y.dw[i];
    }
    (dx, dy)
}
