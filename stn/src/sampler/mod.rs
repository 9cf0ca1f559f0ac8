//! The sampler of a spatial transformer (paper §3.3): PyTorch's `grid_sample`
//! as one fused op on plain tensors, forward and backward.
//!
//! V^c_i = Σ_n Σ_m U^c_nm k(x_s_i − m) k(y_s_i − n) (eq. 3), with k the nearest
//! (eq. 4), bilinear (eq. 5) or bicubic kernel; the backward gives ∂U (eq. 6)
//! and ∂(x_s, y_s) (eq. 7), both with PyTorch's conventions, to 1e-5 relative.
//!
//! Layout: bilinear sampling (the spatial transformer's kernel) runs over
//! blocks of 64 points: each point's four neighbours become plane offsets and
//! per-axis weights, structure-of-arrays (`bilinear`), and the kernels in
//! `bilinear_kernels` gather, blend and scatter over them for every channel,
//! with an AVX2 build chosen at run time. Nearest and bicubic fill per-axis
//! taps for each output row (`separable`). Work is split into fixed-size
//! pieces (never by thread arrival), and every output value is summed in a
//! fixed order, so results are bit-identical for any number of threads:
//! - forward: tasks of (batch item, block of output rows), each writing its rows
//!   of every channel;
//! - ∂U: one task per batch item (bilinear, together with its ∂grid) or per
//!   (batch item, channel) plane, walking the output pixels in order and
//!   scatter-adding into planes no other task touches;
//! - ∂grid: tasks of (batch item, block of output rows), summing channels in order.
//!
//! Wild coordinates (NaN, ±Inf, |pixel| > 2²²) never read out of bounds: NaN
//! samples 0, ±Inf and huge values behave like a point far outside (0 with
//! zero padding, the edge with border, a well-defined reflection), and their
//! gradient w.r.t. the grid is 0. Non-finite *input* values are not masked:
//! an out-of-range tap reads a clamped pixel with weight 0, so an Inf/NaN
//! pixel can leak into its neighbouring samples.

pub(crate) mod bicubic;
pub(crate) mod bilinear;
pub(crate) mod bilinear_kernels;
mod coords;
pub(crate) mod fused;
pub(crate) mod nearest;
mod options;
pub(crate) mod separable;
mod var;

pub use coords::MAX_SIDE;
pub use options::{Mode, Padding, SampleOptions};
pub use var::grid_sample_var;

use bilinear_kernels::{Isa, Planes};
use engine::parallel::Filler;
use engine::Tensor;
use rayon::prelude::*;
use separable::{grid_grad_row, sample_row, scatter_row, FillAxis, RowTaps};

/// Output pixels per forward / ∂grid task (rows are grouped up to about this).
const TASK_PIXELS: usize = 4096;

/// Which build of the bilinear kernels this process runs: `"avx512"`,
/// `"avx2"` or `"portable"` (see `WARPGRAD_SIMD` in docs/benchmarks.md). All
/// give the same bits; benchmark reports print it.
pub fn kernel_build() -> &'static str {
    match Isa::detect() {
        Isa::Avx512 => "avx512",
        Isa::Avx2 => "avx2",
        Isa::Portable => "portable",
    }
}

/// Samples `input` (N×C×H×W) at the points of `grid` (N×H'×W'×2, x first, in
/// [−1, 1] normalised coordinates), giving N×C×H'×W'; equals PyTorch's
/// `F.grid_sample(input, grid, mode, padding_mode, align_corners)`.
///
/// # Panics
/// If the shapes do not fit together, the input has an empty spatial size or
/// a plane of 2³¹ pixels or more.
pub fn grid_sample(input: &Tensor, grid: &Tensor, opts: SampleOptions) -> Tensor {
    let s = Shapes::check("grid_sample", input, grid, None);
    match opts.mode {
        Mode::Bilinear => forward_bilinear(input, grid, &s, opts),
        Mode::Nearest => forward::<1>(input, grid, &s, nearest::fill_axis, opts),
        Mode::Bicubic => forward::<4>(input, grid, &s, bicubic::fill_axis, opts),
    }
}

