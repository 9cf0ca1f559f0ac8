//! The page's [`axis`](crate::sampler::bilinear::axis) (eq. 5's neighbours
//! and weights, eq. 7's weight derivatives, dp/dg) for blocks of points.
//!
//! Points are handled in blocks of [`BLOCK`]: [`Corners::compute`] turns each
//! point into the plane offsets of its four neighbours and the per-axis
//! weights and weight derivatives. Everything is 32-bit and laid out as
//! structure-of-arrays, so the loop runs 8 lanes wide under AVX2; the kernels
//! in `kernels/mod.rs` then gather, blend and scatter over these arrays for
//! every channel.

use crate::sampler::bilinear::axis_padded;
use crate::sampler::coords::pad;
use crate::sampler::{Padding, SampleOptions};

/// Points per block (a multiple of 16, the AVX-512 lane count; 128 measured
/// 10–20% faster than 64 on one-channel ∂grid, no better at 256).
pub(crate) const BLOCK: usize = 128;

/// Eq. (5) for a block of up to [`BLOCK`] sample points.
pub(crate) struct Corners {
    /// Points in the block.
    pub len: usize,
    /// Plane offsets (row · W + column) of the neighbours (x₀, y₀), (x₁, y₀),
    /// (x₀, y₁), (x₁, y₁). Always valid: a neighbour outside the image is
    /// clamped onto it and given weight 0 instead of a branch.
    pub off: [[u32; BLOCK]; 4],
    /// Weights along x of the left and right neighbour: 1 − frac and frac.
    pub wx: [[f32; BLOCK]; 2],
    /// Weights along y of the top and bottom neighbour.
    pub wy: [[f32; BLOCK]; 2],
    /// d(weight)/d(pixel x): −1 and +1 (0 for a missing neighbour).
    pub dwx: [[f32; BLOCK]; 2],
    /// d(weight)/d(pixel y).
    pub dwy: [[f32; BLOCK]; 2],
    /// d(pixel coordinate)/d(grid value) for x and y: unnormalisation ×
    /// padding × tameness.
    pub mult: [[f32; BLOCK]; 2],
}

/// Blocks whose corners are computed before any is sampled, when an image has
/// several channels: the sampling then runs channel after channel over
/// these 1,024 points, so its gathers stay in one plane (in cache) instead of
/// visiting every plane for each point.
pub(crate) const SUPER: usize = 8;

/// One thread's working arrays: the corners of up to [`SUPER`] blocks, one
/// block's source points, and the blocks' grid gradients.
pub(crate) struct Scratch {
    /// The blocks' corners.
    pub c: [Corners; SUPER],
    /// Normalised source x of each point of a block.
    pub xs: [f32; BLOCK],
    /// Normalised source y of each point of a block.
    pub ys: [f32; BLOCK],
    /// ∂L/∂x of each point (pixel units, then grid units), per block.
    pub gx: [[f32; BLOCK]; SUPER],
    /// ∂L/∂y of each point, per block.
    pub gy: [[f32; BLOCK]; SUPER],
}

thread_local! {
    /// Each thread's spare [`Scratch`].
    static SPARE: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

impl Scratch {
    /// This thread's scratch, allocated and zeroed once per thread rather
    /// than once per task (zeroing a fresh 9 KiB per task was 7% of a
    /// one-channel ∂grid call); hand it back with [`Scratch::put_back`].
    /// Every array is written before it is read, so nothing carries over
    /// from one use to the next. (A guard or a closure would be neater, but a
    /// closure loses the caller's `target_feature`s.)
    pub fn take() -> Box<Scratch> {
        SPARE.take().unwrap_or_else(|| {
            let corners = || Corners {
                len: 0,
                off: [[0; BLOCK]; 4],
                wx: [[0.0; BLOCK]; 2],
                wy: [[0.0; BLOCK]; 2],
                dwx: [[0.0; BLOCK]; 2],
                dwy: [[0.0; BLOCK]; 2],
                mult: [[0.0; BLOCK]; 2],
            };
            Box::new(Scratch {
                c: std::array::from_fn(|_| corners()),
                xs: [0.0; BLOCK],
                ys: [0.0; BLOCK],
                gx: [[0.0; BLOCK]; SUPER],
                gy: [[0.0; BLOCK]; SUPER],
            })
        })
    }

    /// Keeps `self` for this thread's next [`Scratch::take`].
    pub fn put_back(self: Box<Scratch>) {
        SPARE.set(Some(self));
    }
}

impl Corners {
    /// Fills the block from the normalised grid values `x`, `y` (at most
    /// [`BLOCK`] points) for an input plane of `h`×`w` pixels
    /// (h·w < 2³¹, checked by the sampler). The derivatives (`dwx`, `dwy`,
    /// `mult`) are filled only when `GRAD`: the forward pass needs none.
    #[inline(always)]
    pub fn compute<const GRAD: bool>(
        &mut self,
        x: &[f32],
        y: &[f32],
        h: usize,
        w: usize,
        opts: SampleOptions,
    ) {
        let ac = opts.align_corners;
        // One loop per padding mode, so the hot loop has no match inside.
        match opts.padding {
            Padding::Zeros => self.fill::<GRAD>(x, y, h, w, ac, |u, _| (u, 1.0)),
            Padding::Border => {
                self.fill::<GRAD>(x, y, h, w, ac, |u, size| pad(u, size, Padding::Border, ac))
            }
            Padding::Reflection => self.fill::<GRAD>(x, y, h, w, ac, |u, size| {
                pad(u, size, Padding::Reflection, ac)
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn fill<const GRAD: bool>(
        &mut self,
        x: &[f32],
        y: &[f32],
        h: usize,
        w: usize,
        align_corners: bool,
        pad: impl Fn(f32, usize) -> (f32, f32),
    ) {
        let n = x.len();
        assert!(
            n <= BLOCK && y.len() == n,
            "a block holds at most {BLOCK} points"
        );
        self.len = n;
        // The page's per-axis arithmetic (eqs. 5 and 7, dp/dg), inlined.
        let axis = |g: f32, size: usize| {
            let a = axis_padded(g, size, align_corners, &pad);
            let idx = [a.idx[0] as u32, a.idx[1] as u32];
            (idx, a.wt, a.dwt, a.mult)
        };
        // No overflow: every offset is at most h·w − 1 < 2³¹.
        let wu = w as u32;
        for j in 0..n {
            let (ix, wx, dwx, mx) = axis(x[j], w);
            let (iy, wy, dwy, my) = axis(y[j], h);
            let (r0, r1) = (iy[0] * wu, iy[1] * wu);
            self.off[0][j] = r0 + ix[0];
            self.off[1][j] = r0 + ix[1];
            self.off[2][j] = r1 + ix[0];
            self.off[3][j] = r1 + ix[1];
            for k in 0..2 {
                self.wx[k][j] = wx[k];
                self.wy[k][j] = wy[k];
            }
            if GRAD {
                for k in 0..2 {
                    self.dwx[k][j] = dwx[k];
                    self.dwy[k][j] = dwy[k];
                }
                self.mult[0][j] = mx;
                self.mult[1][j] = my;
            }
        }
    }
}
