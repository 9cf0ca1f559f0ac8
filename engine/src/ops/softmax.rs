//! Softmax and log-softmax along an axis (numerically stable: the max is
//! subtracted before exponentiating). With `g = ∂L/∂y`, sums along the axis:
//!
//! | op          | forward                                   | ∂L/∂x               |
//! |-------------|-------------------------------------------|---------------------|
//! | softmax     | yᵢ = e^(xᵢ−m) / Σⱼ e^(xⱼ−m)               | y ⊙ (g − Σ g⊙y)      |
//! | log_softmax | yᵢ = xᵢ − m − ln Σⱼ e^(xⱼ−m)              | g − softmax(x)·Σ g  |

use crate::pool;
use crate::{Tensor, Var};

/// Calls `f(lane)` for every lane along `axis`, where a lane is given as
/// (start offset, stride) for `len` elements.
fn for_each_lane(shape: &[usize], axis: usize, mut f: impl FnMut(usize, usize, usize)) {
    assert!(
        axis < shape.len(),
        "softmax: axis {axis} for shape {shape:?}"
    );
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    for o in 0..outer {
        for i in 0..inner {
            f(o * len * inner + i, inner, len);
        }
    }
}

impl Tensor {
    /// Softmax along `axis`.
    pub fn softmax(&self, axis: usize) -> Tensor {
        let x = self.data();
        // The lanes cover every value once; each is written before it is read.
        let mut y = pool::take_for_overwrite(x.len());
        for_each_lane(self.shape(), axis, |s, st, len| {
            let m = (0..len)
                .map(|j| x[s + j * st])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0.0;
            for j in 0..len {
                let e = (x[s + j * st] - m).exp();
                y[s + j * st] = e;
                z += e;
            }
            for j in 0..len {
                y[s + j * st] /= z;
            }
        });
        Tensor::from_vec(y, self.shape())
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: usize) -> Tensor {
        let x = self.data();
        // The lanes cover every value once; each is written before it is read.
        let mut y = pool::take_for_overwrite(x.len());
        for_each_lane(self.shape(), axis, |s, st, len| {
            let m = (0..len)
                .map(|j| x[s + j * st])
                .fold(f32::NEG_INFINITY, f32::max);
            let lse = m
                + (0..len)
                    .map(|j| (x[s + j * st] - m).exp())
                    .sum::<f32>()
                    .ln();
            for j in 0..len {
                y[s + j * st] = x[s + j * st] - lse;
            }
        });
        Tensor::from_vec(y, self.shape())
    }
}

impl Var {
    /// Softmax along `axis`.
    pub fn softmax(&self, axis: usize) -> Var {
        let y = self.value().softmax(axis);
        let y2 = y.clone();
        Var::custom_op("softmax", &[self], y, move |g, _| {
            let (gv, yv) = (g.data(), y2.data());
            let mut dx = pool::take_for_overwrite(gv.len());
            for_each_lane(y2.shape(), axis, |s, st, len| {
                let dot: f32 = (0..len).map(|j| gv[s + j * st] * yv[s + j * st]).sum();
                for j in 0..len {
                    dx[s + j * st] = yv[s + j * st] * (gv[s + j * st] - dot);
                }
            });
            vec![Some(Tensor::from_vec(dx, y2.shape()))]
        })
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: usize) -> Var {
        let y = self.value().log_softmax(axis);
        let y2 = y.clone();
        Var::custom_op("log_softmax", &[self], y, move |g, _| {
            let (gv, yv) = (g.data(), y2.data());
            let mut dx = pool::take_for_overwrite(gv.len());
            for_each_lane(y2.shape(), axis, |s, st, len| {
                let gsum: f32 = (0..len).map(|j| gv[s + j * st]).sum();
                for j in 0..len {
                    dx[s + j * st] = gv[s + j * st] - yv[s + j * st].exp() * gsum;
                }
            });
            vec![Some(Tensor::from_vec(dx, y2.shape()))]
        })
    }
}