/// Backward of [`grid_sample`]: `(∂L/∂input, ∂L/∂grid)` given `grad_output`
/// = ∂L/∂output (N×C×H'×W').
///
/// # Panics
/// As [`grid_sample`], or if `grad_output` is not N×C×H'×W'.
pub fn grid_sample_backward(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    opts: SampleOptions,
) -> (Tensor, Tensor) {
    let (gi, gg) = grid_sample_backward_masked(input, grid, grad_output, opts, true, true);
    (
        gi.expect("the input gradient was asked for"),
        gg.expect("the grid gradient was asked for"),
    )
}

/// Backward of [`grid_sample`] computing only the gradients asked for: the
/// common case in a spatial transformer is an image that needs no gradient,
/// which skips the scatter into ∂input entirely.
///
/// # Panics
/// As [`grid_sample_backward`].
pub fn grid_sample_backward_masked(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    opts: SampleOptions,
    need_input: bool,
    need_grid: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    let s = Shapes::check("grid_sample_backward", input, grid, Some(grad_output));
    if opts.mode == Mode::Bilinear {
        return backward_bilinear(input, grid, grad_output, &s, opts, need_input, need_grid);
    }
    let gi = need_input.then(|| match opts.mode {
        Mode::Nearest => grad_input::<1>(grid, grad_output, &s, nearest::fill_axis, opts),
        _ => grad_input::<4>(grid, grad_output, &s, bicubic::fill_axis, opts),
    });
    let gg = need_grid.then(|| match opts.mode {
        // Eq. (4) is piecewise constant: its gradient w.r.t. the grid is 0.
        Mode::Nearest => Tensor::zeros(grid.shape()),
        _ => grad_grid::<4>(input, grid, grad_output, &s, bicubic::fill_axis, opts),
    });
    (gi, gg)
}

/// Checks the spatial size of an N×C×H×W input (`is`) the kernels can
/// sample: H, W > 0, each below 2²³ (exact index arithmetic in f32), and
/// H·W below 2³¹ (u32 plane offsets, read as i32 by the AVX2 gathers).
///
/// # Panics
/// If it is not, naming `name` and the shape.
pub(crate) fn check_plane(name: &str, is: &[usize]) {
    assert!(
        is[2] > 0 && is[3] > 0,
        "{name}: input has an empty spatial size: {is:?}"
    );
    assert!(
        is[2] < coords::MAX_SIDE && is[3] < coords::MAX_SIDE,
        "{name}: input sides must be below 2^23, got {is:?}"
    );
    assert!(
        is[2] * is[3] < 1 << 31,
        "{name}: input planes must have fewer than 2^31 pixels, got {is:?}"
    );
}

/// Splits interleaved (x, y) grid values into `xs` and `ys` (as many as `xs`).
#[inline(always)]
fn split_xy(pts: &[f32], xs: &mut [f32], ys: &mut [f32]) {
    for ((xy, x), y) in pts.chunks_exact(2).zip(xs.iter_mut()).zip(ys.iter_mut()) {
        *x = xy[0];
        *y = xy[1];
    }
}

/// The sizes of one sampling problem, checked once.
struct Shapes {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

impl Shapes {
    fn check(name: &str, input: &Tensor, grid: &Tensor, grad_output: Option<&Tensor>) -> Shapes {
        let (is, gs) = (input.shape(), grid.shape());
        assert!(
            is.len() == 4 && gs.len() == 4 && gs[3] == 2 && is[0] == gs[0],
            "{name}: input must be N×C×H×W and grid N×H'×W'×2, got input {is:?} and grid {gs:?}"
        );
        check_plane(name, is);
        let s = Shapes {
            n: is[0],
            c: is[1],
            h: is[2],
            w: is[3],
            ho: gs[1],
            wo: gs[2],
        };
        if let Some(go) = grad_output {
            assert!(
                go.shape() == [s.n, s.c, s.ho, s.wo],
                "{name}: grad_output must be {:?} for input {is:?} and grid {gs:?}, got {:?}",
                [s.n, s.c, s.ho, s.wo],
                go.shape()
            );
        }
        s
    }

