//! 2-d convolution (cross-correlation, as in every deep-learning library), NCHW.
//!
//! Forward, for input x (N×C×H×W), weight w (O×C×k×k), bias b (O), stride s,
//! zero padding p, output H' = (H + 2p − k)/s + 1 (likewise W'):
//!
//! `y[n,o,i,j] = b[o] + Σ_{c,u,v} w[o,c,u,v] · x[n, c, i·s+u−p, j·s+v−p]`
//!
//! As matrices, with `col` the im2col matrix (C·k·k rows, one column per
//! output pixel) of a sample: `Y_n = W·col_n + b`. Backward, with `G_n = ∂L/∂Y_n`:
//!
//! * `∂L/∂W = Σ_n G_n·col_nᵀ`,
//! * `∂L/∂b[o] = Σ_{n,i,j} G[n,o,i,j]`,
//! * `∂L/∂x = col2im(Wᵀ·G_n)` (each column entry added back to the pixel it
//!   was copied from; padding entries are dropped).
//!
//! # Parallelism and determinism
//! The batch is split into chunks of [`CONV_CHUNK`] samples, a number that
//! does not depend on the thread count. Within a chunk, sub-blocks of a few
//! samples (a number fixed by the shapes, see `ConvGeom::sub_block`) are laid
//! side by side in one wide im2col matrix, small enough to stay in cache, so
//! one sgemm handles a sub-block. Chunks run in parallel with rayon; the
//! weight and bias gradients are summed over the sub-blocks of a chunk in
//! order, then the chunk partials are added in chunk order. The results are
//! therefore bit-identical for any `RAYON_NUM_THREADS`.
//!
//! Scratch matrices come from a small pool and are returned after use, so a
//! training loop does not allocate them again at every step.

use crate::init::Init;
use crate::module::{Ctx, Module, Param};
use engine::rng::Rng;
use engine::{gemm, Tensor, Var};
use rayon::prelude::*;
use std::sync::Mutex;

/// Samples per parallel chunk (fixed: results do not depend on threads).
pub const CONV_CHUNK: usize = 16;

/// Target size of a forward sub-block's im2col matrix (fits in L2).
pub const COL_BYTES: usize = 256 << 10;

/// Reusable f32 buffers. Taking from a pool (rather than thread-locals) stays
/// correct when rayon runs another chunk on the same thread mid-task.
static SCRATCH: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// At most this many buffers are kept.
const SCRATCH_KEEP: usize = 16;

/// A buffer of exactly `len` values, contents unspecified.
fn take_buf(len: usize) -> Vec<f32> {
    let mut b = SCRATCH
        .lock()
        .map(|mut p| p.pop().unwrap_or_default())
        .unwrap_or_default();
    b.resize(len, 0.0);
    b
}

