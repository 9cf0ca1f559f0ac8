//! Matrix products on matrixmultiply's sgemm.
//!
//! Forward: `C = A·B` (A m×k, B k×n), batched: `C_b = A_b·B_b`.
//! Backward, with `G = ∂L/∂C`: `∂L/∂A = G·Bᵀ`, `∂L/∂B = Aᵀ·G` (per batch).
//! Transposes are never materialised: [`gemm`] reads either operand through
//! its strides.
//!
//! Large products are split into fixed blocks of [`ROW_BLOCK`] output rows run
//! in parallel. Each output element is computed by the same kernel whatever
//! the block it lands in, and blocks never depend on the thread count, so the
//! result is bit-identical for any `RAYON_NUM_THREADS`.

use crate::pool;
use crate::{Tensor, Var};
use rayon::prelude::*;

/// Output rows per parallel block.
pub const ROW_BLOCK: usize = 64;

/// Below this many multiply-adds a product runs on the calling thread.
const PAR_FLOPS: usize = 1 << 20;

/// `C = op(A)·op(B) (+ C if accumulate)`, all row-major, where `op(A)` is m×k
/// (stored k×m if `ta`) and `op(B)` is k×n (stored n×k if `tb`).
///
/// # Panics
/// If a slice is shorter than its dimensions require.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "gemm: slices too short for {m}×{k}·{k}×{n} (a {}, b {}, c {})",
        a.len(),
        b.len(),
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if m * n * k < PAR_FLOPS || m <= ROW_BLOCK {
        gemm_block(m, 0, m, k, n, a, ta, b, tb, c, accumulate);
    } else {
        c.par_chunks_mut(ROW_BLOCK * n)
            .enumerate()
            .for_each(|(i, cb)| {
                let rows = cb.len() / n;
                gemm_block(m, i * ROW_BLOCK, rows, k, n, a, ta, b, tb, cb, accumulate);
            });
    }
}

/// Rows `r0..r0+rows` of the product (op(A) has `m` rows) into `c` (rows×n).
#[allow(clippy::too_many_arguments)]
fn gemm_block(
    m: usize,
    r0: usize,
    rows: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    #[cfg(not(feature = "safe-gemm"))]
    {
        // A transposed is stored k×m: row i of op(A) is column i of storage.
        let (a_off, rsa, csa) = if ta {
            (r0, 1isize, m as isize)
        } else {
            (r0 * k, k as isize, 1isize)
        };
        let (rsb, csb) = if tb {
            (1isize, k as isize)
        } else {
            (n as isize, 1isize)
        };
        // The last element sgemm reads of A and B must be in bounds.
        if k > 0 {
            let a_last = a_off + (rows - 1) * rsa as usize + (k - 1) * csa as usize;
            let b_last = (k - 1) * rsb as usize + (n - 1) * csb as usize;
            assert!(
                a_last < a.len() && b_last < b.len(),
                "gemm: operand out of bounds"
            );
        }
        // SAFETY: sgemm reads op(A)[i][p] at a_ptr + i*rsa + p*csa for i < rows,
        // p < k; the largest such offset is `a_last`, checked < a.len() above,
        // and likewise `b_last` < b.len() for B. It writes C[i][j] at
        // c + i*n + j for i < rows, j < n, and c.len() == rows*n (callers pass
        // an exact block). All pointers come from live slices borrowed for the
        // duration of the call, C is borrowed mutably so it aliases neither A
        // nor B, and with beta = 0 sgemm never reads uninitialised C (c is
        // initialised anyway).
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                n,
                1.0,
                a.as_ptr().add(a_off),
                rsa,
                csa,
                b.as_ptr(),
                rsb,
                csb,
                if accumulate { 1.0 } else { 0.0 },
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
    #[cfg(feature = "safe-gemm")]
    gemm_safe(m, r0, rows, k, n, a, ta, b, tb, c, accumulate);
}

/// The safe fallback of [`gemm`] (feature `safe-gemm`): a plain i-p-j loop.
/// Also used by the tests as the reference for the sgemm path. Computes rows
/// `r0..r0+rows` of the product, where op(A) has `m` rows.
#[allow(clippy::too_many_arguments)]
pub fn gemm_safe(
    m: usize,
    r0: usize,
    rows: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    if !accumulate {
        c[..rows * n].fill(0.0);
    }
    for i in 0..rows {
        let crow = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let av = if ta {
                a[p * m + r0 + i]
            } else {
                a[(r0 + i) * k + p]
            };
            for (j, cv) in crow.iter_mut().enumerate() {
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                *cv += av * bv;
            }
        }
    }
}

