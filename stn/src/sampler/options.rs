//! What `grid_sample` does at a sample point: the kernel, the padding and the
//! pixel convention, named and defaulted like PyTorch's `grid_sample`.

/// The sampling kernel k(·) of eq. (3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Eq. (5): k(d) = max(0, 1 − |d|), the 2×2 neighbours.
    #[default]
    Bilinear,
    /// Eq. (4): the nearest pixel, rounding half to even; no gradient w.r.t. the grid.
    Nearest,
    /// Cubic convolution with α = −0.75 over the 4×4 neighbours (PyTorch's `bicubic`).
    Bicubic,
}

/// How a sample point outside the input is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pixels outside the input are 0.
    #[default]
    Zeros,
    /// The coordinate is clamped to the input (the edge pixels repeat).
    Border,
    /// The coordinate is reflected at the input's edges, then clamped.
    Reflection,
}

/// Options of [`grid_sample`](crate::grid_sample); `Default` is PyTorch's default
/// (bilinear, zeros, `align_corners = false`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SampleOptions {
    /// The interpolation kernel.
    pub mode: Mode,
    /// The padding for points outside the input.
    pub padding: Padding,
    /// `true`: −1 and +1 are the centres of the corner pixels; `false`: they are
    /// the outer edges of the corner pixels (pixel centres at (2i+1)/W − 1).
    pub align_corners: bool,
}

impl SampleOptions {
    /// Options with the given mode and padding and `align_corners = false`.
    pub fn new(mode: Mode, padding: Padding) -> SampleOptions {
        SampleOptions {
            mode,
            padding,
            align_corners: false,
        }
    }

    /// The same options with `align_corners` set.
    pub fn align_corners(self, align_corners: bool) -> SampleOptions {
        SampleOptions {
            align_corners,
            ..self
        }
    }
}
