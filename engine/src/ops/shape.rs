//! Shape ops: they move values, never change them. With `g = ∂L/∂y`:
//!
//! | op                    | forward                         | ∂L/∂x                               |
//! |-----------------------|---------------------------------|-------------------------------------|
//! | reshape               | same values, new shape          | g reshaped back                     |
//! | permute(p)            | y[i_p0, i_p1, ..] = x[i0, i1, ..] | g permuted by p⁻¹                 |
//! | narrow(k, s, n)       | y = x[.., s..s+n, ..] on axis k | g placed at s..s+n, zeros elsewhere |
//! | concat(k)             | pieces joined on axis k         | g cut back into the pieces          |
//! | stack(k)              | concat of unsqueezed pieces     | g cut and squeezed                  |

use crate::pool;
use crate::{Tensor, Var};

fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

impl Tensor {
    /// The same values with a new shape of equal size.
    ///
    /// # Panics
    /// If the sizes differ.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        assert!(
            n == self.numel(),
            "reshape: cannot reshape {:?} ({} values) to {shape:?} ({n} values)",
            self.shape(),
            self.numel()
        );
        Tensor::from_vec_shared(self, shape)
    }

    /// Reorders axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let shape = self.shape();
        let nd = shape.len();
        let mut seen = vec![false; nd];
        assert!(
            perm.len() == nd
                && perm
                    .iter()
                    .all(|&p| p < nd && !std::mem::replace(&mut seen[p], true)),
            "permute: {perm:?} is not a permutation of the axes of {shape:?}"
        );
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.clone();
        }
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let src_strides = crate::strides_of(shape);
        let st: Vec<usize> = perm.iter().map(|&p| src_strides[p]).collect();
        let x = self.data();
        let inner = out_shape[nd - 1].max(1);
        let last = st[nd - 1];
        // Every row is written in full below.
        let mut out = pool::take_for_overwrite(self.numel());
        for (r, row) in out.chunks_mut(inner).enumerate() {
            let (mut off, mut rem) = (0, r);
            for d in (0..nd - 1).rev() {
                off += (rem % out_shape[d]) * st[d];
                rem /= out_shape[d];
            }
            for (j, o) in row.iter_mut().enumerate() {
                *o = x[off + j * last];
            }
        }
        Tensor::from_vec(out, &out_shape)
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut p: Vec<usize> = (0..self.ndim()).collect();
        p.swap(a, b);
        self.permute(&p)
    }

    /// `len` entries of `axis` starting at `start`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        let shape = self.shape();
        assert!(
            axis < shape.len() && start + len <= shape[axis],
            "narrow: axis {axis}, range {start}..{} out of bounds for shape {shape:?}",
            start + len
        );
        let (outer, inner) = outer_inner(shape, axis);
        let x = self.data();
        let mut out = pool::take_empty(outer * len * inner);
        for o in 0..outer {
            let base = (o * shape[axis] + start) * inner;
            out.extend_from_slice(&x[base..base + len * inner]);
        }
        let mut s = shape.to_vec();
        s[axis] = len;
        Tensor::from_vec(out, &s)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    pub fn concat(parts: &[&Tensor], axis: usize) -> Tensor {
        assert!(!parts.is_empty(), "concat: no tensors given");
        let first = parts[0].shape();
        assert!(
            axis < first.len(),
            "concat: axis {axis} out of range for shape {first:?}"
        );
        for p in parts {
            let s = p.shape();
            let ok = s.len() == first.len()
                && s.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            assert!(
                ok,
                "concat: shapes {first:?} and {s:?} differ off axis {axis}"
            );
        }
        let (outer, inner) = outer_inner(first, axis);
        let total: usize = parts.iter().map(|p| p.shape()[axis]).sum();
        let mut out = pool::take_empty(outer * total * inner);
        for o in 0..outer {
            for p in parts {
                let n = p.shape()[axis] * inner;
                out.extend_from_slice(&p.data()[o * n..(o + 1) * n]);
            }
        }
        let mut s = first.to_vec();
        s[axis] = total;
        Tensor::from_vec(out, &s)
    }

    /// Stacks equal-shaped tensors along a new axis.
    pub fn stack(parts: &[&Tensor], axis: usize) -> Tensor {
        assert!(!parts.is_empty(), "stack: no tensors given");
        let unsq: Vec<Tensor> = parts.iter().map(|p| p.unsqueeze(axis)).collect();
        for p in parts {
            assert!(
                p.shape() == parts[0].shape(),
                "stack: shapes {:?} and {:?} differ",
                parts[0].shape(),
                p.shape()
            );
        }
        Tensor::concat(&unsq.iter().collect::<Vec<_>>(), axis)
    }

    /// Inserts an axis of size 1 at `axis`.
    pub fn unsqueeze(&self, axis: usize) -> Tensor {
        let mut s = self.shape().to_vec();
        assert!(axis <= s.len(), "unsqueeze: axis {axis} for shape {s:?}");
        s.insert(axis, 1);
        self.reshape(&s)
    }

    /// Shares this tensor's storage under another shape of equal size.
    fn from_vec_shared(src: &Tensor, shape: &[usize]) -> Tensor {
        let mut t = src.clone();
        t.set_shape_unchecked(shape);
        t
    }
}

