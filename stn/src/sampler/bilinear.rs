//! Eq. (5), the bilinear kernel k(d) = max(0, 1 − |d|) on the two neighbours
//! floor(x) and floor(x)+1, and its sub-gradient for eq. (7): −1 on the left
//! neighbour, +1 on the right. At an exact integer coordinate the neighbours
//! are still floor(x) and floor(x)+1, PyTorch's choice (the right derivative).

use super::coords::{clamp_index, in_range, pad, tame, unnormalise, unnormalise_scale};
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
    let scale = unnormalise_scale(size, align_corners);
    for (j, &x) in g.iter().enumerate() {
        let (u, ok, tame_grad) = tame(unnormalise(x, size, align_corners));
        let (p, dp) = pad(u, size, padding, align_corners);
        let i0 = p.floor();
        let frac = p - i0;
        let m0 = ok * in_range(i0, size);
        let m1 = ok * in_range(i0 + 1.0, size);
        t.idx[0][j] = clamp_index(i0, size);
        t.idx[1][j] = clamp_index(i0 + 1.0, size);
        // Forward (eq. 5): weights 1 − frac and frac; 0 for a missing neighbour.
        t.w[0][j] = (1.0 - frac) * m0;
        t.w[1][j] = frac * m1;
        // Backward (eq. 7): d weight / d x = −1 left, +1 right.
        t.dw[0][j] = -m0;
        t.dw[1][j] = m1;
        t.mult[j] = scale * dp * tame_grad;
    }
}
