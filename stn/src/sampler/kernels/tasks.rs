//! How a `grid_sample` call is split into thread tasks. The split depends
//! only on the shapes (never on the thread count or on which thread comes
//! first), and every output value is summed in a fixed order, so results
//! are bit-identical for any number of threads:
//! - forward: tasks of (batch item, block of output rows), each writing its rows
//!   of every channel;
//! - ∂U: one task per batch item (bilinear, together with its ∂grid) or per
//!   (batch item, channel) plane, walking the output pixels in order and
//!   scatter-adding into planes no other task touches;
//! - ∂grid: tasks of (batch item, block of output rows), summing channels in order.

use super::{Isa, Planes};
use crate::sampler::separable::{grid_grad_row, sample_row, scatter_row, FillAxis, RowTaps};
use crate::sampler::{SampleOptions, Shapes};
use engine::parallel::Filler;
use engine::Tensor;
use rayon::prelude::*;

/// Output pixels per forward / ∂grid task (rows are grouped up to about this).
const TASK_PIXELS: usize = 4096;

/// Output rows per task: a fixed number, independent of the thread count.
fn rows_per_task(s: &Shapes) -> usize {
    (TASK_PIXELS / s.wo.max(1)).max(1)
}

/// Splits interleaved (x, y) grid values into `xs` and `ys` (as many as `xs`).
#[inline(always)]
pub(crate) fn split_xy(pts: &[f32], xs: &mut [f32], ys: &mut [f32]) {
    for ((xy, x), y) in pts.chunks_exact(2).zip(xs.iter_mut()).zip(ys.iter_mut()) {
        *x = xy[0];
        *y = xy[1];
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
        let rows = rows_per_task(s);
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

/// Bilinear forward over blocks of points ([`super::forward`]).
pub(crate) fn forward_bilinear(
    input: &Tensor,
    grid: &Tensor,
    s: &Shapes,
    opts: SampleOptions,
) -> Tensor {
    let (inp, grd) = (input.data(), grid.data());
    let (out_plane, isa) = (s.ho * s.wo, Isa::detect());
    forward_tasks(s, |b, p0, pieces| {
        let planes = Planes::item(inp, b, s.c, s.h, s.w);
        let pts = &grd[b * out_plane * 2..][..out_plane * 2];
        super::forward(isa, planes, opts, p0, pieces, |p, xs, ys| {
            split_xy(&pts[2 * p..], xs, ys)
        });
    })
}

/// Nearest and bicubic forward over the separable row taps.
pub(crate) fn forward<const K: usize>(
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
pub(crate) fn backward_bilinear(
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
        super::backward(
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
            let rows = rows_per_task(s);
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

/// ∂input of nearest and bicubic: one task per (batch item, channel) plane.
pub(crate) fn grad_input<const K: usize>(
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

/// ∂grid of bicubic: tasks of (batch item, block of output rows).
pub(crate) fn grad_grid<const K: usize>(
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
    let rows = rows_per_task(s);
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