impl Var {
    /// The same values with a new shape of equal size.
    pub fn reshape(&self, shape: &[usize]) -> Var {
        let orig = self.shape().to_vec();
        Var::custom_op(
            "reshape",
            &[self],
            self.value().reshape(shape),
            move |g, _| vec![Some(g.reshape(&orig))],
        )
    }

    /// Reorders axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Var {
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            if p < inv.len() {
                inv[p] = i;
            }
        }
        Var::custom_op(
            "permute",
            &[self],
            self.value().permute(perm),
            move |g, _| vec![Some(g.permute(&inv))],
        )
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Var {
        let mut p: Vec<usize> = (0..self.shape().len()).collect();
        p.swap(a, b);
        self.permute(&p)
    }

    /// `len` entries of `axis` starting at `start`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Var {
        let shape = self.shape().to_vec();
        Var::custom_op(
            "narrow",
            &[self],
            self.value().narrow(axis, start, len),
            move |g, _| {
                let (outer, inner) = outer_inner(&shape, axis);
                let mut dx = pool::take_zeroed(shape.iter().product());
                for o in 0..outer {
                    let dst = (o * shape[axis] + start) * inner;
                    let src = o * len * inner;
                    dx[dst..dst + len * inner].copy_from_slice(&g.data()[src..src + len * inner]);
                }
                vec![Some(Tensor::from_vec(dx, &shape))]
            },
        )
    }

    /// Joins values along `axis`.
    pub fn concat(parts: &[&Var], axis: usize) -> Var {
        let values: Vec<&Tensor> = parts.iter().map(|p| p.value()).collect();
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[axis]).collect();
        Var::custom_op(
            "concat",
            parts,
            Tensor::concat(&values, axis),
            move |g, needs| {
                let mut start = 0;
                sizes
                    .iter()
                    .zip(needs)
                    .map(|(&n, &need)| {
                        let piece = need.then(|| g.narrow(axis, start, n));
                        start += n;
                        piece
                    })
                    .collect()
            },
        )
    }

    /// Stacks equal-shaped values along a new axis.
    pub fn stack(parts: &[&Var], axis: usize) -> Var {
        let unsq: Vec<Var> = parts.iter().map(|p| p.unsqueeze(axis)).collect();
        Var::concat(&unsq.iter().collect::<Vec<_>>(), axis)
    }

    /// Inserts an axis of size 1 at `axis`.
    pub fn unsqueeze(&self, axis: usize) -> Var {
        let mut s = self.shape().to_vec();
        assert!(axis <= s.len(), "unsqueeze: axis {axis} for shape {s:?}");
        s.insert(axis, 1);
        self.reshape(&s)
    }
}
