//! Bicubic sampling: Keys' cubic convolution with α = −0.75 (PyTorch's
//! coefficients) on the four neighbours floor(x)−1 … floor(x)+2 of the
//! *unpadded* coordinate; padding is then applied to each tap's index on its
//! own (ATen's `get_value_bounded`), so it carries no gradient. The gradient
//! w.r.t. the grid flows only through the fractional position t.

use super::coords::{clamp_index, in_range, pad, tame, unnormalise_scale, WILD};
use super::options::Padding;
use super::separable::AxisTaps;

/// The cubic convolution parameter.
const A: f64 = -0.75;

/// k(d) for |d| ≤ 1: ((A+2)|d| − (A+3))|d|² + 1.
#[inline]
fn near(d: f64) -> f64 {
    ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0
}

/// k'(d) for 0 ≤ d ≤ 1.
#[inline]
fn near_grad(d: f64) -> f64 {
    (3.0 * (A + 2.0) * d - 2.0 * (A + 3.0)) * d
}

/// k(d) for 1 < |d| < 2: ((A|d| − 5A)|d| + 8A)|d| − 4A.
#[inline]
fn far(d: f64) -> f64 {
    ((A * d - 5.0 * A) * d + 8.0 * A) * d - 4.0 * A
}

/// k'(d) for 1 < d < 2.
#[inline]
fn far_grad(d: f64) -> f64 {
    (3.0 * A * d - 10.0 * A) * d + 8.0 * A
}

/// [`unnormalise`](super::coords::unnormalise) in f64.
#[inline]
fn unnormalise_f64(x: f32, size: usize, align_corners: bool) -> f64 {
    let (x, size) = (x as f64, size as f64);
    if align_corners {
        (x + 1.0) * 0.5 * (size - 1.0)
    } else {
        ((x + 1.0) * size - 1.0) * 0.5
    }
}

/// Fills the four taps per pixel.
pub(crate) fn fill_axis(
    t: &mut AxisTaps<4>,
    g: &[f32],
    size: usize,
    padding: Padding,
    align_corners: bool,
) {
    let scale = unnormalise_scale(size, align_corners);
    for (j, &x) in g.iter().enumerate() {
        // The fractional position is computed in f64: the weights' derivatives
        // are steep enough that f32 rounding of (x+1)·W alone costs ~1e-5 in
        // ∂grid (PyTorch's own f32 result is off by as much).
        let u = unnormalise_f64(x, size, align_corners);
        let (_, ok, tame_grad) = tame(u as f32);
        let u = if u.is_nan() {
            0.0
        } else {
            u.clamp(-WILD as f64, WILD as f64)
        };
        let i0 = u.floor();
        let f = u - i0;
        let i0 = i0 as f32;
        // Forward: weights of taps at distances 1+f, f, 1−f, 2−f.
        let w = [far(1.0 + f), near(f), near(1.0 - f), far(2.0 - f)];
        // Backward: their derivatives w.r.t. f (the distance shrinks for the
        // two taps to the right, hence the sign).
        let dw = [
            far_grad(1.0 + f),
            near_grad(f),
            -near_grad(1.0 - f),
            -far_grad(2.0 - f),
        ];
        for k in 0..4 {
            let (p, _) = pad(i0 - 1.0 + k as f32, size, padding, align_corners);
            let m = ok * in_range(p, size);
            t.idx[k][j] = clamp_index(p, size);
            t.w[k][j] = w[k] as f32 * m;
            t.dw[k][j] = dw[k] as f32 * m;
        }
        t.mult[j] = scale * tame_grad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_interpolate_and_their_derivatives_match_finite_differences() {
        for &f in &[0.0f64, 0.2, 0.5, 0.9] {
            let w = [far(1.0 + f), near(f), near(1.0 - f), far(2.0 - f)];
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let e = 1e-5;
            if f > 0.0 {
                let num = (near(f + e) - near(f - e)) / (2.0 * e);
                assert!((num - near_grad(f)).abs() < 1e-8, "{num} {}", near_grad(f));
            }
            let numf = (far(1.5 + e) - far(1.5 - e)) / (2.0 * e);
            assert!((numf - far_grad(1.5)).abs() < 1e-8);
        }
    }
}
