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
//! # Implicit GEMM
//! No im2col matrix is built: the register-blocked FMA micro-kernel of
//! [`engine::kernels::gemm6x16`] broadcasts its `a` operand straight from the
//! (zero-padded, when `pad > 0`) input planes at per-tap and per-pixel
//! offsets, so the forward and ∂W read the input in place; ∂x goes through a
//! per-sample ∂col matrix and col2im. matrixmultiply is no longer used here.
//!
//! # Summation order (fixed; the same in every kernel build)
//! * `y[n,o,q]`: one chain of fused multiply-adds `acc ← fma(x, w, acc)`
//!   from `acc = b[o]` (0 without bias) over the taps `l = (c·k + u)·k + v`
//!   in increasing order (the chain runs in blocks of taps whose slice of
//!   the weights stays in L1, which changes no bits).
//! * `∂W[o,l]`: within a chunk, one FMA chain from 0 over the output pixels
//!   `q = i·W' + j` of each sample, samples in order (the chain runs in
//!   blocks of pixels, which changes no bits); then the chunk
//!   partials are added (plain adds) in chunk order.
//! * `∂b[o]`: per sample, `engine::parallel::sum_chunk` of the plane, added
//!   over the chunk's samples in order; chunk partials in chunk order.
//! * `∂col[l,q]`: one FMA chain from 0 over `o` in increasing order; col2im
//!   then adds into ∂x channel, tap row `u`, tap column `v`, output row, output
//!   column order (each ∂x value starts from 0).
//!
//! # Parallelism and determinism
//! The batch is split into chunks of [`CONV_CHUNK`] samples, a number that
//! does not depend on the thread count, and chunks run in parallel with
//! rayon. Tile shapes change no chain, so the results are bit-identical for
//! any `RAYON_NUM_THREADS` and any kernel build (AVX-512, AVX2 or portable;
//! tested), whether a tile is 16 or 32 columns wide.
//!
//! Outputs, gradients and scratch (padded input, Gᵀ blocks, ∂col, per-chunk
//! partials) come from the engine's buffer pool ([`engine::pool`]) and
//! scratch goes back to it after use, so a training loop does not allocate
//! them again at every step.

use crate::init::Init;
use crate::module::{Ctx, Module, Param};
use engine::kernels::gemm6x16::{
    self as kern, tile_width, Isa, Offsets, Panel, Start, MR, NR, NR2,
};
use engine::kernels::runs::{add_runs, Run, Runs};
use engine::kernels::transpose::transpose;
use engine::pool;
use engine::rng::Rng;
use engine::{Tensor, Var};
use rayon::prelude::*;

/// Samples per parallel chunk (fixed: results do not depend on threads).
pub const CONV_CHUNK: usize = 16;

/// Which build of the convolution's micro-kernel this process runs:
/// `"avx512"`, `"avx2"` or `"portable"` (capped by `WARPGRAD_SIMD`). All give the same
/// bits; benchmark reports print it.
pub fn kernel_build() -> &'static str {
    Isa::detect().name()
}

/// Values of Gᵀ per ∂W block (16 KiB, so it stays in the L1 cache of any
/// x86-64 core while every tap tile passes over it): the block's pixels
/// are a chain's steps, so its size changes no bits.
const DW_BLOCK_VALUES: usize = 4 << 10;

/// Values of Wᵀ per forward tap block (16 KiB, in L1 as above); the
/// block's taps are a chain's steps, so its size changes no bits either.
const FWD_BLOCK_VALUES: usize = 4 << 10;

