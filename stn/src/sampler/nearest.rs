//! Eq. (4), the integer sampling kernel: the nearest pixel, rounding half to
//! even like PyTorch's `nearbyint`. Forward weight 1 on one tap; the kernel is
//! piecewise constant, so its derivative (and the gradient w.r.t. the grid) is 0.

use super::coords::{clamp_index, in_range, pad, tame, unnormalise};
use super::options::Padding;
use super::separable::AxisTaps;

/// Fills the single tap per pixel: the padded coordinate rounded half to even.
pub(crate) fn fill_axis(
    t: &mut AxisTaps<1>,
    g: &[f32],
    size: usize,
    padding: Padding,
    align_corners: bool,
) {
    for (j, &x) in g.iter().enumerate() {
        let (u, ok, _) = tame(unnormalise(x, size, align_corners));
        let (p, _) = pad(u, size, padding, align_corners);
        let i = p.round_ties_even();
        // Forward: k(d) = 1 at the nearest pixel if it exists, else padding 0.
        t.w[0][j] = ok * in_range(i, size);
        t.idx[0][j] = clamp_index(i, size);
        // Backward: k'(d) = 0 almost everywhere.
        t.dw[0][j] = 0.0;
        t.mult[j] = 0.0;
    }
}