    /// Output rows per task: a fixed number, independent of the thread count.
    fn rows_per_task(&self) -> usize {
        (TASK_PIXELS / self.wo.max(1)).max(1)
    }
}

/// Runs `job(item, first pixel, pieces)` over the forward tasks: (batch item,
/// block of output rows), each writing that block of every channel's output
/// plane. The split depends only on the shapes.
fn forward_tasks(s: &Shapes, job: impl Fn(usize, usize, &mut [Filler<f32>]) + Sync) -> Tensor {
    let out_plane = s.ho * s.wo;
    let out = engine::parallel::written(s.n * s.c * out_plane, |all| {
        if out_plane == 0 || s.c == 0 {
            return;
        }
        let rows = s.rows_per_task();
        let blocks = s.ho.div_ceil(rows);
        // One flat list, task by task, each task's pieces channel by channel
        // (one allocation, not one per task).
        let mut slots: Vec<Option<Filler<f32>>> = (0..s.n * blocks * s.c).map(|_| None).collect();
        let pieces = all
            .chunks(out_plane)
            .flat_map(|plane| plane.chunks(rows * s.wo));
        for (i, piece) in pieces.enumerate() {
            // Piece `i` is row block k of channel ch of item b.
            let (b, ch, k) = (i / (s.c * blocks), i / blocks % s.c, i % blocks);
            slots[(b * blocks + k) * s.c + ch] = Some(piece);
        }
        let mut tasks: Vec<Filler<f32>> = slots.into_iter().flatten().collect();
        tasks
            .par_chunks_mut(s.c)
            .enumerate()
            .for_each(|(t, pieces)| {
                job(t / blocks, t % blocks * rows * s.wo, pieces);
            });
    });
    Tensor::from_vec(out, &[s.n, s.c, s.ho, s.wo])
}

/// Bilinear forward over blocks of points (`bilinear_kernels`).
fn forward_bilinear(input: &Tensor, grid: &Tensor, s: &Shapes, opts: SampleOptions) -> Tensor {
    let (inp, grd) = (input.data(), grid.data());
    let (out_plane, isa) = (s.ho * s.wo, Isa::detect());
    forward_tasks(s, |b, p0, pieces| {
        let planes = Planes::item(inp, b, s.c, s.h, s.w);
        let pts = &grd[b * out_plane * 2..][..out_plane * 2];
        bilinear_kernels::forward(isa, planes, opts, p0, pieces, |p, xs, ys| {
            split_xy(&pts[2 * p..], xs, ys)
        });
    })
}

/// Nearest and bicubic forward over the separable row taps.
fn forward<const K: usize>(
    input: &Tensor,
    grid: &Tensor,
    s: &Shapes,
    fill: FillAxis<K>,
    opts: SampleOptions,
) -> Tensor {
    let (inp, grd) = (input.data(), grid.data());
    let in_plane = s.h * s.w;
    forward_tasks(s, |b, p0, pieces| {
        let mut taps = RowTaps::<K>::new(s.wo);
        let mut row = vec![0.0f32; s.wo];
        let in_n = &inp[b * s.c * in_plane..][..s.c * in_plane];
        let (row0, nrows) = (p0 / s.wo, pieces[0].capacity() / s.wo);
        for r in 0..nrows {
            let grid_row = &grd[(b * s.ho + row0 + r) * s.wo * 2..][..s.wo * 2];
            taps.compute(grid_row, s.h, s.w, fill, opts);
            for (plane, piece) in in_n.chunks_exact(in_plane).zip(pieces.iter_mut()) {
                sample_row(plane, s.w, &taps, &mut row);
                piece.extend_from_slice(&row);
            }
        }
    })
}

/// Bilinear backward. ∂input (alone or with ∂grid) runs one task per batch
/// item, which owns that item's ∂U planes and adds into them in pixel order;
/// ∂grid alone runs tasks of (batch item, block of rows). Either way every
/// ∂grid value sums the channels in order, so the split changes no bits.
fn backward_bilinear(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    s: &Shapes,
    opts: SampleOptions,
    need_input: bool,
    need_grid: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    let (inp, grd, gout) = (input.data(), grid.data(), grad_output.data());
    let (in_plane, out_plane, isa) = (s.h * s.w, s.ho * s.wo, Isa::detect());
    let (du_len, grid_len) = (s.n * s.c * in_plane, s.n * out_plane * 2);
    if du_len == 0 || out_plane == 0 {
        // Nothing to sample: ∂U and ∂grid are zero (or empty).
        let gin = need_input.then(|| engine::parallel::zeros(du_len));
        let ggrid = need_grid.then(|| engine::parallel::zeros(grid_len));
        return finish(gin, ggrid, s, grid);
    }
    // Backward of output pixels `p0 .. p0 + len` of item `b`, ∂grid written
    // into `gg` (interleaved x, y) when given.
    let run = |b: usize, (p0, len), du: Option<&mut [f32]>, mut gg: Option<&mut Filler<f32>>| {
        let planes = Planes::item(inp, b, s.c, s.h, s.w);
        let pts = &grd[b * out_plane * 2..][..out_plane * 2];
        let go = &gout[b * s.c * out_plane..][..s.c * out_plane];
        let need_grid = gg.is_some();
        bilinear_kernels::backward(
            isa,
            planes,
            opts,
            go,
            out_plane,
            (p0, len),
            du,
            need_grid,
            |p, xs, ys| split_xy(&pts[2 * p..], xs, ys),
            |_, gx, gy| {
                if let Some(gg) = gg.as_deref_mut() {
                    gg.extend_interleaved(gx, gy);
                }
            },
        );
    };
    let (gin, ggrid) = match (need_input, need_grid) {
        (true, _) => {
            // One task per batch item, which zeroes that item's ∂U planes
            // itself (while they are in its cache, not in a pass of their own).
            let items =
                |du_items: Vec<Filler<f32>>, gg_items: Vec<Option<Filler<f32>>>| {
                    du_items.into_par_iter().zip(gg_items).enumerate().for_each(
                        |(b, (du, mut gg))| run(b, (0, out_plane), Some(du.zeroed()), gg.as_mut()),
                    );
                };
            let mut ggrid = None;
            let gin = engine::parallel::written(du_len, |all_du| {
                let du_items = all_du.chunks(s.c * in_plane).collect();
                if need_grid {
                    ggrid = Some(engine::parallel::written(grid_len, |all| {
                        items(du_items, all.chunks(out_plane * 2).map(Some).collect())
                    }));
                } else {
                    items(du_items, (0..s.n).map(|_| None).collect());
                }
            });
            (Some(gin), ggrid)
        }
        (false, true) => {
            let rows = s.rows_per_task();
            let gg = engine::parallel::written(grid_len, |all| {
                let tasks: Vec<(usize, usize, Filler<f32>)> = all
                    .chunks(out_plane * 2)
                    .enumerate()
                    .flat_map(|(b, gg_b)| {
                        gg_b.chunks(rows * s.wo * 2)
                            .enumerate()
                            .map(move |(k, chunk)| (b, k * rows * s.wo, chunk))
                    })
                    .collect();
                tasks.into_par_iter().for_each(|(b, p0, mut chunk)| {
                    let len = chunk.capacity() / 2;
                    run(b, (p0, len), None, Some(&mut chunk));
                });
            });
            (None, Some(gg))
        }
        (false, false) => (None, None),
    };
    finish(gin, ggrid, s, grid)
}

/// The backward's results as tensors of the input's and the grid's shapes.
fn finish(
    gin: Option<Vec<f32>>,
    ggrid: Option<Vec<f32>>,
    s: &Shapes,
    grid: &Tensor,
) -> (Option<Tensor>, Option<Tensor>) {
    (
        gin.map(|g| Tensor::from_vec(g, &[s.n, s.c, s.h, s.w])),
        ggrid.map(|g| Tensor::from_vec(g, grid.shape())),
    )
}

fn grad_input<const K: usize>(
    grid: &Tensor,
    grad_output: &Tensor,
    s: &Shapes,
    fill: FillAxis<K>,
    opts: SampleOptions,
) -> Tensor {
    let in_plane = s.h * s.w;
    let out_plane = s.ho * s.wo;
    let mut gin = engine::parallel::zeros(s.n * s.c * in_plane);
    if gin.is_empty() || out_plane == 0 {
        return Tensor::from_vec(gin, &[s.n, s.c, s.h, s.w]);
    }
    let (grd, gout) = (grid.data(), grad_output.data());
    // One task per (batch item, channel) plane: it owns its slice of ∂U and
    // adds into it in output-pixel order, so no two threads touch one value.
    gin.par_chunks_mut(in_plane)
        .enumerate()
        .for_each(|(p, gplane)| {
            let b = p / s.c;
            let mut taps = RowTaps::<K>::new(s.wo);
            let gout_plane = &gout[p * out_plane..][..out_plane];
            for (r, gout_row) in gout_plane.chunks_exact(s.wo).enumerate() {
                let grid_row = &grd[(b * s.ho + r) * s.wo * 2..][..s.wo * 2];
                taps.compute(grid_row, s.h, s.w, fill, opts);
                scatter_row(gplane, s.w, &taps, gout_row);
            }
        });
    Tensor::from_vec(gin, &[s.n, s.c, s.h, s.w])
}

fn grad_grid<const K: usize>(
    input: &Tensor,
    grid: &Tensor,
    grad_output: &Tensor,
    s: &Shapes,
    fill: FillAxis<K>,
    opts: SampleOptions,
) -> Tensor {
    let in_plane = s.h * s.w;
    let out_plane = s.ho * s.wo;
    let mut ggrid = engine::parallel::zeros(s.n * out_plane * 2);
    if ggrid.is_empty() {
        return Tensor::from_vec(ggrid, grid.shape());
    }
    let (inp, grd, gout) = (input.data(), grid.data(), grad_output.data());
    let rows = s.rows_per_task();
    ggrid
        .par_chunks_mut(out_plane * 2)
        .enumerate()
        .for_each(|(b, gg_n)| {
            let in_n = &inp[b * s.c * in_plane..][..s.c * in_plane];
            gg_n.par_chunks_mut(rows * s.wo * 2)
                .enumerate()
                .for_each(|(k, chunk)| {
                    let mut taps = RowTaps::<K>::new(s.wo);
                    let mut gix = vec![0.0f32; s.wo];
                    let mut giy = vec![0.0f32; s.wo];
                    for (r, out_row) in chunk.chunks_exact_mut(s.wo * 2).enumerate() {
                        let row = k * rows + r;
                        let grid_row = &grd[(b * s.ho + row) * s.wo * 2..][..s.wo * 2];
                        taps.compute(grid_row, s.h, s.w, fill, opts);
                        gix.fill(0.0);
                        giy.fill(0.0);
                        // Sum the channels in order (fixed, thread-independent).
                        for (ch, plane) in in_n.chunks_exact(in_plane).enumerate() {
                            let gout_row = &gout[((b * s.c + ch) * s.ho + row) * s.wo..][..s.wo];
                            grid_grad_row(plane, s.w, &taps, gout_row, &mut gix, &mut giy);
                        }
                        // Chain rule through padding and unnormalisation.
                        for (j, xy) in out_row.chunks_exact_mut(2).enumerate() {
                            xy[0] = gix[j] * taps.x.mult[j];
                            xy[1] = giy[j] * taps.y.mult[j];
                        }
                    }
                });
        });
    Tensor::from_vec(ggrid, grid.shape())
}