fn check_2d(op: &str, a: &[usize], b: &[usize]) -> (usize, usize, usize) {
    assert!(
        a.len() == 2 && b.len() == 2 && a[1] == b[0],
        "{op}: shapes {a:?} and {b:?} do not multiply (need m×k · k×n)"
    );
    (a[0], a[1], b[1])
}

fn check_3d(op: &str, a: &[usize], b: &[usize]) -> (usize, usize, usize, usize) {
    assert!(
        a.len() == 3 && b.len() == 3 && a[0] == b[0] && a[2] == b[1],
        "{op}: shapes {a:?} and {b:?} do not multiply (need b×m×k · b×k×n)"
    );
    (a[0], a[1], a[2], b[2])
}

/// Batched `C_b = op(A_b)·op(B_b)`; `a` holds `batch` blocks of m·k, `b` of k·n.
#[allow(clippy::too_many_arguments)]
fn batched(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
) -> Vec<f32> {
    // Every value is written: sgemm with beta = 0 never reads C.
    let mut c = pool::take_for_overwrite(batch * m * n);
    if m * n == 0 {
        return c;
    }
    let run = |(i, cb): (usize, &mut [f32])| {
        let ab = &a[i * m * k..(i + 1) * m * k];
        let bb = &b[i * k * n..(i + 1) * k * n];
        gemm(m, k, n, ab, ta, bb, tb, cb, false);
    };
    if batch * m * n * k < PAR_FLOPS {
        c.chunks_mut(m * n).enumerate().for_each(run);
    } else {
        c.par_chunks_mut(m * n).enumerate().for_each(run);
    }
    c
}

impl Tensor {
    /// Matrix product of 2-d tensors (m×k · k×n), or batched product of 3-d
    /// tensors (b×m×k · b×k×n).
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        if self.ndim() == 3 {
            return self.bmm(other);
        }
        let (m, k, n) = check_2d("matmul", self.shape(), other.shape());
        let mut c = pool::take_for_overwrite(m * n);
        gemm(
            m,
            k,
            n,
            self.data(),
            false,
            other.data(),
            false,
            &mut c,
            false,
        );
        Tensor::from_vec(c, &[m, n])
    }

    /// Batched matrix product (b×m×k · b×k×n).
    pub fn bmm(&self, other: &Tensor) -> Tensor {
        let (bs, m, k, n) = check_3d("bmm", self.shape(), other.shape());
        let c = batched(bs, m, k, n, self.data(), false, other.data(), false);
        Tensor::from_vec(c, &[bs, m, n])
    }
}

impl Var {
    /// Matrix product (2-d), or batched product (3-d). See [`Tensor::matmul`].
    pub fn matmul(&self, other: &Var) -> Var {
        let (a, b) = (self.value().clone(), other.value().clone());
        let out = a.matmul(&b);
        Var::custom_op("matmul", &[self, other], out, move |g, needs| {
            if a.ndim() == 3 {
                let (bs, m, k, n) = check_3d("matmul backward", a.shape(), b.shape());
                // ∂A = G·Bᵀ (m×n · n×k), ∂B = Aᵀ·G (k×m · m×n), per batch.
                let da = needs[0].then(|| {
                    let v = batched(bs, m, n, k, g.data(), false, b.data(), true);
                    Tensor::from_vec(v, &[bs, m, k])
                });
                let db = needs[1].then(|| {
                    let v = batched(bs, k, m, n, a.data(), true, g.data(), false);
                    Tensor::from_vec(v, &[bs, k, n])
                });
                return vec![da, db];
            }
            let (m, k, n) = check_2d("matmul backward", a.shape(), b.shape());
            let da = needs[0].then(|| {
                let mut v = pool::take_for_overwrite(m * k);
                gemm(m, n, k, g.data(), false, b.data(), true, &mut v, false);
                Tensor::from_vec(v, &[m, k])
            });
            let db = needs[1].then(|| {
                let mut v = pool::take_for_overwrite(k * n);
                gemm(k, m, n, a.data(), true, g.data(), false, &mut v, false);
                Tensor::from_vec(v, &[k, n])
            });
            vec![da, db]
        })
    }
}
