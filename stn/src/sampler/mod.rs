//! The sampler of a spatial transformer (paper §3.3): PyTorch's `grid_sample`
//! as one fused op on plain tensors, forward and backward.
//!
//! V^c_i = Σ_n Σ_m U^c_nm k(x_s_i − m) k(y_s_i − n) (eq. 3), with k the nearest
//! (eq. 4), bilinear (eq. 5) or bicubic kernel; the backward gives ∂U (eq. 6)
//! and ∂(x_s, y_s) (eq. 7), both with PyTorch's conventions, to 1e-5 relative.
//!
//! **Start with [`bilinear`]**, the spatial transformer's kernel: eqs. (5)–(7)
//! and the chain rule into grid units as plain scalar Rust, one sample point
//! at a time. [`grid_sample`] and its backward call it directly; what it
//! hands the work to lives in `kernels/` (AVX2 / AVX-512 / portable blocks
//! of points, prefetching, scratch, the split into thread tasks, and the
//! fused transform + sampler) and gives the page's numbers bit for bit
//! (tested there). Nearest (eq. 4) and bicubic fill per-axis taps for each
//! output row (`nearest`, `bicubic`, `separable`).
//!
//! Work is split into fixed-size pieces (never by thread arrival), and
//! every output value is summed in a fixed order, so results are
//! bit-identical for any number of threads (see `kernels/tasks.rs`).
//!
//! Wild coordinates (NaN, ±Inf, |pixel| > 2²²) never read out of bounds: NaN
//! samples 0, ±Inf and huge values behave like a point far outside (0 with
//! zero padding, the edge with border, a well-defined reflection), and their
//! gradient w.r.t. the grid is 0. Non-finite *input* values are not masked:
//! an out-of-range tap reads a clamped pixel with weight 0, so an Inf/NaN
//! pixel can leak into its neighbouring samples.

pub(crate) mod bicubic;
pub mod bilinear;
mod coords;
pub(crate) mod kernels;
pub(crate) mod nearest;
mod options;
pub(crate) mod separable;
mod var;

pub use coords::MAX_SIDE;
pub use options::{Mode, Padding, SampleOptions};
pub use var::grid_sample_var;

use engine::Tensor;
use kernels::tasks;
use kernels::Isa;

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
        // Eqs. (3) and (5): the page.
        Mode::Bilinear => bilinear::forward(input, grid, &s, opts),
        Mode::Nearest => tasks::forward::<1>(input, grid, &s, nearest::fill_axis, opts),
        Mode::Bicubic => tasks::forward::<4>(input, grid, &s, bicubic::fill_axis, opts),
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
        // Eqs. (6) and (7): the page.
        return bilinear::backward(input, grid, grad_output, &s, opts, need_input, need_grid);
    }
    let gi = need_input.then(|| match opts.mode {
        Mode::Nearest => tasks::grad_input::<1>(grid, grad_output, &s, nearest::fill_axis, opts),
        _ => tasks::grad_input::<4>(grid, grad_output, &s, bicubic::fill_axis, opts),
    });
    let gg = need_grid.then(|| match opts.mode {
        // Eq. (4) is piecewise constant: its gradient w.r.t. the grid is 0.
        Mode::Nearest => Tensor::zeros(grid.shape()),
        _ => tasks::grad_grid::<4>(input, grid, grad_output, &s, bicubic::fill_axis, opts),
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

/// The sizes of one sampling problem, checked once: input N×C×H×W, output
/// N×C×H'×W'.
pub(crate) struct Shapes {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Shapes {
    pub fn check(
        name: &str,
        input: &Tensor,
        grid: &Tensor,
        grad_output: Option<&Tensor>,
    ) -> Shapes {
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
}
