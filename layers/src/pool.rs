//! 2-d max and average pooling, NCHW, no padding.
//!
//! Output size: H' = (H − k)/s + 1 (floor), likewise W'. Window of output
//! (i, j): rows i·s … i·s+k−1, columns j·s … j·s+k−1.
//!
//! | op  | forward                         | ∂L/∂x                                         |
//! |-----|---------------------------------|-----------------------------------------------|
//! | max | y = max over the window         | g added at the window's arg-max, 0 elsewhere  |
//! | avg | y = (1/k²) Σ over the window    | g/k² added to every window element            |
//!
//! Max ties: the arg-max is the FIRST maximal element in row-major window
//! order (the comparison is strict `>`), so the sub-gradient is well defined
//! and deterministic. A NaN in the window wins (it propagates, as in
//! PyTorch). Overlapping windows (s < k) add their gradients.
//!
//! Every (n, c) plane is independent, so planes run in parallel with no
//! reduction across them: results do not depend on the thread count.

use crate::module::{Ctx, Module, Param};
use engine::pool::{self, Pooled};
use engine::{Tensor, Var};
use rayon::prelude::*;

/// Checked pooling geometry: `(n·c planes, h, w, oh, ow)`.
fn geom(op: &str, x: &[usize], k: usize, s: usize) -> (usize, usize, usize, usize, usize) {
    assert!(
        x.len() == 4 && k > 0 && s > 0 && x[2] >= k && x[3] >= k,
        "{op}: input {x:?} does not fit kernel {k} stride {s} (need N×C×H×W with H, W ≥ k)"
    );
    (
        x[0] * x[1],
        x[2],
        x[3],
        (x[2] - k) / s + 1,
        (x[3] - k) / s + 1,
    )
}

/// Max pooling forward: the output and, per output, the flat index (within
/// its plane) of the arg-max (a buffer from the engine's pool; wrapped in a
/// [`Pooled`] it goes back there when dropped).
pub fn max_pool2d_forward(x: &Tensor, k: usize, s: usize) -> (Tensor, Vec<u32>) {
    max_pool_of("max_pool2d", x, k, s, |v| v)
}

/// [`max_pool2d_forward`] of `f` applied to every element of `x` (without
/// storing `f(x)`): the values and arg-maxes of max-pooling `x.map(f)`, bit
/// for bit. `op` names the caller in shape errors.
pub(crate) fn max_pool_of<F: Fn(f32) -> f32 + Sync + Copy>(
    op: &str,
    x: &Tensor,
    k: usize,
    s: usize,
    f: F,
) -> (Tensor, Vec<u32>) {
    let (planes, h, w, oh, ow) = geom(op, x.shape(), k, s);
    let mut out = engine::parallel::zeros(planes * oh * ow);
    let mut arg = engine::parallel::zeros(planes * oh * ow);
    let xd = x.data();
    if !out.is_empty() {
        out.par_chunks_mut(oh * ow)
            .zip(arg.par_chunks_mut(oh * ow))
            .enumerate()
            .for_each(|(pl, (o, a))| {
                let xp = &xd[pl * h * w..(pl + 1) * h * w];
                if k == 2 && s == 2 {
                    max_pool_2x2(xp, w, oh, ow, o, a, f);
                } else {
                    max_pool_plane(xp, w, k, s, oh, ow, o, a, f);
                }
            });
    }
    let mut shape = x.shape().to_vec();
    shape[2] = oh;
    shape[3] = ow;
    (Tensor::from_vec(out, &shape), arg)
}

/// One plane (`w` wide) of [`max_pool_of`], any window and stride.
#[allow(clippy::too_many_arguments)]
fn max_pool_plane<F: Fn(f32) -> f32>(
    xp: &[f32],
    w: usize,
    k: usize,
    s: usize,
    oh: usize,
    ow: usize,
    o: &mut [f32],
    a: &mut [u32],
    f: F,
) {
    for i in 0..oh {
        for j in 0..ow {
            let mut best = f32::NEG_INFINITY;
            let mut bi = (i * s) * w + j * s;
            let mut first = true;
            for u in 0..k {
                for v in 0..k {
                    let idx = (i * s + u) * w + j * s + v;
                    let val = f(xp[idx]);
                    if first || beats(val, best) {
                        best = val;
                        bi = idx;
                        first = false;
                    }
                }
            }
            o[i * ow + j] = best;
            a[i * ow + j] = bi as u32;
        }
    }
}

