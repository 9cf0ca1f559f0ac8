//! Reductions. With `g = ∂L/∂y`:
//!
//! | op                 | forward              | ∂L/∂x                                    |
//! |--------------------|----------------------|------------------------------------------|
//! | sum (all)          | y = Σᵢ xᵢ            | g broadcast to x's shape                 |
//! | sum over axis k    | y = Σₖ x[..k..]      | g broadcast back along k                 |
//! | mean               | y = Σ x / n          | g / n broadcast                          |
//! | max over axis k    | y = maxₖ x[..k..]    | g at the first arg-max along k, 0 else   |
//!
//! All sums run in a fixed order (fixed-size chunks, then chunk order), so the
//! results do not depend on the thread count.

use crate::{parallel, pool};
use crate::{Tensor, Var};

/// Splits a shape around `axis` into (outer, axis length, inner).
fn split_axis(shape: &[usize], axis: usize, op: &str) -> (usize, usize, usize) {
    assert!(
        axis < shape.len(),
        "{op}: axis {axis} out of range for shape {shape:?}"
    );
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl Tensor {
    /// Sum of all elements.
    pub fn sum_all(&self) -> f32 {
        parallel::sum(self.data())
    }

    /// Mean of all elements.
    pub fn mean_all(&self) -> f32 {
        self.sum_all() / self.numel() as f32
    }

    /// Largest element (NaN if any element is NaN; −∞ if empty).
    pub fn max_all(&self) -> f32 {
        self.data().iter().fold(f32::NEG_INFINITY, |m, &v| {
            if v.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(v)
            }
        })
    }

    /// Sum over `axis`.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        let (outer, len, inner) = split_axis(self.shape(), axis, "sum_axis");
        let x = self.data();
        let mut out = pool::take_zeroed(outer * inner);
        for o in 0..outer {
            let dst = &mut out[o * inner..(o + 1) * inner];
            for k in 0..len {
                let src = &x[(o * len + k) * inner..(o * len + k + 1) * inner];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
            }
        }
        Tensor::from_vec(out, &reduced_shape(self.shape(), axis, keepdim))
    }

    /// Mean over `axis`.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        let n = self.shape()[axis] as f32;
        self.sum_axis(axis, keepdim).scale(1.0 / n)
    }

    /// Index of the largest value along `axis` (first one on ties), as f32-free `usize`s.
    pub fn argmax_axis(&self, axis: usize) -> Vec<usize> {
        let (outer, len, inner) = split_axis(self.shape(), axis, "argmax_axis");
        assert!(len > 0, "argmax_axis: axis {axis} is empty");
        let x = self.data();
        let mut out = vec![0usize; outer * inner];
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0;
                let mut bv = x[o * len * inner + i];
                for k in 1..len {
                    let v = x[(o * len + k) * inner + i];
                    if v > bv {
                        bv = v;
                        best = k;
                    }
                }
                out[o * inner + i] = best;
            }
        }
        out
    }

    /// Largest value along `axis` (first one on ties).
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Tensor {
        let (_, len, inner) = split_axis(self.shape(), axis, "max_axis");
        let arg = self.argmax_axis(axis);
        let x = self.data();
        let mut out = pool::take_empty(arg.len());
        out.extend(arg.iter().enumerate().map(|(j, &k)| {
            let (o, i) = (j / inner, j % inner);
            x[(o * len + k) * inner + i]
        }));
        Tensor::from_vec(out, &reduced_shape(self.shape(), axis, keepdim))
    }
}

impl Var {
    /// Sum of all elements (a 0-d value).
    pub fn sum(&self) -> Var {
        let shape = self.shape().to_vec();
        let out = Tensor::scalar(self.value().sum_all());
        Var::custom_op("sum", &[self], out, move |g, _| {
            vec![Some(Tensor::full(&shape, g.item()))]
        })
    }

    /// Mean of all elements (a 0-d value).
    pub fn mean(&self) -> Var {
        let n = self.value().numel() as f32;
        self.sum().scale(1.0 / n)
    }

    /// Sum over `axis`.
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Var {
        let shape = self.shape().to_vec();
        let out = self.value().sum_axis(axis, keepdim);
        Var::custom_op("sum_axis", &[self], out, move |g, _| {
            // Put the axis back as size 1, then broadcast.
            let g = g.reshape(&reduced_shape(&shape, axis, true));
            vec![Some(g.add(&Tensor::zeros(&shape)))]
        })
    }

    /// Mean over `axis`.
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Var {
        let n = self.shape()[axis] as f32;
        self.sum_axis(axis, keepdim).scale(1.0 / n)
    }

    /// Largest value along `axis`; the gradient goes to the first arg-max.
    pub fn max_axis(&self, axis: usize, keepdim: bool) -> Var {
        let shape = self.shape().to_vec();
        let (_, len, inner) = split_axis(&shape, axis, "max_axis");
        let arg = self.value().argmax_axis(axis);
        let out = self.value().max_axis(axis, keepdim);
        Var::custom_op("max_axis", &[self], out, move |g, _| {
            let mut dx = pool::take_zeroed(shape.iter().product());
            for (j, (&k, &gv)) in arg.iter().zip(g.data()).enumerate() {
                let (o, i) = (j / inner, j % inner);
                dx[(o * len + k) * inner + i] = gv;
            }
            vec![Some(Tensor::from_vec(dx, &shape))]
        })
    }
}