/// Returns a buffer to the pool.
fn give_buf(b: Vec<f32>) {
    if let Ok(mut p) = SCRATCH.lock() {
        if p.len() < SCRATCH_KEEP {
            p.push(b);
        }
    }
}

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeom {
    /// Checks the shapes of input `[N,C,H,W]` and weight `[O,C,k,k]`.
    ///
    /// # Panics
    /// With the op name and both shapes if they do not fit.
    pub fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> ConvGeom {
        assert!(
            x.len() == 4 && w.len() == 4 && x[1] == w[1] && w[2] == w[3] && w[2] > 0,
            "conv2d: input {x:?} and weight {w:?} do not fit (need N×C×H×W and O×C×k×k)"
        );
        assert!(stride > 0, "conv2d: stride must be positive");
        let k = w[2];
        assert!(
            x[2] + 2 * pad >= k && x[3] + 2 * pad >= k,
            "conv2d: input {x:?} with padding {pad} is smaller than the kernel of weight {w:?}"
        );
        ConvGeom {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            k,
            stride,
            pad,
            oh: (x[2] + 2 * pad - k) / stride + 1,
            ow: (x[3] + 2 * pad - k) / stride + 1,
        }
    }

    /// Rows of the im2col matrix, C·k·k.
    fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output pixels per sample.
    fn pix(&self) -> usize {
        self.oh * self.ow
    }

    /// For stride 1, kernel column `v`: output columns `j0..j1` read input
    /// columns `start..start + (j1 − j0)` (ix = j + v − pad); the others fall
    /// in the padding.
    fn stride1_run(&self, v: usize) -> (usize, usize, usize) {
        let off = v as isize - self.pad as isize;
        let j0 = (-off).clamp(0, self.ow as isize) as usize;
        let j1 = (self.w as isize - off).clamp(j0 as isize, self.ow as isize) as usize;
        (j0, j1, (j0 as isize + off) as usize)
    }

    /// Samples per forward sub-block: as many as keep the sub-block's im2col
    /// matrix within [`COL_BYTES`], but at least enough that the sgemm has
    /// 4·O columns (sgemm packs all of W at every call: with few output
    /// pixels per sample, as in a 4×4 output, small blocks cost more in
    /// packing than they save in cache misses).
    fn sub_block(&self) -> usize {
        let per = self.rows() * self.pix() * std::mem::size_of::<f32>();
        let by_cache = COL_BYTES / per.max(1);
        let by_pack = (4 * self.o).div_ceil(self.pix().max(1));
        by_cache.max(by_pack).clamp(1, CONV_CHUNK)
    }

    /// Values per input sample.
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// Fills `col` (rows × s·P) with the im2col matrix of the `s` samples `xs`.
fn im2col(g: &ConvGeom, xs: &[f32], s: usize, col: &mut [f32]) {
    let (p, width) = (g.pix(), s * g.pix());
    for c in 0..g.c {
        for u in 0..g.k {
            for v in 0..g.k {
                let r = (c * g.k + u) * g.k + v;
                let row = &mut col[r * width..(r + 1) * width];
                for si in 0..s {
                    let plane = &xs[(si * g.c + c) * g.h * g.w..][..g.h * g.w];
                    let dst = &mut row[si * p..(si + 1) * p];
                    for i in 0..g.oh {
                        let drow = &mut dst[i * g.ow..(i + 1) * g.ow];
                        let iy = (i * g.stride + u) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            drow.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * g.w..][..g.w];
                        if g.stride == 1 {
                            // Contiguous: ix = j + v − pad; copy the in-range run, zero the rest.
                            let (j0, j1, start) = g.stride1_run(v);
                            drow[..j0].fill(0.0);
                            drow[j0..j1].copy_from_slice(&src[start..start + (j1 - j0)]);
                            drow[j1..].fill(0.0);
                            continue;
                        }
                        for (j, d) in drow.iter_mut().enumerate() {
                            let ix = (j * g.stride + v) as isize - g.pad as isize;
                            *d = if ix < 0 || ix >= g.w as isize {
                                0.0
                            } else {
                                src[ix as usize]
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Adds the columns of `col` (rows × s·P) back into the `s` samples `dx`.
fn col2im(g: &ConvGeom, col: &[f32], s: usize, dx: &mut [f32]) {
    let (p, width) = (g.pix(), s * g.pix());
    for c in 0..g.c {
        for u in 0..g.k {
            for v in 0..g.k {
                let r = (c * g.k + u) * g.k + v;
                let row = &col[r * width..(r + 1) * width];
                for si in 0..s {
                    let plane = &mut dx[(si * g.c + c) * g.h * g.w..][..g.h * g.w];
                    let srcs = &row[si * p..(si + 1) * p];
                    for i in 0..g.oh {
                        let iy = (i * g.stride + u) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let drow = &mut plane[iy as usize * g.w..][..g.w];
                        let srow = &srcs[i * g.ow..(i + 1) * g.ow];
                        if g.stride == 1 {
                            // Contiguous: ix = j + v − pad; add the in-range run.
                            let (j0, j1, start) = g.stride1_run(v);
                            for (d, &val) in
                                drow[start..start + (j1 - j0)].iter_mut().zip(&srow[j0..j1])
                            {
                                *d += val;
                            }
                            continue;
                        }
                        for (j, &val) in srow.iter().enumerate() {
                            let ix = (j * g.stride + v) as isize - g.pad as isize;
                            if ix >= 0 && ix < g.w as isize {
                                drow[ix as usize] += val;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forward on plain tensors: `y = conv(x, w) + b`. See the module docs.
pub fn conv2d_forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Tensor {
    let g = ConvGeom::new(x.shape(), w.shape(), stride, pad);
    if let Some(b) = b {
        assert!(
            b.shape() == [g.o],
            "conv2d: bias {:?} does not fit weight {:?}",
            b.shape(),
            w.shape()
        );
    }
    let (p, rows, out_len) = (g.pix(), g.rows(), g.o * g.pix());
    let mut out = engine::parallel::zeros(g.n * out_len);
    if out.is_empty() {
        return Tensor::from_vec(out, &[g.n, g.o, g.oh, g.ow]);
    }
    let (xd, wd) = (x.data(), w.data());
    let bd = b.map(|b| b.data());
    out.par_chunks_mut(CONV_CHUNK * out_len)
        .enumerate()
        .for_each(|(ci, ob)| {
            let s = ob.len() / out_len;
            let xs = &xd[ci * CONV_CHUNK * g.in_len()..][..s * g.in_len()];
            // Sub-blocks whose im2col matrix stays in cache between im2col and
            // sgemm. Output columns are independent, so this changes no bits.
            let sb = g.sub_block();
            let mut col = take_buf(rows * sb * p);
            let mut tmp = take_buf(g.o * sb * p);
            for (xb, obb) in xs.chunks(sb * g.in_len()).zip(ob.chunks_mut(sb * out_len)) {
                let s = obb.len() / out_len;
                let (col, tmp) = (&mut col[..rows * s * p], &mut tmp[..g.o * s * p]);
                im2col(&g, xb, s, col);
                // tmp (O × s·P) = W (O × C·k·k) · col (C·k·k × s·P)
                gemm(g.o, rows, s * p, wd, false, col, false, tmp, false);
                for si in 0..s {
                    for o in 0..g.o {
                        let bias = bd.map_or(0.0, |b| b[o]);
                        let src = &tmp[o * s * p + si * p..][..p];
                        let dst = &mut obb[(si * g.o + o) * p..][..p];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = v + bias;
                        }
                    }
                }
            }
            give_buf(col);
        });
    Tensor::from_vec(out, &[g.n, g.o, g.oh, g.ow])
}

/// Gradients of one chunk: `(∂W partial, ∂b partial)`; adds ∂x into `dx`
/// (zeros from the caller) if given.
fn backward_chunk(
    g: &ConvGeom,
    ci: usize,
    xd: &[f32],
    wd: &[f32],
    gd: &[f32],
    dx: Option<&mut [f32]>,
    need_w: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (p, rows, out_len) = (g.pix(), g.rows(), g.o * g.pix());
    let s0 = ci * CONV_CHUNK;
    let s = CONV_CHUNK.min(g.n - s0);
    let gs = &gd[s0 * out_len..(s0 + s) * out_len];
    let xs = &xd[s0 * g.in_len()..(s0 + s) * g.in_len()];
    // Sub-blocks of the chunk, as in the forward, so the im2col matrix and
    // ∂col stay in cache. ∂W and ∂b are summed over the sub-blocks in order.
    let sb = g.sub_block();
    let mut dw = if need_w {
        vec![0.0f32; g.o * rows]
    } else {
        Vec::new()
    };
    let mut db = vec![0.0f32; g.o];
    let mut gmat = take_buf(g.o * sb * p);
    let mut col = take_buf(if need_w { rows * sb * p } else { 0 });
    let mut dcol = take_buf(if dx.is_some() { rows * sb * p } else { 0 });
    let mut dx = dx;
    for b0 in (0..s).step_by(sb) {
        let bs = sb.min(s - b0);
        let w_cols = bs * p;
        // G laid out as O × bs·P, matching the wide im2col matrix.
        let gm = &mut gmat[..g.o * w_cols];
        for si in 0..bs {
            for o in 0..g.o {
                gm[o * w_cols + si * p..][..p]
                    .copy_from_slice(&gs[((b0 + si) * g.o + o) * p..][..p]);
            }
        }
        for (o, d) in db.iter_mut().enumerate() {
            *d += engine::parallel::sum_chunk(&gm[o * w_cols..(o + 1) * w_cols]);
        }
        if need_w {
            let col = &mut col[..rows * w_cols];
            im2col(g, &xs[b0 * g.in_len()..(b0 + bs) * g.in_len()], bs, col);
            // ∂W (O × C·k·k) += G (O × bs·P) · colᵀ (bs·P × C·k·k)
            gemm(g.o, w_cols, rows, gm, false, col, true, &mut dw, b0 > 0);
        }
        if let Some(dx) = dx.as_deref_mut() {
            let dcol = &mut dcol[..rows * w_cols];
            // ∂col (C·k·k × bs·P) = Wᵀ (C·k·k × O) · G (O × bs·P)
            gemm(rows, g.o, w_cols, wd, true, gm, false, dcol, false);
            // Zeros from the caller: col2im adds into them.
            let dxb = &mut dx[b0 * g.in_len()..(b0 + bs) * g.in_len()];
            col2im(g, dcol, bs, dxb);
        }
    }
    give_buf(gmat);
    give_buf(col);
    give_buf(dcol);
    (dw, db)
}

/// Backward on plain tensors: `(∂x, ∂w, ∂b)`, each only if asked for.
pub fn conv2d_backward(
    x: &Tensor,
    w: &Tensor,
    gout: &Tensor,
    stride: usize,
    pad: usize,
    needs: [bool; 3],
) -> (Option<Tensor>, Option<Tensor>, Option<Tensor>) {
    let g = ConvGeom::new(x.shape(), w.shape(), stride, pad);
    assert!(
        gout.shape() == [g.n, g.o, g.oh, g.ow],
        "conv2d backward: gradient {:?} for output {:?}",
        gout.shape(),
        [g.n, g.o, g.oh, g.ow]
    );
    let (xd, wd, gd) = (x.data(), w.data(), gout.data());
    let need_w = needs[1];
    let chunks = g.n.div_ceil(CONV_CHUNK);
    let mut dx = needs[0].then(|| engine::parallel::zeros(g.n * g.in_len()));
    let partials: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) if !dx.is_empty() => dx
            .par_chunks_mut(CONV_CHUNK * g.in_len())
            .enumerate()
            .map(|(ci, dxc)| backward_chunk(&g, ci, xd, wd, gd, Some(dxc), need_w))
            .collect(),
        _ => (0..chunks)
            .into_par_iter()
            .map(|ci| backward_chunk(&g, ci, xd, wd, gd, None, need_w))
            .collect(),
    };
    // Chunk partials added in chunk order: independent of the thread count.
    let mut dw = vec![0.0f32; g.o * g.rows()];
    let mut db = vec![0.0f32; g.o];
    for (pw, pb) in &partials {
        for (a, b) in dw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    (
        dx.map(|v| Tensor::from_vec(v, x.shape())),
        need_w.then(|| Tensor::from_vec(dw, w.shape())),
        needs[2].then(|| Tensor::from_vec(db, &[g.o])),
    )
}

/// Tracked 2-d convolution of `x` (N×C×H×W) with `w` (O×C×k×k) and an
/// optional bias (O), one tape node. See the module docs.
pub fn conv2d(x: &Var, w: &Var, b: Option<&Var>, stride: usize, pad: usize) -> Var {
    let (xv, wv) = (x.value().clone(), w.value().clone());
    let out = conv2d_forward(&xv, &wv, b.map(|b| b.value()), stride, pad);
    let mut inputs = vec![x, w];
    if let Some(b) = b {
        inputs.push(b);
    }
    Var::custom_op("conv2d", &inputs, out, move |gout, needs| {
        let nb = needs.get(2).copied().unwrap_or(false);
        let (dx, dw, db) = conv2d_backward(&xv, &wv, gout, stride, pad, [needs[0], needs[1], nb]);
        let mut r = vec![dx, dw];
        if needs.len() == 3 {
            r.push(db);
        }
        r
    })
}

/// A 2-d convolution layer: weight `[out, in, k, k]`, bias `[out]`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// The kernel.
    pub weight: Param,
    /// The bias, if any.
    pub bias: Option<Param>,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

impl Conv2d {
    /// A `k`×`k` convolution, stride 1, no padding; Kaiming-uniform weights
    /// and zero bias. Parameters are named `"{name}.weight"`, `"{name}.bias"`.
    pub fn new(name: &str, cin: usize, cout: usize, k: usize, rng: &mut Rng) -> Conv2d {
        Conv2d::with_init(name, cin, cout, k, &Init::KaimingUniform, &Init::Zeros, rng)
    }

    /// Like [`Conv2d::new`] with explicit initialisers.
    pub fn with_init(
        name: &str,
        cin: usize,
        cout: usize,
        k: usize,
        weight: &Init,
        bias: &Init,
        rng: &mut Rng,
    ) -> Conv2d {
        Conv2d {
            weight: Param::new(
                format!("{name}.weight"),
                weight.tensor(&[cout, cin, k, k], rng),
            ),
            bias: Some(Param::new(
                format!("{name}.bias"),
                bias.tensor(&[cout], rng),
            )),
            stride: 1,
            padding: 0,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, s: usize) -> Conv2d {
        assert!(s > 0, "Conv2d: stride must be positive");
        self.stride = s;
        self
    }

    /// Sets the zero padding.
    pub fn padding(mut self, p: usize) -> Conv2d {
        self.padding = p;
        self
    }

    /// Drops the bias.
    pub fn without_bias(mut self) -> Conv2d {
        self.bias = None;
        self
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Var, ctx: &Ctx) -> Var {
        let w = ctx.param(&self.weight);
        let b = self.bias.as_ref().map(|b| ctx.param(b));
        conv2d(x, &w, b.as_ref(), self.stride, self.padding)
    }

    fn params(&self) -> Vec<&Param> {
        std::iter::once(&self.weight)
            .chain(self.bias.as_ref())
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        std::iter::once(&mut self.weight)
            .chain(self.bias.as_mut())
            .collect()
    }

    fn describe(&self) -> String {
        let s = self.weight.value.shape();
        format!(
            "Conv2d {} {}→{} k{} s{} p{}",
            self.weight.name.trim_end_matches(".weight"),
            s[1],
            s[0],
            s[2],
            self.stride,
            self.padding
        )
    }

    fn output_shape(&self, input: &[usize]) -> Vec<usize> {
        let g = ConvGeom::new(input, self.weight.value.shape(), self.stride, self.padding);
        vec![g.n, g.o, g.oh, g.ow]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct evaluation of the module-doc formulas (stride 1, no padding).
    fn naive(x: &Tensor, w: &Tensor, g: &Tensor) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let cg = ConvGeom::new(x.shape(), w.shape(), 1, 0);
        let (xd, wd, gd) = (x.data(), w.data(), g.data());
        let mut y = vec![0.0f64; cg.n * cg.o * cg.pix()];
        let mut dx = vec![0.0f64; xd.len()];
        let mut dw = vec![0.0f64; wd.len()];
        for n in 0..cg.n {
            for o in 0..cg.o {
                for i in 0..cg.oh {
                    for j in 0..cg.ow {
                        let yi = ((n * cg.o + o) * cg.oh + i) * cg.ow + j;
                        for c in 0..cg.c {
                            for u in 0..cg.k {
                                for v in 0..cg.k {
                                    let xi = ((n * cg.c + c) * cg.h + i + u) * cg.w + j + v;
                                    let wi = ((o * cg.c + c) * cg.k + u) * cg.k + v;
                                    y[yi] += f64::from(wd[wi]) * f64::from(xd[xi]);
                                    dx[xi] += f64::from(wd[wi]) * f64::from(gd[yi]);
                                    dw[wi] += f64::from(xd[xi]) * f64::from(gd[yi]);
                                }
                            }
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
        (f(y), f(dx), f(dw))
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn several_sub_blocks_per_chunk_match_the_direct_formulas_on_any_thread_count() {
        // A 64×64 single-channel input with a 3×3 kernel: one sample's im2col
        // matrix (9 × 62²) is over COL_BYTES / 2, so a 19-sample batch runs as
        // a full chunk of 16 one-sample sub-blocks and a partial chunk of 3.
        let mut rng = engine::rng::seeded(3);
        let x = Tensor::normal(&[19, 1, 64, 64], 0.0, 1.0, &mut rng);
        let w = Tensor::normal(&[2, 1, 3, 3], 0.0, 1.0, &mut rng);
        let g = Tensor::normal(&[19, 2, 62, 62], 0.0, 1.0, &mut rng);
        assert_eq!(ConvGeom::new(x.shape(), w.shape(), 1, 0).sub_block(), 1);
        let run = || {
            let y = conv2d_forward(&x, &w, None, 1, 0);
            let (dx, dw, db) = conv2d_backward(&x, &w, &g, 1, 0, [true, true, true]);
            (y, dx.unwrap(), dw.unwrap(), db.unwrap())
        };
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let r1 = pool(1).install(run);
        let (y, dx, dw) = naive(&x, &w, &g);
        close(r1.0.data(), &y);
        close(r1.1.data(), &dx);
        close(r1.2.data(), &dw);
        let gsum: Vec<f32> = (0..2)
            .map(|o| {
                (0..19)
                    .map(|n| {
                        g.data()[(n * 2 + o) * 62 * 62..][..62 * 62]
                            .iter()
                            .sum::<f32>()
                    })
                    .sum()
            })
            .collect();
        close(r1.3.data(), &gsum);
        let r2 = pool(2).install(run);
        for (a, b) in [
            (&r1.0, &r2.0),
            (&r1.1, &r2.1),
            (&r1.2, &r2.2),
            (&r1.3, &r2.3),
        ] {
            assert_eq!(a.data(), b.data());
        }
    }
}