/// Whether `v` replaces `best` as a window's maximum: strictly greater (ties
/// keep the first), or a NaN where there was none yet.
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// The 2×2, stride-2 case of [`max_pool_of`] on one plane (`w` wide):
/// same visiting order and tie rule as the general loop, without its index
/// arithmetic and bounds checks (the paper's and the tutorial's pools).
fn max_pool_2x2<F: Fn(f32) -> f32>(
    xp: &[f32],
    w: usize,
    oh: usize,
    ow: usize,
    o: &mut [f32],
    a: &mut [u32],
    f: F,
) {
    for i in 0..oh {
        let r0 = &xp[2 * i * w..][..2 * ow];
        let r1 = &xp[(2 * i + 1) * w..][..2 * ow];
        let (orow, arow) = (&mut o[i * ow..][..ow], &mut a[i * ow..][..ow]);
        let base = (2 * i * w) as u32;
        for (j, ((od, ad), (t, b))) in orow
            .iter_mut()
            .zip(arow.iter_mut())
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
            .enumerate()
        {
            let c0 = base + 2 * j as u32;
            let (t0, t1, b0, b1) = (f(t[0]), f(t[1]), f(b[0]), f(b[1]));
            let (mut best, mut bi) = (t0, c0);
            if beats(t1, best) {
                (best, bi) = (t1, c0 + 1);
            }
            if beats(b0, best) {
                (best, bi) = (b0, c0 + w as u32);
            }
            if beats(b1, best) {
                (best, bi) = (b1, c0 + w as u32 + 1);
            }
            *od = best;
            *ad = bi;
        }
    }
}

/// Max pooling backward: scatters `g` to the recorded arg-maxes.
pub fn max_pool2d_backward(g: &Tensor, arg: &[u32], in_shape: &[usize]) -> Tensor {
    scatter_where(g, arg, in_shape, None)
}

/// [`max_pool2d_backward`] that skips the outputs whose `keep` value is not
/// positive (`keep`: `None` keeps all).
pub(crate) fn scatter_where(
    g: &Tensor,
    arg: &[u32],
    in_shape: &[usize],
    keep: Option<&Tensor>,
) -> Tensor {
    let (h, w) = (in_shape[2], in_shape[3]);
    let (oh, ow) = (g.shape()[2], g.shape()[3]);
    let mut dx = engine::parallel::zeros(in_shape.iter().product());
    let gd = g.data();
    if !dx.is_empty() && oh * ow > 0 {
        dx.par_chunks_mut(h * w).enumerate().for_each(|(pl, d)| {
            let gp = &gd[pl * oh * ow..(pl + 1) * oh * ow];
            let ap = &arg[pl * oh * ow..(pl + 1) * oh * ow];
            match keep {
                None => {
                    for (&gv, &a) in gp.iter().zip(ap) {
                        d[a as usize] += gv;
                    }
                }
                Some(y) => {
                    let yp = &y.data()[pl * oh * ow..(pl + 1) * oh * ow];
                    for ((&gv, &a), &yv) in gp.iter().zip(ap).zip(yp) {
                        if yv > 0.0 {
                            d[a as usize] += gv;
                        }
                    }
                }
            }
        });
    }
    Tensor::from_vec(dx, in_shape)
}

/// Tracked max pooling with a `k`×`k` window and stride `s`.
pub fn max_pool2d(x: &Var, k: usize, s: usize) -> Var {
    let (out, arg) = max_pool2d_forward(x.value(), k, s);
    // Back to the pool when the tape drops the backward.
    let arg = Pooled::new(arg);
    let in_shape = x.shape().to_vec();
    Var::custom_op("max_pool2d", &[x], out, move |g, _| {
        vec![Some(max_pool2d_backward(g, &arg, &in_shape))]
    })
}

/// Average pooling forward.
pub fn avg_pool2d_forward(x: &Tensor, k: usize, s: usize) -> Tensor {
    let (planes, h, w, oh, ow) = geom("avg_pool2d", x.shape(), k, s);
    // Every plane is written in full below.
    let mut out = pool::take_for_overwrite(planes * oh * ow);
    let xd = x.data();
    let inv = 1.0 / (k * k) as f32;
    if !out.is_empty() {
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(pl, o)| {
            let xp = &xd[pl * h * w..(pl + 1) * h * w];
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0.0f32;
                    for u in 0..k {
                        let row = &xp[(i * s + u) * w + j * s..][..k];
                        acc += row.iter().sum::<f32>();
                    }
                    o[i * ow + j] = acc * inv;
                }
            }
        });
    }
    let mut shape = x.shape().to_vec();
    shape[2] = oh;
    shape[3] = ow;
    Tensor::from_vec(out, &shape)
}

/// Average pooling backward: `g/k²` to every element of each window.
pub fn avg_pool2d_backward(g: &Tensor, in_shape: &[usize], k: usize, s: usize) -> Tensor {
    let (h, w) = (in_shape[2], in_shape[3]);
    let (oh, ow) = (g.shape()[2], g.shape()[3]);
    let mut dx = engine::parallel::zeros(in_shape.iter().product());
    let gd = g.data();
    let inv = 1.0 / (k * k) as f32;
    if !dx.is_empty() && oh * ow > 0 {
        dx.par_chunks_mut(h * w).enumerate().for_each(|(pl, d)| {
            let gp = &gd[pl * oh * ow..(pl + 1) * oh * ow];
            for i in 0..oh {
                for j in 0..ow {
                    let gv = gp[i * ow + j] * inv;
                    for u in 0..k {
                        for x in &mut d[(i * s + u) * w + j * s..][..k] {
                            *x += gv;
                        }
                    }
                }
            }
        });
    }
    Tensor::from_vec(dx, in_shape)
}

