//! From a normalised grid value to a pixel coordinate: unnormalisation, taming
//! of wild values, and the padding transforms (border clamp, reflection), each
//! with its derivative so the backward pass can chain through it (PyTorch's
//! `*_set_grad` conventions: the derivative of a clamp is 0 on and beyond the
//! boundary, and a reflection flips the sign of the derivative).

use super::options::Padding;

/// Pixel coordinates beyond ±2²² are "wild": far outside any image, and too
/// coarse in f32 to carry a fractional position. They are clamped to ±2²² and
/// get a zero gradient; ±Inf lands there too (so border padding answers the
/// edge pixel, like PyTorch), and NaN is flagged as not sampling at all.
pub(crate) const WILD: f32 = 4_194_304.0;

/// Largest image side the sampler accepts (index arithmetic is exact in f32
/// below 2²³).
pub const MAX_SIDE: usize = 1 << 23;

/// d(pixel coordinate)/d(grid value) of [`unnormalise`].
pub(crate) fn unnormalise_scale(size: usize, align_corners: bool) -> f32 {
    if align_corners {
        (size as f32 - 1.0) * 0.5
    } else {
        size as f32 * 0.5
    }
}

/// Grid value in [−1, 1] to pixel coordinate: `align_corners`: ((x+1)/2)(W−1),
/// else ((x+1)W − 1)/2 (−1 and +1 are the outer edges of the corner pixels).
#[inline]
pub(crate) fn unnormalise(x: f32, size: usize, align_corners: bool) -> f32 {
    if align_corners {
        (x + 1.0) * 0.5 * (size as f32 - 1.0)
    } else {
        ((x + 1.0) * size as f32 - 1.0) * 0.5
    }
}

/// A pixel coordinate made safe: `(coordinate, ok, grad)` where the coordinate
/// is finite and within ±[`WILD`], `ok` is 0 for NaN (the point samples
/// nothing) and 1 otherwise, and `grad` is 1 only for a tame coordinate.
#[inline]
pub(crate) fn tame(u: f32) -> (f32, f32, f32) {
    // NaN becomes −WILD (any finite value would do: `ok` masks it out).
    let c = if u.is_nan() {
        -WILD
    } else {
        u.clamp(-WILD, WILD)
    };
    let ok = if u.is_nan() { 0.0 } else { 1.0 };
    let grad = if u.abs() <= WILD { 1.0 } else { 0.0 };
    (c, ok, grad)
}

/// Clamps to [0, size−1]; the derivative is 1 strictly inside, else 0.
#[inline]
fn clip(u: f32, size: usize) -> (f32, f32) {
    let hi = size as f32 - 1.0;
    let d = if u > 0.0 && u < hi { 1.0 } else { 0.0 };
    (u.max(0.0).min(hi), d)
}

/// Reflects at `lo` and `lo + span` (the pixel centres of the corner pixels
/// when `align_corners`, else their outer edges), with the derivative ±1.
///
/// Written as "fold modulo 2·span, then mirror the upper half" rather than
/// counting flips, so it stays continuous even where a division rounds.
#[inline]
fn reflect(u: f32, size: usize, align_corners: bool) -> (f32, f32) {
    let (lo, span) = if align_corners {
        (0.0, size as f32 - 1.0)
    } else {
        (-0.5, size as f32)
    };
    if span <= 0.0 {
        // A single pixel with align_corners: everything reflects onto it.
        return (0.0, 0.0);
    }
    let d = u - lo;
    let sign = if d < 0.0 { -1.0 } else { 1.0 };
    let extra = d.abs() % (2.0 * span);
    if extra > span {
        (2.0 * span - extra + lo, -sign)
    } else {
        (extra + lo, sign)
    }
}

