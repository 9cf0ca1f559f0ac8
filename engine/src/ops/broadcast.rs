//! NumPy broadcasting: the common shape of two operands, elementwise
//! evaluation over it, and the reduction of a broadcast gradient back to an
//! operand's shape (used once, by the tape).

use crate::parallel::{self, PAR_THRESHOLD};
use crate::pool;
use crate::Tensor;
use rayon::prelude::*;

/// The broadcast shape of `a` and `b` (NumPy rules), or `None` if incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides of `shape` seen through the broadcast shape `out` (0 on broadcast axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = crate::strides_of(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < lead || shape[i - lead] == 1 {
                0
            } else {
                own[i - lead]
            }
        })
        .collect()
}

/// `f(a, b)` elementwise over the broadcast shape.
///
/// # Panics
/// With `op`'s name and both shapes if they do not broadcast.
pub fn zip_with<F>(a: &Tensor, b: &Tensor, op: &str, f: F) -> Tensor
where
    F: Fn(f32, f32) -> f32 + Sync + Send,
{
    if a.shape() == b.shape() {
        return Tensor::from_vec(parallel::zip_map(a.data(), b.data(), f), a.shape());
    }
    let shape = broadcast_shapes(a.shape(), b.shape()).unwrap_or_else(|| {
        panic!(
            "{op}: shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    });
    let nd = shape.len();
    let sa = broadcast_strides(a.shape(), &shape);
    let sb = broadcast_strides(b.shape(), &shape);
    let inner = shape.last().copied().unwrap_or(1).max(1);
    let numel: usize = shape.iter().product();
    let mut out = parallel::zeros(numel);
    if numel == 0 {
        return Tensor::from_vec(out, &shape);
    }
    let (x, y) = (a.data(), b.data());
    let (ia, ib) = if nd == 0 {
        (0, 0)
    } else {
        (sa[nd - 1], sb[nd - 1])
    };
    let row = |r: usize, o: &mut [f32]| {
        // Offsets of this row's first element in a and b.
        let (mut oa, mut ob, mut rem) = (0, 0, r);
        for d in (0..nd.saturating_sub(1)).rev() {
            let i = rem % shape[d];
            rem /= shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        match (ia, ib) {
            (1, 1) => {
                for ((o, &p), &q) in o.iter_mut().zip(&x[oa..]).zip(&y[ob..]) {
                    *o = f(p, q);
                }
            }
            (1, 0) => {
                let q = y[ob];
                for (o, &p) in o.iter_mut().zip(&x[oa..]) {
                    *o = f(p, q);
                }
            }
            (0, 1) => {
                let p = x[oa];
                for (o, &q) in o.iter_mut().zip(&y[ob..]) {
                    *o = f(p, q);
                }
            }
            _ => o.fill(f(x[oa], y[ob])),
        }
    };
    if numel < PAR_THRESHOLD {
        out.chunks_mut(inner)
            .enumerate()
            .for_each(|(r, o)| row(r, o));
    } else {
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(r, o)| row(r, o));
    }
    Tensor::from_vec(out, &shape)
}

impl Tensor {
    /// `f` applied to every element.
    pub fn map<F: Fn(f32) -> f32 + Sync + Send>(&self, f: F) -> Tensor {
        Tensor::from_vec(parallel::map(self.data(), f), self.shape())
    }

    /// Sums a broadcast tensor back down to `target` (which must broadcast to
    /// this tensor's shape). Sums run in row-major order: deterministic.
    ///
    /// # Panics
    /// If `target` does not broadcast to this shape.
    pub fn sum_to_shape(&self, target: &[usize]) -> Tensor {
        if self.shape() == target {
            return self.clone();
        }
        let shape = self.shape();
        assert!(
            broadcast_shapes(target, shape).as_deref() == Some(shape),
            "sum_to_shape: {target:?} does not broadcast to {shape:?}"
        );
        let n_out: usize = target.iter().product();
        if n_out == 1 {
            return Tensor::from_vec(vec![parallel::sum(self.data())], target);
        }
        let nd = shape.len();
        let so = broadcast_strides(target, shape);
        let inner = shape[nd - 1].max(1);
        let last_reduced = so[nd - 1] == 0;
        let mut out = pool::take_zeroed(n_out);
        for (r, row) in self.data().chunks(inner).enumerate() {
            let (mut oo, mut rem) = (0, r);
            for d in (0..nd - 1).rev() {
                oo += (rem % shape[d]) * so[d];
                rem /= shape[d];
            }
            if last_reduced {
                out[oo] += parallel::sum_chunk(row);
            } else {
                for (o, v) in out[oo..oo + inner].iter_mut().zip(row) {
                    *o += v;
                }
            }
        }
        Tensor::from_vec(out, target)
    }
}
