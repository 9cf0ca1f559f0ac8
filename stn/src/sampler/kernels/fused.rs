//! The fused grid generator + sampler: V = sampler(U, T_θ(G)) computed
//! straight from θ through a transform's [`PointMap`], row by row, without
//! materialising the N×H'×W'×2 grid; forward and backward (∂L/∂θ, and ∂L/∂U
//! only when U is tracked) as one tape op. Runs for any transform whose
//! [`crate::Transform::point_map`] is `Some`.
//!
//! The source points are computed from θ in f64 and rounded once into the
//! sampler's buffers; from there the sampler's own kernels run (bilinear: the
//! block kernels of `kernels/mod.rs`; nearest and bicubic: the row taps of
//! `separable`; eq. 3 forward, eq. 6 and 7 backward), so there is one
//! sampling implementation. The backward chains eq. (7) through the map's
//! `add_dtheta` (per row run for bilinear, per point for nearest and bicubic).
//!
//! Agreement with the two-step path (transform → [`crate::sampler::grid_sample_var`])
//! is described in [`crate::fused`] and tested in `stn/tests/fused.rs`.

use super::{Isa, Planes};
use crate::grid::base_axis;
use crate::point_map::PointMap;
use crate::sampler::separable::{grid_grad_row, sample_row, scatter_row, FillAxis, RowTaps};
use crate::sampler::{bicubic, nearest};
use crate::{Mode, SampleOptions};
use engine::parallel::Filler;
use engine::{Tensor, Var};
use rayon::prelude::*;
use std::sync::Arc;

/// V = sampler(U, T_θ(G)) for the transform whose pointwise map is `map`,
/// θ N×P and `input` N×C×H×W, giving N×C×H'×W' for `out_hw = [H', W']`.
///
/// # Panics
/// If θ is not N×P for the map's P, or `input` is not N×C×H×W with the same
/// N and H, W > 0.
pub fn sample(
    map: Arc<dyn PointMap>,
    input: &Var,
    theta: &Var,
    out_hw: [usize; 2],
    opts: SampleOptions,
) -> Var {
    crate::grid::check_theta("fused sampling", theta, map.num_params());
    match opts.mode {
        Mode::Bilinear => fused_bilinear(map, input, theta, out_hw, opts),
        Mode::Nearest => fused_k::<1>(map, input, theta, out_hw, opts, nearest::fill_axis),
        Mode::Bicubic => fused_k::<4>(map, input, theta, out_hw, opts, bicubic::fill_axis),
    }
}

/// What every fused kernel needs: sizes, the output's base grid axes and the
/// map's per-item preparation of θ.
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
    th: Vec<Vec<f64>>,
}

impl Setup {
    fn new(
        map: &dyn PointMap,
        input: &Var,
        theta: &Var,
        out_hw: [usize; 2],
        opts: SampleOptions,
    ) -> Setup {
        let (is, p) = (input.shape(), map.num_params());
        let n = theta.shape()[0];
        assert!(
            is.len() == 4 && is[0] == n && is[2] > 0 && is[3] > 0,
            "fused sampling: input must be N×C×H×W with N = {n} (θ's batch) and H, W > 0, got {is:?}"
        );
        crate::sampler::check_plane("fused sampling", is);
        let (ho, wo) = (out_hw[0], out_hw[1]);
        let th64: Vec<f64> = theta.value().data().iter().map(|&v| v as f64).collect();
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
            th: th64
                .chunks(p.max(1))
                .take(n)
                .map(|t| map.prepare(t))
                .collect(),
        }
    }
}