/// Tracked average pooling with a `k`×`k` window and stride `s`.
pub fn avg_pool2d(x: &Var, k: usize, s: usize) -> Var {
    let out = avg_pool2d_forward(x.value(), k, s);
    let in_shape = x.shape().to_vec();
    Var::custom_op("avg_pool2d", &[x], out, move |g, _| {
        vec![Some(avg_pool2d_backward(g, &in_shape, k, s))]
    })
}

fn pooled_shape(op: &str, input: &[usize], k: usize, s: usize) -> Vec<usize> {
    let (_, _, _, oh, ow) = geom(op, input, k, s);
    vec![input[0], input[1], oh, ow]
}

/// Max pooling layer; with [`MaxPool2d::after_relu`], ReLU then max pooling
/// in one pass ([`crate::relu_max_pool2d`]).
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Rectify the input first (ReLU fused in; the same bits as a
    /// [`crate::ReLU`] layer before this one).
    pub relu: bool,
}

impl MaxPool2d {
    /// A `k`×`k` window with stride `k` (non-overlapping).
    pub fn new(k: usize) -> MaxPool2d {
        MaxPool2d::with_stride(k, k)
    }

    /// A `k`×`k` window with stride `s`.
    pub fn with_stride(k: usize, s: usize) -> MaxPool2d {
        MaxPool2d {
            kernel: k,
            stride: s,
            relu: false,
        }
    }

    /// The same pooling with a ReLU fused in front.
    pub fn after_relu(self) -> MaxPool2d {
        MaxPool2d { relu: true, ..self }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Var, _ctx: &Ctx) -> Var {
        if self.relu {
            crate::relu_max_pool2d(x, self.kernel, self.stride)
        } else {
            max_pool2d(x, self.kernel, self.stride)
        }
    }
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    fn describe(&self) -> String {
        let relu = if self.relu { "ReLU+" } else { "" };
        format!("{relu}MaxPool2d k{} s{}", self.kernel, self.stride)
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        pooled_shape("MaxPool2d", input, self.kernel, self.stride)
    }
}

/// Average pooling layer.
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

impl AvgPool2d {
    /// A `k`×`k` window with stride `k` (non-overlapping).
    pub fn new(k: usize) -> AvgPool2d {
        AvgPool2d {
            kernel: k,
            stride: k,
        }
    }

    /// A `k`×`k` window with stride `s`.
    pub fn with_stride(k: usize, s: usize) -> AvgPool2d {
        AvgPool2d {
            kernel: k,
            stride: s,
        }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Var, _ctx: &Ctx) -> Var {
        avg_pool2d(x, self.kernel, self.stride)
    }
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    fn describe(&self) -> String {
        format!("AvgPool2d k{} s{}", self.kernel, self.stride)
    }
    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        pooled_shape("AvgPool2d", input, self.kernel, self.stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_2x2_matches_the_general_loop_with_ties_and_nans() {
        // 3 planes of 9×7 (odd sides: the last row and column are dropped),
        // values from a small set so windows tie, and a few NaNs.
        let (h, w) = (9usize, 7usize);
        let (oh, ow) = ((h - 2) / 2 + 1, (w - 2) / 2 + 1);
        for seed in 0..3u32 {
            let xp: Vec<f32> = (0..(h * w) as u32)
                .map(|i| {
                    let r = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) >> 7;
                    if r % 17 == 0 {
                        f32::NAN
                    } else {
                        (r % 4) as f32 - 1.5
                    }
                })
                .collect();
            // Plain, and with the ReLU of the fused layer applied on reading.
            let relu: fn(f32) -> f32 = engine::ops::unary::relu;
            let identity: fn(f32) -> f32 = |v| v;
            for f in [identity, relu] {
                let (mut o1, mut a1) = (vec![0.0; oh * ow], vec![0u32; oh * ow]);
                let (mut o2, mut a2) = (vec![0.0; oh * ow], vec![0u32; oh * ow]);
                max_pool_2x2(&xp, w, oh, ow, &mut o1, &mut a1, f);
                max_pool_plane(&xp, w, 2, 2, oh, ow, &mut o2, &mut a2, f);
                assert_eq!(a1, a2);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&o1), bits(&o2));
            }
            assert!(xp.iter().any(|x| x.is_nan()), "the data should hold NaNs");
        }
    }
}
