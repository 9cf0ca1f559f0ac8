//! Eq. (5), the bilinear kernel k(d) = max(0, 1 − |d|) on the two neighbours
//! floor(x) and floor(x)+1, and its sub-gradient for eq. (7): −1 on the left
//! neighbour, +1 on the right. At an exact integer coordinate the neighbours
//! are still floor(x) and floor(x)+1, PyTorch's choice (the right derivative).

use super::coords::{clamp_index, floor_tame, in_range, pad, tame, unnormalise, unnormalise_scale};
use super::options::Padding;
use super::separable::AxisTaps;

/// Fills the two taps per pixel from the padded coordinate.
pub(crate) fn fill_axis(
    t: &mut AxisTaps<2>,
    g: &[f32],
    size: usize,
    padding: Padding,
    align_corners: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `fill_avx2` only requires the AVX2 instructions it was
        // compiled for, and the line above checked that this CPU has them.
        // Its body is the portable loop below (same IEEE operations lane by
        // lane, no FMA contraction in Rust), so results are bit-identical.
        unsafe { fill_avx2(t, g, size, padding, align_corners) };
        return;
    }
    fill_portable(t, g, size, padding, align_corners);
}

/// The portable path (SSE2 on x86-64).
#[inline(always)]
fn fill_portable(
    t: &mut AxisTaps<2>,
    g: &[f32],
    size: usize,
    padding: Padding,
    align_corners: bool,
) {
    // One loop per padding mode, so the hot loop has no match inside.
    match padding {
        Padding::Zeros => fill_with(t, g, size, align_corners, |u| (u, 1.0)),
        Padding::Border => fill_with(t, g, size, align_corners, |u| {
            pad(u, size, Padding::Border, align_corners)
        }),
        Padding::Reflection => fill_with(t, g, size, align_corners, |u| {
            pad(u, size, Padding::Reflection, align_corners)
        }),
    }
}

/// The same loop compiled for AVX2 (8 lanes instead of 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(t: &mut AxisTaps<2>, g: &[f32], size: usize, padding: Padding, align_corners: bool) {
    fill_portable(t, g, size, padding, align_corners)
}

#[inline(always)]
fn fill_with(
    t: &mut AxisTaps<2>,
    g: &[f32],
    size: usize,
    align_corners: bool,
    pad: impl Fn(f32) -> (f32, f32),
) {
    let scale = unnormalise_scale(size, align_corners);
    let n = g.len();
    // Slices cut to the row's length up front: no bounds checks in the loop.
    let [idx0, idx1] = &mut t.idx;
    let [w0, w1] = &mut t.w;
    let [dw0, dw1] = &mut t.dw;
    let (idx0, idx1, w0, w1) = (&mut idx0[..n], &mut idx1[..n], &mut w0[..n], &mut w1[..n]);
    let (dw0, dw1, mult) = (&mut dw0[..n], &mut dw1[..n], &mut t.mult[..n]);
    for j in 0..n {
        let (u, ok, tame_grad) = tame(unnormalise(g[j], size, align_corners));
        let (p, dp) = pad(u);
        let i0 = floor_tame(p);
        let frac = p - i0;
        let m0 = ok * in_range(i0, size);
        let m1 = ok * in_range(i0 + 1.0, size);
        idx0[j] = clamp_index(i0, size);
        idx1[j] = clamp_index(i0 + 1.0, size);
        // Forward (eq. 5): weights 1 − frac and frac; 0 for a missing neighbour.
        w0[j] = (1.0 - frac) * m0;
        w1[j] = frac * m1;
        // Backward (eq. 7): d weight / d x = −1 left, +1 right.
        dw0[j] = -m0;
        dw1[j] = m1;
        mult[j] = scale * dp * tame_grad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the tap loop must give the portable loop's bits.
    #[test]
    fn avx2_and_portable_taps_are_bit_identical() {
        let mut g: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.0137).sin() * 1.7).collect();
        g.extend([
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            1e30,
            -1.0,
            1.0,
            0.0,
            -0.0,
        ]);
        for padding in [Padding::Zeros, Padding::Border, Padding::Reflection] {
            for ac in [false, true] {
                for size in [1, 7, 28] {
                    let mut a = AxisTaps::<2>::new(g.len());
                    let mut b = AxisTaps::<2>::new(g.len());
                    fill_portable(&mut a, &g, size, padding, ac);
                    fill_axis(&mut b, &g, size, padding, ac);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    for k in 0..2 {
                        assert_eq!(a.idx[k], b.idx[k]);
                        assert_eq!(bits(&a.w[k]), bits(&b.w[k]));
                        assert_eq!(bits(&a.dw[k]), bits(&b.dw[k]));
                    }
                    assert_eq!(bits(&a.mult), bits(&b.mult));
                }
            }
        }
    }
}