/// The output pixels' source points: the map, θ per batch item and the base
/// grid axes.
struct Sources {
    map: Arc<dyn PointMap>,
    th: Vec<Vec<f64>>,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Sources {
    /// Writes the source points of output pixels q, q + 1, … (row-major) of
    /// item `b` into `sx`, `sy`, computed in f64 and rounded once, one map
    /// call per row run.
    #[inline(always)]
    fn points(&self, b: usize, q: usize, sx: &mut [f32], sy: &mut [f32]) {
        let t = &self.th[b];
        row_runs(self.xs.len(), q, sx.len(), |k, i, j0, m| {
            let (xs, y) = (&self.xs[j0..j0 + m], self.ys[i]);
            self.map
                .source_row(t, xs, y, &mut sx[k..k + m], &mut sy[k..k + m]);
        });
    }

    /// Adds ∂L/∂θ (the map's accumulator) of item `b` for output pixels q,
    /// q + 1, … given their ∂L/∂(x_s, y_s) = (gx, gy), one map call per row run.
    #[inline(always)]
    fn add_dtheta(&self, b: usize, q: usize, gx: &[f32], gy: &[f32], acc: &mut [f64]) {
        let t = &self.th[b];
        row_runs(self.xs.len(), q, gx.len(), |k, i, j0, m| {
            let (xs, y) = (&self.xs[j0..j0 + m], self.ys[i]);
            self.map
                .add_dtheta_row(t, xs, y, &gx[k..k + m], &gy[k..k + m], acc);
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
    map: Arc<dyn PointMap>,
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
    } = Setup::new(&*map, input, theta, out_hw, opts);
    let acc_len = map.acc_len();
    let src = Sources { map, th, xs, ys };
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
            super::forward(isa, planes, opts, 0, &mut pieces, |q, sx, sy| {
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
                    let mut acc = vec![0.0f64; acc_len];
                    super::backward(
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
                    src.map.finish(&src.th[b], &acc, dt_b);
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
    map: Arc<dyn PointMap>,
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
    } = Setup::new(&*map, input, theta, out_hw, opts);
    let u = input.value().clone();
    let (in_plane, out_plane) = (h * w, ho * wo);
    let acc_len = map.acc_len();

    // The taps of output row `y` of a batch item (θ prepared as `t`), its
    // source points computed into `buf` by one map call.
    let row_taps = {
        let map = map.clone();
        move |taps: &mut RowTaps<K>, buf: &mut [Vec<f32>; 2], t: &[f64], xs: &[f64], y: f64| {
            let [bx, by] = buf;
            map.source_row(t, xs, y, bx, by);
            taps.compute_from(h, w, fill, opts, |j| (bx[j], by[j]));
        }
    };

    // Forward, eq. (3): one task per batch item, all its channels.
    let mut out = engine::parallel::zeros(n * c * out_plane);
    if out_plane > 0 {
        out.par_chunks_mut(c * out_plane)
            .enumerate()
            .for_each(|(b, out_b)| {
                let t = &th[b];
                let in_b = &u.data()[b * c * in_plane..][..c * in_plane];
                let mut taps = RowTaps::<K>::new(wo);
                let mut buf = [vec![0.0f32; wo], vec![0.0f32; wo]];
                for (i, &y) in ys.iter().enumerate() {
                    row_taps(&mut taps, &mut buf, t, &xs, y);
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
                        let t = &th[b];
                        let mut taps = RowTaps::<K>::new(wo);
                        let mut buf = [vec![0.0f32; wo], vec![0.0f32; wo]];
                        for (i, &y) in ys.iter().enumerate() {
                            row_taps(&mut taps, &mut buf, t, &xs, y);
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
                let t = &th[b];
                let in_b = &u.data()[b * c * in_plane..][..c * in_plane];
                let mut taps = RowTaps::<K>::new(wo);
                let mut buf = [vec![0.0f32; wo], vec![0.0f32; wo]];
                let (mut gix, mut giy) = (vec![0.0f32; wo], vec![0.0f32; wo]);
                let mut acc = vec![0.0f64; acc_len];
                for (i, &y) in ys.iter().enumerate() {
                    row_taps(&mut taps, &mut buf, t, &xs, y);
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
                        if gx != 0.0 || gy != 0.0 {
                            map.add_dtheta(t, x, y, gx, gy, &mut acc);
                        }
                    }
                }
                map.finish(t, &acc, dt_b);
            });
            Tensor::from_vec(dt, &[n, p])
        });
        vec![du, dtheta]
    })
}