/// Pixel tiles that pass over one forward tap block before the next block
/// (their partial outputs, 48 KiB at 64 output channels, wait in L1 or L2).
const FWD_GROUP_TILES: usize = 32;

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

    /// Padded input height.
    fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }

    /// Padded input width.
    fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }

    /// Output channels rounded up to a multiple of the kernel's [`NR`].
    fn o_pad(&self) -> usize {
        self.o.div_ceil(NR) * NR
    }

    /// Offset of tap `l = (c·k + u)·k + v` in a padded sample:
    /// `c·Hp·Wp + u·Wp + v` (non-decreasing in `l`).
    fn tap_offsets(&self) -> Vec<usize> {
        let (hp, wp) = (self.hp(), self.wp());
        let mut t = Vec::with_capacity(self.rows());
        for c in 0..self.c {
            for u in 0..self.k {
                for v in 0..self.k {
                    t.push(c * hp * wp + u * wp + v);
                }
            }
        }
        t
    }

    /// Offset of output pixel `q = i·W' + j`'s window in a padded plane:
    /// `i·s·Wp + j·s` (non-decreasing in `q`).
    fn pixel_offsets(&self) -> Vec<usize> {
        let wp = self.wp();
        (0..self.oh)
            .flat_map(|i| (0..self.ow).map(move |j| i * self.stride * wp + j * self.stride))
            .collect()
    }

    /// Values per input sample.
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// Copies the `s` samples `xs` into zero-padded planes in `buf` and returns
/// them, or returns `xs` itself when there is no padding.
fn padded<'a>(g: &ConvGeom, xs: &'a [f32], s: usize, buf: &'a mut [f32]) -> &'a [f32] {
    if g.pad == 0 {
        return xs;
    }
    let (hp, wp) = (g.hp(), g.wp());
    let buf = &mut buf[..s * g.c * hp * wp];
    buf.fill(0.0);
    for (dst, src) in buf.chunks_mut(hp * wp).zip(xs.chunks(g.h * g.w)) {
        for (y, row) in src.chunks(g.w).enumerate() {
            dst[(y + g.pad) * wp + g.pad..][..g.w].copy_from_slice(row);
        }
    }
    buf
}

/// Splits the chunk's pixels `q0..q1` (`p` per sample, samples one after
/// another) into runs within one sample: `(q, sample, pixel, length)`.
fn sample_runs(
    q0: usize,
    q1: usize,
    p: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut q = q0;
    std::iter::from_fn(move || {
        (q < q1).then(|| {
            let (si, pi) = (q / p, q % p);
            let len = (p - pi).min(q1 - q);
            q += len;
            (q - len, si, pi, len)
        })
    })
}

/// The runs of one channel of col2im at stride 1, in (tap row `u`, tap
/// column `v`, output row) order: from row `u·k + v` of the channel's ∂col
/// rows (row stride `ld`) into its ∂x plane. `None` at other strides.
fn col2im_runs(g: &ConvGeom, ld: usize) -> Option<Runs> {
    if g.stride != 1 {
        return None;
    }
    let mut runs = Vec::with_capacity(g.k * g.k * g.oh);
    for u in 0..g.k {
        for v in 0..g.k {
            let (j0, j1, start) = g.stride1_run(v);
            for i in 0..g.oh {
                let iy = (i + u) as isize - g.pad as isize;
                if iy >= 0 && iy < g.h as isize && j1 > j0 {
                    runs.push(Run {
                        from: (u * g.k + v) * ld + i * g.ow + j0,
                        at: iy as usize * g.w + start,
                        len: j1 - j0,
                    });
                }
            }
        }
    }
    Some(Runs::new(runs))
}

