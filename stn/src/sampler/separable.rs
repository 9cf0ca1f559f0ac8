//! Eq. (3) as a separable sum over a few taps per axis:
//! V = Σ_i Σ_k U[y_i, x_k] · w^y_i · w^x_k, where each mode fills, per output
//! pixel and axis, K tap indices, their weights k(·) and the weights'
//! derivatives k'(·) w.r.t. the pixel coordinate (the mode files).
//!
//! Everything is laid out as structure-of-arrays over one output row, so the
//! inner loops run over contiguous buffers with no per-pixel branches: a tap
//! that falls outside the image has a clamped (valid) index and weight 0.

use super::options::{Padding, SampleOptions};

/// The taps of one axis for every pixel of one output row.
pub(crate) struct AxisTaps<const K: usize> {
    /// Pixel index of tap k (always valid; out-of-range taps are clamped).
    pub idx: [Vec<usize>; K],
    /// Weight of tap k (0 for a tap outside the image under zero padding).
    pub w: [Vec<f32>; K],
    /// d(weight of tap k)/d(pixel coordinate).
    pub dw: [Vec<f32>; K],
    /// d(pixel coordinate)/d(grid value): unnormalisation × padding × tameness.
    pub mult: Vec<f32>,
}

impl<const K: usize> AxisTaps<K> {
    pub(crate) fn new(len: usize) -> AxisTaps<K> {
        AxisTaps {
            idx: std::array::from_fn(|_| vec![0; len]),
            w: std::array::from_fn(|_| vec![0.0; len]),
            dw: std::array::from_fn(|_| vec![0.0; len]),
            mult: vec![0.0; len],
        }
    }
}

/// Fills the taps of one axis (of `size` pixels) from the grid values `g`.
pub(crate) type FillAxis<const K: usize> = fn(&mut AxisTaps<K>, &[f32], usize, Padding, bool);

/// Scratch for one output row: the grid split into x and y, and both axes' taps.
pub(crate) struct RowTaps<const K: usize> {
    gx: Vec<f32>,
    gy: Vec<f32>,
    /// Taps along the input's width.
    pub x: AxisTaps<K>,
    /// Taps along the input's height.
    pub y: AxisTaps<K>,
}

impl<const K: usize> RowTaps<K> {
    /// Scratch for rows of `len` output pixels.
    pub fn new(len: usize) -> RowTaps<K> {
        RowTaps {
            gx: vec![0.0; len],
            gy: vec![0.0; len],
            x: AxisTaps::new(len),
            y: AxisTaps::new(len),
        }
    }

    /// Computes the taps for one row whose grid values `point(j) = (x, y)` are
    /// produced on the fly (the fused transform + sampler), for an input of
    /// `h`×`w` pixels.
    pub fn compute_from(
        &mut self,
        h: usize,
        w: usize,
        fill: FillAxis<K>,
        opts: SampleOptions,
        mut point: impl FnMut(usize) -> (f32, f32),
    ) {
        for (j, (gx, gy)) in self.gx.iter_mut().zip(self.gy.iter_mut()).enumerate() {
            (*gx, *gy) = point(j);
        }
        fill(&mut self.x, &self.gx, w, opts.padding, opts.align_corners);
        fill(&mut self.y, &self.gy, h, opts.padding, opts.align_corners);
    }

    /// Computes the taps for one row of the grid (`len` interleaved (x, y) pairs)
    /// sampling an input of `h`×`w` pixels.
    pub fn compute(
        &mut self,
        grid_row: &[f32],
        h: usize,
        w: usize,
        fill: FillAxis<K>,
        opts: SampleOptions,
    ) {
        super::kernels::tasks::split_xy(grid_row, &mut self.gx, &mut self.gy);
        fill(&mut self.x, &self.gx, w, opts.padding, opts.align_corners);
        fill(&mut self.y, &self.gy, h, opts.padding, opts.align_corners);
    }
}

