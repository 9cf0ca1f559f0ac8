//! Fused grid generator + sampler for the affine (eq. 1) and plane projective
//! transforms: V = sampler(U, T_θ(G)) computed straight from θ, row by row,
//! without materialising the N×H'×W'×2 grid; forward and backward (∂L/∂θ, and
//! ∂L/∂U only when U is tracked) as one tape op.
//!
//! The source points are computed from θ in f64 and rounded once into the
//! sampler's buffers; from there the sampler's own kernels run (bilinear: the
//! block kernels of `sampler::bilinear_kernels`; nearest and bicubic: the row
//! taps of `sampler::separable`; eq. 3 forward, eq. 6 and 7 backward), so
//! there is one sampling implementation. The backward chains eq. (7) through
//! the grid generator:
//!
//! * affine: ∂x_s/∂θ1k = (x_t, y_t, 1)k, ∂y_s/∂θ2k likewise;
//! * projective, with D = h31 x_t + h32 y_t + 1: ∂x_s/∂(h11, h12, h13) =
//!   (x_t, y_t, 1)/D, ∂y_s/∂(h21, h22, h23) likewise, and
//!   ∂(x_s, y_s)/∂h31 = −(x_s, y_s)·x_t/D, ∂(x_s, y_s)/∂h32 = −(x_s, y_s)·y_t/D.
//!
//! Agreement with the two-step path (transform → [`crate::sampler::grid_sample_var`],
//! tested in `stn/tests/fused.rs` for every mode, padding and `align_corners`):
//! affine values and ∂U are bit-identical (the same rounded source points and
//! kernels), and ∂θ agrees to 1e-6 relative (the same f32 products,
//! accumulated in f64: in `affine_grid_backward`'s order for nearest and
//! bicubic, as fixed-lane row sums for bilinear). Projective values
//! agree to 1e-5 absolute for images in [0, 1] and ∂U, ∂θ to 2e-5 relative to
//! their largest entry, because the two-step grid comes from an f32 matmul and
//! division, the fused source points from f64.

use crate::sampler::bilinear_kernels::{self, Isa, Planes};
use crate::sampler::separable::{grid_grad_row, sample_row, scatter_row, FillAxis, RowTaps};
use crate::sampler::{bicubic, nearest};
use crate::transforms::{base_axis, check_theta};
use crate::{Mode, SampleOptions};
use engine::parallel::Filler;
use engine::{Tensor, Var};
use rayon::prelude::*;

/// V = sampler(U, A_θ G) (eqs. 1 and 3) for θ N×6 (A_θ row-major) and
/// `input` N×C×H×W, giving N×C×H'×W' for `out_hw = [H', W']`, without
/// building the grid. Equals `Affine.grid` followed by
/// [`crate::sampler::grid_sample_var`]; see the module docs for the tolerance.
///
/// # Panics
/// If θ is not N×6 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn affine_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("affine_sample", theta, 6);
    fused(Warp::Affine, input, theta, out_hw, opts)
}

/// V = sampler(U, H_θ G) for the plane projective transform, θ N×8 =
/// (h11, h12, h13, h21, h22, h23, h31, h32) with h33 = 1 (see
/// [`crate::transforms::Projective`]), without building the grid. Equals
/// `Projective.grid` followed by [`crate::sampler::grid_sample_var`]; see the
/// module docs for the tolerance.
///
/// # Panics
/// If θ is not N×8 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn projective_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("projective_sample", theta, 8);
    fused(Warp::Projective, input, theta, out_hw, opts)
}

fn fused(warp: Warp, input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    match opts.mode {
        Mode::Bilinear => fused_bilinear(warp, input, theta, out_hw, opts),
        Mode::Nearest => fused_k::<1>(warp, input, theta, out_hw, opts, nearest::fill_axis),
        Mode::Bicubic => fused_k::<4>(warp, input, theta, out_hw, opts, bicubic::fill_axis),
    }
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
    #[inline(always)]
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

impl Warp {
    /// Adds the ∂L/∂θ of one output point (x, y) with ∂L/∂(x_s, y_s) =
    /// (gx, gy) to `acc` (eq. 1's derivatives, in `affine_grid_backward`'s
    /// order for the affine case; the projective ones in the module docs).
    #[inline]
    fn add_dtheta(self, t: &[f64], x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64; 8]) {
        if gx == 0.0 && gy == 0.0 {
            return; // also keeps 0·∞ out where D = 0
        }
        match self {
            Warp::Affine => {
                for (r, gk) in [gx, gy].into_iter().enumerate() {
                    acc[3 * r] += gk * x;
                    acc[3 * r + 1] += gk * y;
                    acc[3 * r + 2] += gk;
                }
            }
            Warp::Projective => {
                let (xsrc, ysrc, den) = self.source(t, x, y);
                for (r, gk) in [gx, gy].into_iter().enumerate() {
                    acc[3 * r] += gk * x / den;
                    acc[3 * r + 1] += gk * y / den;
                    acc[3 * r + 2] += gk / den;
                }
                let cxy = gx * xsrc + gy * ysrc;
                acc[6] -= cxy * x / den;
                acc[7] -= cxy * y / den;
            }
        }
    }
}