/// Adds ∂col (rows `C·k·k` of one sample's `P` pixels, row `r` at `r·ld`)
/// back into the sample's ∂x: channels, tap rows `u`, tap columns `v`, then
/// output rows and columns in order. `runs` is [`col2im_runs`] of `ld`.
fn col2im(isa: Isa, g: &ConvGeom, col: &[f32], ld: usize, runs: Option<&Runs>, dx: &mut [f32]) {
    let (kk, hw) = (g.k * g.k, g.h * g.w);
    if let Some(runs) = runs {
        for (c, plane) in dx.chunks_mut(hw).enumerate().take(g.c) {
            add_runs(isa, plane, &col[c * kk * ld..], runs);
        }
        return;
    }
    for c in 0..g.c {
        let plane = &mut dx[c * hw..][..hw];
        for u in 0..g.k {
            for v in 0..g.k {
                let r = (c * g.k + u) * g.k + v;
                let row = &col[r * ld..][..g.pix()];
                for i in 0..g.oh {
                    let iy = (i * g.stride + u) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let drow = &mut plane[iy as usize * g.w..][..g.w];
                    let srow = &row[i * g.ow..(i + 1) * g.ow];
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

/// Forward on plain tensors: `y = conv(x, w) + b`. See the module docs.
pub fn conv2d_forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    pad: usize,
) -> Tensor {
    forward_with(Isa::detect(), x, w, b, stride, pad, None)
}

/// [`conv2d_forward`] with a given kernel build and `tap_block` taps per
/// block of the chain (default: [`FWD_BLOCK_VALUES`] of Wᵀ; any size gives
/// the same bits).
fn forward_with(
    isa: Isa,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    pad: usize,
    tap_block: Option<usize>,
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
    let (p, k, op, out_len) = (g.pix(), g.rows(), g.o_pad(), g.o * g.pix());
    let mut out = engine::parallel::zeros(g.n * out_len);
    if out.is_empty() {
        return Tensor::from_vec(out, &[g.n, g.o, g.oh, g.ow]);
    }
    let (xd, wd) = (x.data(), w.data());
    // Wᵀ with its columns padded to a multiple of NR: wt[l·op + o] = w[o, l]
    // (the padding columns zero).
    let mut wt = pool::take_zeroed(k * op);
    for (o, wrow) in wd.chunks(k).enumerate() {
        for (l, &v) in wrow.iter().enumerate() {
            wt[l * op + o] = v;
        }
    }
    let mut bias = vec![0.0f32; op];
    if let Some(b) = b {
        bias[..g.o].copy_from_slice(b.data());
    }
    let (taps, pix) = (g.tap_offsets(), g.pixel_offsets());
    // The chain over the taps runs in blocks whose slice of Wᵀ stays in L1
    // while a group of pixel tiles passes over it; a block ends with the
    // tile stored and the next one resumes from it, which changes no bits.
    let tb = tap_block.unwrap_or(FWD_BLOCK_VALUES / op).clamp(1, k);
    let blocks: Vec<(usize, Offsets)> = (0..k)
        .step_by(tb)
        .map(|t0| (t0, Offsets::new(taps[t0..(t0 + tb).min(k)].to_vec())))
        .collect();
    let in_p = g.c * g.hp() * g.wp();
    out.par_chunks_mut(CONV_CHUNK * out_len)
        .enumerate()
        .for_each(|(ci, ob)| {
            let s = ob.len() / out_len;
            let xs = &xd[ci * CONV_CHUNK * g.in_len()..][..s * g.in_len()];
            // `padded` zeroes it before copying the samples in.
            let mut pbuf = pool::take_for_overwrite(if g.pad > 0 { s * in_p } else { 0 });
            let xp = padded(&g, xs, s, &mut pbuf);
            // Tiles of MR output pixels (running on across the chunk's
            // samples) × NR or NR2 output channels, a group of tiles at a
            // time; each value one FMA chain over the taps, from the bias.
            let tiles = (s * p).div_ceil(MR);
            // With one block there is nothing to share: 4 tiles at a time
            // (24 pixels, whole 8×8 blocks for the transposition), hot in L1.
            let group = if blocks.len() > 1 { FWD_GROUP_TILES } else { 4 };
            let mut acc = pool::take_for_overwrite(group.min(tiles) * MR * op);
            // Where each tile reads its pixels.
            let mut at = [[0usize; MR]; FWD_GROUP_TILES];
            // Sample and pixel of the next tile's first pixel, stepped without divisions.
            let (mut s0, mut p0) = (0, 0);
            for g0 in (0..tiles).step_by(group) {
                let nt = group.min(tiles - g0);
                for a_at in at.iter_mut().take(nt) {
                    let (mut si, mut pi) = (s0, p0);
                    for m in 0..MR {
                        if si < s {
                            a_at[m] = si * in_p + pix[pi];
                        } else {
                            // Past the chunk: repeat a real pixel, dropped below.
                            a_at[m] = a_at[m - 1];
                        }
                        pi += 1;
                        if pi == p {
                            (si, pi) = (si + 1, 0);
                        }
                    }
                    (s0, p0) = (si, pi);
                }
                let acc = &mut acc[..nt * MR * op];
                for (t0, offs) in &blocks {
                    for (t, a_at) in at.iter().enumerate().take(nt) {
                        let mut o0 = 0;
                        while o0 < op {
                            let nr = tile_width(o0, op);
                            let panel = Panel {
                                a: xp,
                                a_at: *a_at,
                                a_offs: offs,
                                b: &wt[t0 * op + o0..],
                                b_step: op,
                            };
                            // The first block starts from the bias, the others resume.
                            let start = if *t0 == 0 {
                                Start::Row(&bias[o0..])
                            } else {
                                Start::Tile
                            };
                            run_tile(isa, &panel, &mut acc[t * MR * op + o0..], op, start, nr);
                            o0 += nr;
                        }
                    }
                }
                // The group's pixels (rows of `acc`) into the output
                // planes, a run of one sample's pixels at a time.
                let (q0, q1) = (g0 * MR, ((g0 + nt) * MR).min(s * p));
                for (q, si, pi, len) in sample_runs(q0, q1, p) {
                    let dst = &mut ob[si * out_len + pi..];
                    transpose(isa, &acc[(q - q0) * op..], op, len, g.o, dst, p);
                }
            }
            pool::give(acc);
            pool::give(pbuf);
        });
    pool::give(wt);
    Tensor::from_vec(out, &[g.n, g.o, g.oh, g.ow])
}

/// Runs the kernel on a tile `nr` ([`NR`] or [`NR2`]) columns wide, row
/// stride `ldc`.
fn run_tile(isa: Isa, panel: &Panel, c: &mut [f32], ldc: usize, start: Start, nr: usize) {
    if nr == NR2 {
        kern::run_wide(isa, panel, c, ldc, start);
    } else {
        kern::run(isa, panel, c, ldc, start);
    }
}

/// Gradients of one chunk: `(∂W partial, ∂b partial)`; writes ∂x into `dx`
/// (zeros from the caller) if given.
#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    isa: Isa,
    g: &ConvGeom,
    ci: usize,
    xd: &[f32],
    wd: &[f32],
    gd: &[f32],
    dx: Option<&mut [f32]>,
    need_w: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (p, k, op, out_len) = (g.pix(), g.rows(), g.o_pad(), g.o * g.pix());
    let kp = k.div_ceil(MR) * MR;
    let s0 = ci * CONV_CHUNK;
    let s = CONV_CHUNK.min(g.n - s0);
    let gs = &gd[s0 * out_len..(s0 + s) * out_len];
    let xs = &xd[s0 * g.in_len()..(s0 + s) * g.in_len()];
    let mut db = vec![0.0f32; g.o];
    for gsmp in gs.chunks(out_len) {
        // Four planes at a time (the same sums, more of them in flight).
        let mut planes = gsmp.chunks(p);
        for d in db.chunks_mut(4) {
            if let [d0, d1, d2, d3] = d {
                let x = std::array::from_fn(|_| planes.next().expect("o planes"));
                let [s0, s1, s2, s3] = engine::parallel::sum_chunks4(x);
                (*d0, *d1, *d2, *d3) = (*d0 + s0, *d1 + s1, *d2 + s2, *d3 + s3);
            } else {
                for d in d {
                    *d += engine::parallel::sum_chunk(planes.next().expect("o planes"));
                }
            }
        }
    }
    let mut dw = Vec::new();
    if need_w {
        let in_p = g.c * g.hp() * g.wp();
        let mut pbuf = pool::take_for_overwrite(if g.pad > 0 { s * in_p } else { 0 });
        let xp = padded(g, xs, s, &mut pbuf);
        let (taps, pix) = (g.tap_offsets(), g.pixel_offsets());
        // ∂Wᵀ (rows padded to MR, columns to NR): each value one FMA chain
        // over the chunk's output pixels, sample after sample, run in blocks
        // of `qb` pixels whose Gᵀ (qb × op, padding columns zero) stays in L2.
        // Every tile is stored by the first block's kernel calls (q0 = 0).
        let mut dwt = pool::take_for_overwrite(kp * op);
        let qn = s * p;
        let qb = (DW_BLOCK_VALUES / op).clamp(1, qn);
        // Its padding columns stay zero.
        let mut gt = pool::take_zeroed(qb * op);
        for q0 in (0..qn).step_by(qb) {
            let q1 = (q0 + qb).min(qn);
            let start = if q0 > 0 { Start::Tile } else { Start::Zero };
            // Gᵀ of the block, a run of one sample's pixels at a time.
            for (q, si, pi, len) in sample_runs(q0, q1, p) {
                let src = &gs[si * out_len + pi..];
                transpose(isa, src, p, g.o, len, &mut gt[(q - q0) * op..], op);
            }
            let offs = Offsets::new((q0..q1).map(|q| (q / p) * in_p + pix[q % p]).collect());
            for l0 in (0..kp).step_by(MR) {
                let a_at: [usize; MR] = std::array::from_fn(|m| taps[(l0 + m).min(k - 1)]);
                let mut o0 = 0;
                while o0 < op {
                    let panel = Panel {
                        a: xp,
                        a_at,
                        a_offs: &offs,
                        b: &gt[o0..],
                        b_step: op,
                    };
                    let nr = tile_width(o0, op);
                    run_tile(isa, &panel, &mut dwt[l0 * op + o0..], op, start, nr);
                    o0 += nr;
                }
            }
        }
        dw = pool::take_for_overwrite(g.o * k);
        transpose(isa, &dwt, op, k, g.o, &mut dw, k);
        pool::give(dwt);
        pool::give(gt);
        pool::give(pbuf);
    }
    if let Some(dx) = dx {
        // ∂col = Wᵀ·G (rows padded to MR), each value one FMA chain over the
        // output channels; then col2im. Samples with few pixels share one
        // ∂col, side by side, so that tiles are full width (every value is
        // the same chain either way, hence the same bits).
        let per = (NR2 / p).clamp(1, s);
        let pp = (per * p).div_ceil(NR) * NR;
        // Its padding pixels stay zero; every ∂col tile is stored.
        let mut gp = pool::take_zeroed(g.o * pp);
        let mut dcol = pool::take_for_overwrite(kp * pp);
        let chans = Offsets::steps(g.o, k);
        let runs = col2im_runs(g, pp);
        let mut dxs = dx.chunks_mut(g.in_len());
        for group in gs.chunks(per * out_len) {
            let samples = group.len() / out_len;
            for (j, gsmp) in group.chunks(out_len).enumerate() {
                for (o, grow) in gsmp.chunks(p).enumerate() {
                    gp[o * pp + j * p..][..p].copy_from_slice(grow);
                }
            }
            // Columns past the group's pixels (a short last group) hold
            // stale values: their ∂col columns are never read.
            let cols = (samples * p).div_ceil(NR) * NR;
            for l0 in (0..kp).step_by(MR) {
                let a_at: [usize; MR] = std::array::from_fn(|m| (l0 + m).min(k - 1));
                let mut q0 = 0;
                while q0 < cols {
                    let panel = Panel {
                        a: wd,
                        a_at,
                        a_offs: &chans,
                        b: &gp[q0..],
                        b_step: pp,
                    };
                    let nr = tile_width(q0, cols);
                    run_tile(isa, &panel, &mut dcol[l0 * pp + q0..], pp, Start::Zero, nr);
                    q0 += nr;
                }
            }
            for j in 0..samples {
                let dxs = dxs.next().expect("a ∂x slice per sample");
                col2im(isa, g, &dcol[j * p..], pp, runs.as_ref(), dxs);
            }
        }
        pool::give(gp);
        pool::give(dcol);
    }
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
    backward_with(Isa::detect(), x, w, gout, stride, pad, needs)
}

/// [`conv2d_backward`] with a given kernel build.
fn backward_with(
    isa: Isa,
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
    let run = |ci, dxc| backward_chunk(isa, &g, ci, xd, wd, gd, dxc, need_w);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) if !dx.is_empty() => dx
            .par_chunks_mut(CONV_CHUNK * g.in_len())
            .enumerate()
            .map(|(ci, dxc)| run(ci, Some(dxc)))
            .collect(),
        _ => (0..chunks)
            .into_par_iter()
            .map(|ci| run(ci, None))
            .collect(),
    };
    // Chunk partials added in chunk order: independent of the thread count.
    let mut dw = pool::take_zeroed(g.o * g.rows());
    let mut db = vec![0.0f32; g.o];
    for (pw, pb) in partials {
        for (a, b) in dw.iter_mut().zip(&pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(&pb) {
            *a += b;
        }
        pool::give(pw);
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

    /// Direct evaluation of the module-doc formulas in f64 (any stride and
    /// padding): `(y without bias, ∂x, ∂w)`.
    fn naive(
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
        stride: usize,
        pad: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let cg = ConvGeom::new(x.shape(), w.shape(), stride, pad);
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
                                    let iy = (i * stride + u) as isize - pad as isize;
                                    let ix = (j * stride + v) as isize - pad as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= cg.h as isize
                                        || ix >= cg.w as isize
                                    {
                                        continue;
                                    }
                                    let (iy, ix) = (iy as usize, ix as usize);
                                    let xi = ((n * cg.c + c) * cg.h + iy) * cg.w + ix;
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

    /// The forward in the documented order, scalar: one `mul_add` chain per
    /// output from the bias over the taps (padding taps are `fma(0, w, acc)`).
    fn documented_forward(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        stride: usize,
        pad: usize,
    ) -> Vec<f32> {
        let g = ConvGeom::new(x.shape(), w.shape(), stride, pad);
        let (xd, wd) = (x.data(), w.data());
        let mut y = Vec::new();
        for n in 0..g.n {
            for o in 0..g.o {
                for i in 0..g.oh {
                    for j in 0..g.ow {
                        let mut acc = b.data()[o];
                        for c in 0..g.c {
                            for u in 0..g.k {
                                for v in 0..g.k {
                                    let iy = (i * stride + u) as isize - pad as isize;
                                    let ix = (j * stride + v) as isize - pad as isize;
                                    let inside = iy >= 0
                                        && ix >= 0
                                        && iy < g.h as isize
                                        && ix < g.w as isize;
                                    let xv = if inside {
                                        xd[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                    } else {
                                        0.0
                                    };
                                    acc = xv.mul_add(wd[((o * g.c + c) * g.k + u) * g.k + v], acc);
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
        }
        y
    }

    /// ∂x and ∂W in the documented order (module docs, "Summation order"),
    /// written out plainly: ∂col one chain over the output channels, col2im
    /// in (channel, u, v, output row, output column) order; ∂W one chain
    /// over a chunk's samples and pixels, chunk partials added in order.
    fn documented_backward(
        x: &Tensor,
        w: &Tensor,
        gout: &Tensor,
        stride: usize,
        pad: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let g = ConvGeom::new(x.shape(), w.shape(), stride, pad);
        let (xd, wd, gd) = (x.data(), w.data(), gout.data());
        let (k, p) = (g.rows(), g.pix());
        // The input under tap `l` at output pixel `q` of sample `n` (0 in the padding).
        let at = |n: usize, l: usize, q: usize| -> Option<usize> {
            let (c, u, v) = (l / (g.k * g.k), l / g.k % g.k, l % g.k);
            let iy = ((q / g.ow) * stride + u) as isize - pad as isize;
            let ix = ((q % g.ow) * stride + v) as isize - pad as isize;
            let inside = iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize;
            inside.then(|| ((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize)
        };
        let mut dx = vec![0.0f32; xd.len()];
        for n in 0..g.n {
            let gn = &gd[n * g.o * p..][..g.o * p];
            for l in 0..k {
                for q in 0..p {
                    let mut acc = 0.0f32;
                    for o in 0..g.o {
                        acc = wd[o * k + l].mul_add(gn[o * p + q], acc);
                    }
                    if let Some(i) = at(n, l, q) {
                        dx[i] += acc;
                    }
                }
            }
        }
        let mut dw = vec![0.0f32; g.o * k];
        for s0 in (0..g.n).step_by(CONV_CHUNK) {
            for o in 0..g.o {
                for l in 0..k {
                    let mut acc = 0.0f32;
                    for n in s0..(s0 + CONV_CHUNK).min(g.n) {
                        for q in 0..p {
                            let xv = at(n, l, q).map_or(0.0, |i| xd[i]);
                            acc = xv.mul_add(gd[(n * g.o + o) * p + q], acc);
                        }
                    }
                    dw[o * k + l] += acc;
                }
            }
        }
        (dx, dw)
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.data().iter().map(|v| v.to_bits()).collect()
    }

    /// (N, C, H, W, O, k, stride, pad): a partial chunk, output channels
    /// below, at and above NR, stride 2 and 3, padding, a 1×1 output, the
    /// paper's 9×9 first layer, more taps than a tile's width, and outputs
    /// of 16 pixels whose samples share one ∂col (short last groups, a
    /// second chunk).
    const SHAPES: [[usize; 8]; 8] = [
        [19, 1, 12, 12, 5, 3, 1, 0],
        [3, 3, 9, 11, 17, 3, 2, 1],
        [17, 4, 8, 8, 20, 5, 1, 2],
        [2, 2, 7, 7, 3, 7, 1, 0],
        [5, 2, 10, 9, 16, 4, 3, 2],
        [18, 1, 20, 20, 32, 9, 1, 0],
        [3, 8, 6, 6, 20, 5, 1, 1],
        [21, 2, 6, 6, 33, 3, 1, 0],
    ];

    #[test]
    fn every_build_and_thread_count_matches_the_formulas_bit_for_bit_across_builds() {
        for (si, &[n, c, h, w, o, k, stride, pad]) in SHAPES.iter().enumerate() {
            let mut rng = engine::rng::seeded(10 + si as u64);
            let x = Tensor::normal(&[n, c, h, w], 0.0, 1.0, &mut rng);
            let wt = Tensor::normal(&[o, c, k, k], 0.0, 1.0, &mut rng);
            let b = Tensor::normal(&[o], 0.0, 1.0, &mut rng);
            let geom = ConvGeom::new(x.shape(), wt.shape(), stride, pad);
            let g = Tensor::normal(&[n, o, geom.oh, geom.ow], 0.0, 1.0, &mut rng);
            let (y0, dx0, dw0) = naive(&x, &wt, &g, stride, pad);
            let documented = documented_forward(&x, &wt, &b, stride, pad);
            let (documented_dx, documented_dw) = documented_backward(&x, &wt, &g, stride, pad);
            let mut first: Option<Vec<Vec<u32>>> = None;
            for isa in Isa::available() {
                for threads in [1, 2] {
                    let (y, yb, dx, dw, db) = pool(threads).install(|| {
                        let y = forward_with(isa, &x, &wt, None, stride, pad, None);
                        let yb = forward_with(isa, &x, &wt, Some(&b), stride, pad, None);
                        // Blocks of 1 and 7 taps: every chain split, mid-channel too.
                        for tb in [1, 7] {
                            let yt = forward_with(isa, &x, &wt, Some(&b), stride, pad, Some(tb));
                            assert_eq!(bits(&yt), bits(&yb), "shape {si}, {isa:?}, blocks of {tb}");
                        }
                        let (dx, dw, db) =
                            backward_with(isa, &x, &wt, &g, stride, pad, [true, true, true]);
                        (y, yb, dx.unwrap(), dw.unwrap(), db.unwrap())
                    });
                    let what = format!("shape {si}, {isa:?}, {threads} threads");
                    close(y.data(), &y0);
                    close(dx.data(), &dx0);
                    close(dw.data(), &dw0);
                    let gsum: Vec<f32> = (0..o)
                        .map(|oi| {
                            let plane = geom.pix();
                            (0..n)
                                .map(|ni| {
                                    g.data()[(ni * o + oi) * plane..][..plane]
                                        .iter()
                                        .sum::<f32>()
                                })
                                .sum()
                        })
                        .collect();
                    close(db.data(), &gsum);
                    let to_bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&yb), to_bits(&documented), "{what}");
                    assert_eq!(bits(&dx), to_bits(&documented_dx), "{what}: ∂x");
                    assert_eq!(bits(&dw), to_bits(&documented_dw), "{what}: ∂W");
                    let all = vec![bits(&y), bits(&yb), bits(&dx), bits(&dw), bits(&db)];
                    match &first {
                        None => first = Some(all),
                        Some(f) => assert!(f == &all, "{what} differs from the first build"),
                    }
                }
            }
        }
    }

    #[test]
    fn partial_needs_give_the_same_bits_as_full_backward() {
        let mut rng = engine::rng::seeded(4);
        let x = Tensor::normal(&[20, 3, 9, 9], 0.0, 1.0, &mut rng);
        let w = Tensor::normal(&[7, 3, 3, 3], 0.0, 1.0, &mut rng);
        let g = Tensor::normal(&[20, 7, 9, 9], 0.0, 1.0, &mut rng);
        let (dx, dw, db) = conv2d_backward(&x, &w, &g, 1, 1, [true, true, true]);
        let (dx1, dw1, db1) = conv2d_backward(&x, &w, &g, 1, 1, [true, false, false]);
        let (dx2, dw2, db2) = conv2d_backward(&x, &w, &g, 1, 1, [false, true, true]);
        assert!(dw1.is_none() && db1.is_none() && dx2.is_none());
        assert_eq!(bits(&dx.unwrap()), bits(&dx1.unwrap()));
        assert_eq!(bits(&dw.unwrap()), bits(&dw2.unwrap()));
        assert_eq!(bits(&db.unwrap()), bits(&db2.unwrap()));
    }
}