/// Forward, eq. (3): one output row of one channel from its input plane.
pub(crate) fn sample_row<const K: usize>(
    plane: &[f32],
    width: usize,
    t: &RowTaps<K>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `sample_row_avx2` only needs the AVX2 instructions it was
        // compiled for, which the line above checked this CPU has. Its body is
        // `sample_row_portable`: the same operations in the same order, so the
        // results are bit-identical.
        unsafe { sample_row_avx2(plane, width, t, out) };
        return;
    }
    sample_row_portable(plane, width, t, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sample_row_avx2<const K: usize>(plane: &[f32], width: usize, t: &RowTaps<K>, out: &mut [f32]) {
    sample_row_portable(plane, width, t, out)
}

#[inline(always)]
fn sample_row_portable<const K: usize>(
    plane: &[f32],
    width: usize,
    t: &RowTaps<K>,
    out: &mut [f32],
) {
    let n = out.len();
    if n == 0 {
        return;
    }
    // Tap indices are always valid (clamped); `min(last)` tells the compiler
    // so, which removes the bounds checks from the gathers.
    let last = plane.len() - 1;
    let (yi, yw): ([&[usize]; K], [&[f32]; K]) = (
        std::array::from_fn(|i| &t.y.idx[i][..n]),
        std::array::from_fn(|i| &t.y.w[i][..n]),
    );
    let (xi, xw): ([&[usize]; K], [&[f32]; K]) = (
        std::array::from_fn(|k| &t.x.idx[k][..n]),
        std::array::from_fn(|k| &t.x.w[k][..n]),
    );
    for (j, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0;
        for i in 0..K {
            let base = yi[i][j] * width;
            let mut r = 0.0;
            for k in 0..K {
                r += plane[(base + xi[k][j]).min(last)] * xw[k][j];
            }
            acc += r * yw[i][j];
        }
        *o = acc;
    }
}

/// Backward to the input, eq. (6): scatters one output row's gradient into the
/// gradient of its input plane, pixel after pixel in order (deterministic).
pub(crate) fn scatter_row<const K: usize>(
    grad_plane: &mut [f32],
    width: usize,
    t: &RowTaps<K>,
    grad_out: &[f32],
) {
    for (j, &g) in grad_out.iter().enumerate() {
        for i in 0..K {
            let gy = g * t.y.w[i][j];
            let row = &mut grad_plane[t.y.idx[i][j] * width..][..width];
            for k in 0..K {
                row[t.x.idx[k][j]] += gy * t.x.w[k][j];
            }
        }
    }
}

/// Backward to the grid, eq. (7): adds one channel's contribution to the
/// row's ∂V/∂x_s and ∂V/∂y_s (in pixel units; the caller applies `mult`).
pub(crate) fn grid_grad_row<const K: usize>(
    plane: &[f32],
    width: usize,
    t: &RowTaps<K>,
    grad_out: &[f32],
    gix: &mut [f32],
    giy: &mut [f32],
) {
    for (j, &g) in grad_out.iter().enumerate() {
        let mut dx = 0.0;
        let mut dy = 0.0;
        for i in 0..K {
            let row = &plane[t.y.idx[i][j] * width..][..width];
            let mut r = 0.0;
            let mut rd = 0.0;
            for k in 0..K {
                let v = row[t.x.idx[k][j]];
                r += v * t.x.w[k][j];
                rd += v * t.x.dw[k][j];
            }
            dx += rd * t.y.w[i][j];
            dy += r * t.y.dw[i][j];
        }
        gix[j] += g * dx;
        giy[j] += g * dy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{bicubic, nearest};

    fn check<const K: usize>(fill: FillAxis<K>) {
        let (h, w, len) = (9, 11, 301);
        let plane: Vec<f32> = (0..h * w).map(|i| (i as f32 * 0.731).sin()).collect();
        let grid: Vec<f32> = (0..2 * len)
            .map(|i| (i as f32 * 0.0173).cos() * 1.3)
            .collect();
        for padding in [Padding::Zeros, Padding::Border, Padding::Reflection] {
            let opts = SampleOptions::new(crate::Mode::Bilinear, padding);
            let mut taps = RowTaps::<K>::new(len);
            taps.compute(&grid, h, w, fill, opts);
            let (mut a, mut b) = (vec![0.0f32; len], vec![0.0f32; len]);
            sample_row_portable(&plane, w, &taps, &mut a);
            sample_row(&plane, w, &taps, &mut b);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{padding:?}");
        }
    }

    /// The run-time-chosen build of the gather gives the portable loop's bits.
    #[test]
    fn sample_row_builds_are_bit_identical() {
        check::<1>(nearest::fill_axis);
        check::<4>(bicubic::fill_axis);
    }
}