/// Applies the padding to a (tame) pixel coordinate: `(coordinate, derivative)`.
/// Zeros: unchanged. Border: clamped. Reflection: reflected, then clamped
/// (ATen's `compute_coordinates`).
#[inline]
pub(crate) fn pad(u: f32, size: usize, padding: Padding, align_corners: bool) -> (f32, f32) {
    match padding {
        Padding::Zeros => (u, 1.0),
        Padding::Border => clip(u, size),
        Padding::Reflection => {
            let (r, dr) = reflect(u, size, align_corners);
            let (c, dc) = clip(r, size);
            (c, dr * dc)
        }
    }
}

/// The integer-valued `f` (|f| ≤ 2²², e.g. the floor of a tame
/// coordinate) as an i32, with float arithmetic that vectorises: f + 1.5·2²³
/// lies in [2²³, 2²⁴], where the float's bits are 0x4B40_0000 + f exactly.
#[inline]
pub(crate) fn int_tame(f: f32) -> i32 {
    (f + 12_582_912.0).to_bits() as i32 - 0x4B40_0000
}

/// 1.0 if the integer-valued `i` indexes a pixel of an axis of `size`, else 0.0.
#[inline]
pub(crate) fn in_range(i: f32, size: usize) -> f32 {
    if i >= 0.0 && i <= size as f32 - 1.0 {
        1.0
    } else {
        0.0
    }
}

/// `i` clamped into [0, size−1] as an index (out-of-range taps read a valid
/// pixel and are given weight 0 instead of a branch). `i` must be an integer
/// value and `size` in 1..2²³ ([`MAX_SIDE`]).
#[inline]
pub(crate) fn clamp_index(i: f32, size: usize) -> usize {
    let c = i.max(0.0).min(size as f32 - 1.0);
    // An integer 0 ≤ c < 2²³ plus 2²³ has c as its mantissa bits: an exact
    // conversion that vectorises (sizes are checked < 2²³ by the sampler).
    ((c + 8_388_608.0).to_bits() - 0x4B00_0000) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_tame_is_exact() {
        for f in [
            -WILD,
            -WILD + 1.0,
            -3.0,
            -1.0,
            -0.0,
            0.0,
            1.0,
            27.0,
            1e6,
            WILD - 1.0,
            WILD,
        ] {
            assert_eq!(int_tame(f), f as i32, "{f}");
        }
    }

    #[test]
    fn clamp_index_is_exact() {
        for (i, size, want) in [
            (-3.0, 5, 0),
            (0.0, 5, 0),
            (3.0, 5, 3),
            (9.0, 5, 4),
            (7_000_000.0, MAX_SIDE, 7_000_000),
        ] {
            assert_eq!(clamp_index(i, size), want);
        }
    }

    #[test]
    fn unnormalise_matches_both_conventions() {
        assert_eq!(unnormalise(-1.0, 5, true), 0.0);
        assert_eq!(unnormalise(1.0, 5, true), 4.0);
        assert_eq!(unnormalise(-1.0, 4, false), -0.5);
        assert_eq!(unnormalise(1.0, 4, false), 3.5);
        assert_eq!(unnormalise(-0.75, 4, false), 0.0);
    }

    #[test]
    fn reflection_folds_into_the_image_and_flips_the_gradient() {
        // align_corners: mirror at 0 and 4.
        assert_eq!(reflect(-1.5, 5, true), (1.5, -1.0));
        assert_eq!(reflect(5.0, 5, true), (3.0, -1.0));
        assert_eq!(reflect(9.0, 5, true), (1.0, 1.0));
        // not align_corners: mirror at −0.5 and 3.5.
        assert_eq!(reflect(-1.0, 4, false), (0.0, -1.0));
        assert_eq!(reflect(4.0, 4, false), (3.0, -1.0));
        assert_eq!(pad(4.0, 4, Padding::Reflection, false), (3.0, 0.0));
    }

    #[test]
    fn tame_flags_nan_and_stops_gradients_of_wild_values() {
        assert_eq!(tame(2.5), (2.5, 1.0, 1.0));
        assert_eq!(tame(f32::NAN), (-WILD, 0.0, 0.0));
        assert_eq!(tame(f32::INFINITY), (WILD, 1.0, 0.0));
        assert_eq!(tame(-1e30), (-WILD, 1.0, 0.0));
    }
}