/// What every fused kernel needs: sizes, the output's base grid axes and θ in f64.
struct Setup {
    p: usize,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    xs: Vec<f64>,
    ys: Vec<f64>,
    th: Vec<f64>,
}

impl Setup {
    fn new(warp: Warp, input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Setup {
        let (is, p) = (input.shape(), warp.params());
        let n = theta.shape()[0];
        assert!(
            is.len() == 4 && is[0] == n && is[2] > 0 && is[3] > 0,
            "fused sampling: input must be N×C×H×W with N = {n} (θ's batch) and H, W > 0, got {is:?}"
        );
        crate::sampler::check_plane("fused sampling", is);
        let (ho, wo) = (out_hw[0], out_hw[1]);
        Setup {
            p,
            n,
            c: is[1],
            h: is[2],
            w: is[3],
            ho,
            wo,
            xs: base_axis(wo, opts.align_corners),
            ys: base_axis(ho, opts.align_corners),
            th: theta.value().data().iter().map(|&v| v as f64).collect(),
        }
    }
}

/// The output pixels' source points: θ per batch item and the base grid axes.
struct Sources {
    warp: Warp,
    p: usize,
    th: Vec<f64>,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Sources {
    /// Writes the source points of output pixels q, q + 1, … (row-major) of
    /// item `b` into `sx`, `sy`, computed in f64 and rounded once. Inlined
    /// into the sampler's kernels, so it runs in their (AVX2) build; rows are
    /// walked as runs so the inner loop has no branch.
    #[inline(always)]
    fn points(&self, b: usize, q: usize, sx: &mut [f32], sy: &mut [f32]) {
        let t = &self.th[b * self.p..][..self.p];
        row_runs(self.xs.len(), q, sx.len(), |k, i, j0, m| {
            let (xs, y) = (&self.xs[j0..j0 + m], self.ys[i]);
            let (ox, oy) = (&mut sx[k..k + m], &mut sy[k..k + m]);
            // One loop per warp, the warp a constant inside it.
            let run = |warp: Warp, ox: &mut [f32], oy: &mut [f32]| {
                for ((&x, ox), oy) in xs.iter().zip(ox).zip(oy) {
                    let (a, c, _) = warp.source(t, x, y);
                    (*ox, *oy) = (a as f32, c as f32);
                }
            };
            match self.warp {
                Warp::Affine => run(Warp::Affine, ox, oy),
                Warp::Projective => run(Warp::Projective, ox, oy),
            }
        });
    }

    /// Adds ∂L/∂θ of item `b` for output pixels q, q + 1, … given their
    /// ∂L/∂(x_s, y_s) = (gx, gy). Affine: per row run, Σ g·x and Σ g in f64
    /// over 4 fixed lanes (a fixed order, so the bits do not depend on
    /// threads), then θ's y column as y·Σ g.
    #[inline(always)]
    fn add_dtheta(&self, b: usize, q: usize, gx: &[f32], gy: &[f32], acc: &mut [f64; 8]) {
        let t = &self.th[b * self.p..][..self.p];
        row_runs(self.xs.len(), q, gx.len(), |k, i, j0, m| {
            let (xs, y) = (&self.xs[j0..j0 + m], self.ys[i]);
            let (gx, gy) = (&gx[k..k + m], &gy[k..k + m]);
            match self.warp {
                Warp::Affine => {
                    // Lanes of Σ gx·x, Σ gx, Σ gy·x, Σ gy.
                    let mut l = [[0.0f64; 4]; 4];
                    let mut add = |lane: usize, x: f64, a: f32, c: f32| {
                        let (a, c) = (a as f64, c as f64);
                        l[0][lane] += a * x;
                        l[1][lane] += a;
                        l[2][lane] += c * x;
                        l[3][lane] += c;
                    };
                    let whole = m - m % 4;
                    for ((x4, a4), c4) in xs[..whole]
                        .chunks_exact(4)
                        .zip(gx[..whole].chunks_exact(4))
                        .zip(gy[..whole].chunks_exact(4))
                    {
                        for lane in 0..4 {
                            add(lane, x4[lane], a4[lane], c4[lane]);
                        }
                    }
                    for j in whole..m {
                        add(j - whole, xs[j], gx[j], gy[j]);
                    }
                    let s = l.map(|v| (v[0] + v[1]) + (v[2] + v[3]));
                    acc[0] += s[0];
                    acc[1] += s[1] * y;
                    acc[2] += s[1];
                    acc[3] += s[2];
                    acc[4] += s[3] * y;
                    acc[5] += s[3];
                }
                Warp::Projective => {
                    for j in 0..m {
                        let (a, c) = (gx[j] as f64, gy[j] as f64);
                        self.warp.add_dtheta(t, xs[j], y, a, c, acc);
                    }
                }
            }
        });
    }
}

/// Output pixels q .. q + len (row-major, rows of `wo`) as runs inside one
/// row: `f(k, i, j0, m)` for the run of `m` pixels at offset `k` of the
/// range, in row `i` from column `j0`.
#[inline(always)]
fn row_runs(wo: usize, q: usize, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (mut q, mut k) = (q, 0);
    while k < len {
        let (i, j0) = (q / wo, q % wo);
        let m = (wo - j0).min(len - k);
        f(k, i, j0, m);
        (q, k) = (q + m, k + m);
    }
}

/// Fused bilinear sampling on the sampler's block kernels: the source points
/// of each block of output pixels are computed from θ, then gathered,
/// scattered and differentiated exactly as `grid_sample` does.
fn fused_bilinear(
    warp: Warp,
    input: &Var,
    theta: &Var,
    out_hw: [usize; 2],
    opts: SampleOptions,
) -> Var {
    let Setup {
        p,
        n,
        c,
        h,
        w,
        ho,
        wo,
        xs,
        ys,
        th,
    } = Setup::new(warp, input, theta, out_hw, opts);
    let src = Sources {
        warp,
        p,
        th,
        xs,
        ys,
    };
    let u = input.value().clone();
    let (in_plane, out_plane, isa) = (h * w, ho * wo, Isa::detect());

    // Forward, eq. (3): one task per batch item, all its channels.
    let out = engine::parallel::written(n * c * out_plane, |all| {
        if out_plane == 0 || c == 0 {
            return;
        }
        let items: Vec<Filler<f32>> = all.chunks(c * out_plane).collect();
        items.into_par_iter().enumerate().for_each(|(b, out_b)| {
            let mut pieces: Vec<Filler<f32>> = out_b.chunks(out_plane).collect();
            let planes = Planes::item(u.data(), b, c, h, w);
            bilinear_kernels::forward(isa, planes, opts, 0, &mut pieces, |q, sx, sy| {
                src.points(b, q, sx, sy)
            });
        });
    });
    let out = Tensor::from_vec(out, &[n, c, ho, wo]);

    Var::custom_op("fused_sample", &[input, theta], out, move |g, needs| {
        let gout = g.data();
        let (need_u, need_theta) = (needs[0], needs[1]);
        let mut du = need_u.then(|| engine::parallel::zeros(n * c * in_plane));
        let mut dt = vec![0.0f32; n * p];
        if out_plane > 0 && (need_u || need_theta) {
            // One task per batch item: its ∂U planes (eq. 6) and its ∂θ
            // (eq. 7 chained through the transform), both in pixel order.
            let mut du_items: Vec<Option<&mut [f32]>> = match du.as_deref_mut() {
                Some(du) => du.chunks_mut(c * in_plane).map(Some).collect(),
                None => (0..n).map(|_| None).collect(),
            };
            du_items
                .par_iter_mut()
                .zip(dt.par_chunks_mut(p))
                .enumerate()
                .for_each(|(b, (du_b, dt_b))| {
                    let mut acc = [0.0f64; 8];
                    bilinear_kernels::backward(
                        isa,
                        Planes::item(u.data(), b, c, h, w),
                        opts,
                        &gout[b * c * out_plane..][..c * out_plane],
                        out_plane,
                        (0, out_plane),
                        du_b.take(),
                        need_theta,
                        |q, sx, sy| src.points(b, q, sx, sy),
                        |q, gx, gy| src.add_dtheta(b, q, gx, gy, &mut acc),
                    );
                    for (o, a) in dt_b.iter_mut().zip(acc) {
                        *o = a as f32;
                    }
                });
        }
        let du = du.map(|d| Tensor::from_vec(d, &[n, c, h, w]));
        vec![du, need_theta.then(|| Tensor::from_vec(dt, &[n, p]))]
    })
}

/// Fused sampling for one kernel (K taps per axis): every output row's source
/// points are computed from θ into the sampler's row buffers and handed to
/// its row kernels, so values and ∂U are those of the two-step path.
fn fused_k<const K: usize>(
    warp: Warp,
    input: &Var,
    theta: &Var,
    out_hw: [usize; 2],
    opts: SampleOptions,
    fill: FillAxis<K>,
) -> Var {
    let Setup {
        p,
        n,
        c,
        h,
        w,
        ho,
        wo,
        xs,
        ys,
        th,
    } = Setup::new(warp, input, theta, out_hw, opts);
    let u = input.value().clone();
    let (in_plane, out_plane) = (h * w, ho * wo);

    // The taps of output row `i` of batch item `b`.
    let row_taps = move |taps: &mut RowTaps<K>, t: &[f64], xs: &[f64], y: f64| {
        taps.compute_from(h, w, fill, opts, |j| {
            let (sx, sy, _) = warp.source(t, xs[j], y);
            (sx as f32, sy as f32)
        });
    };

    // Forward, eq. (3): one task per batch item, all its channels.
    let mut out = engine::parallel::zeros(n * c * out_plane);
    if out_plane > 0 {
        out.par_chunks_mut(c * out_plane)
            .enumerate()
            .for_each(|(b, out_b)| {
                let t = &th[b * p..][..p];
                let in_b = &u.data()[b * c * in_plane..][..c * in_plane];
                let mut taps = RowTaps::<K>::new(wo);
                for (i, &y) in ys.iter().enumerate() {
                    row_taps(&mut taps, t, &xs, y);
                    for (plane, o) in in_b
                        .chunks_exact(in_plane)
                        .zip(out_b.chunks_exact_mut(out_plane))
                    {
                        sample_row(plane, w, &taps, &mut o[i * wo..][..wo]);
                    }
                }
            });
    }
    let out = Tensor::from_vec(out, &[n, c, ho, wo]);

    Var::custom_op("fused_sample", &[input, theta], out, move |g, needs| {
        let gout = g.data();
        let du = needs[0].then(|| {
            // Eq. (6): per batch item, channels and pixels in order.
            let mut du = engine::parallel::zeros(n * c * in_plane);
            if out_plane > 0 {
                du.par_chunks_mut(c * in_plane)
                    .enumerate()
                    .for_each(|(b, du_b)| {
                        let t = &th[b * p..][..p];
                        let mut taps = RowTaps::<K>::new(wo);
                        for (i, &y) in ys.iter().enumerate() {
                            row_taps(&mut taps, t, &xs, y);
                            for (ch, plane) in du_b.chunks_exact_mut(in_plane).enumerate() {
                                let go = &gout[(b * c + ch) * out_plane + i * wo..][..wo];
                                scatter_row(plane, w, &taps, go);
                            }
                        }
                    });
            }
            Tensor::from_vec(du, &[n, c, h, w])
        });
        let dtheta = needs[1].then(|| {
            let mut dt = vec![0.0f32; n * p];
            dt.par_chunks_mut(p).enumerate().for_each(|(b, dt_b)| {
                let t = &th[b * p..][..p];
                let in_b = &u.data()[b * c * in_plane..][..c * in_plane];
                let mut taps = RowTaps::<K>::new(wo);
                let (mut gix, mut giy) = (vec![0.0f32; wo], vec![0.0f32; wo]);
                let mut acc = [0.0f64; 8];
                for (i, &y) in ys.iter().enumerate() {
                    row_taps(&mut taps, t, &xs, y);
                    gix.fill(0.0);
                    giy.fill(0.0);
                    // Eq. (7), summed over channels in order.
                    for (ch, plane) in in_b.chunks_exact(in_plane).enumerate() {
                        let go = &gout[(b * c + ch) * out_plane + i * wo..][..wo];
                        grid_grad_row(plane, w, &taps, go, &mut gix, &mut giy);
                    }
                    for (j, &x) in xs.iter().enumerate() {
                        // ∂L/∂(x_s, y_s): chained through unnormalisation and
                        // padding exactly as the sampler's ∂grid (f32 products).
                        let gx = (gix[j] * taps.x.mult[j]) as f64;
                        let gy = (giy[j] * taps.y.mult[j]) as f64;
                        warp.add_dtheta(t, x, y, gx, gy, &mut acc);
                    }
                }
                for (o, a) in dt_b.iter_mut().zip(acc) {
                    *o = a as f32;
                }
            });
            Tensor::from_vec(dt, &[n, p])
        });
        vec![du, dtheta]
    })
}
