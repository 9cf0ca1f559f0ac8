//! Fused grid generator + sampler for any transform with a pointwise map
//! ([`crate::Transform::point_map`]): V = sampler(U, T_θ(G)) computed straight
//! from θ, row by row, without materialising the N×H'×W'×2 grid. Every
//! transform's [`crate::Transform::sample`] takes this path when it has a map
//! (affine, projective and the affine family do; the TPS does not); the
//! functions here are the named entry points.
//!
//! The backward chains eq. (7) through the map's `add_dtheta`:
//!
//! * affine: ∂x_s/∂θ1k = (x_t, y_t, 1)k, ∂y_s/∂θ2k likewise;
//! * projective, with D = h31 x_t + h32 y_t + 1: ∂x_s/∂(h11, h12, h13) =
//!   (x_t, y_t, 1)/D, ∂y_s/∂(h21, h22, h23) likewise, and
//!   ∂(x_s, y_s)/∂h31 = −(x_s, y_s)·x_t/D, ∂(x_s, y_s)/∂h32 = −(x_s, y_s)·y_t/D.
//!
//! Agreement with the two-step path (transform → [`crate::sampler::grid_sample_var`],
//! tested in `stn/tests/fused.rs` for every mode, padding and `align_corners`):
//! affine values and ∂U are bit-identical (the same rounded source points and
//! kernels), and ∂θ agrees to 1e-6 relative (the same f32 products,
//! accumulated in f64: in `affine_grid_backward`'s order for nearest and
//! bicubic, as fixed-lane row sums for bilinear). Projective values
//! agree to 1e-5 absolute for images in [0, 1] and ∂U, ∂θ to 2e-5 relative to
//! their largest entry, because the two-step grid comes from an f32 matmul and
//! division, the fused source points from f64.

use crate::grid::check_theta;
use crate::point_map::{AffineMap, PointMap};
use crate::transforms::Projective;
use crate::SampleOptions;
use engine::Var;
use std::sync::Arc;

/// V = sampler(U, A_θ G) (eqs. 1 and 3) for θ N×6 (A_θ row-major) and
/// `input` N×C×H×W, giving N×C×H'×W' for `out_hw = [H', W']`, without
/// building the grid. Equals `Affine.grid` followed by
/// [`crate::sampler::grid_sample_var`]; see the module docs for the tolerance.
///
/// # Panics
/// If θ is not N×6 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn affine_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("affine_sample", theta, 6);
    point_map_sample(Arc::new(AffineMap), input, theta, out_hw, opts)
}

/// V = sampler(U, H_θ G) for the plane projective transform, θ N×8 =
/// (h11, h12, h13, h21, h22, h23, h31, h32) with h33 = 1 (see
/// [`crate::transforms::Projective`]), without building the grid. Equals
/// `Projective.grid` followed by [`crate::sampler::grid_sample_var`]; see the
/// module docs for the tolerance.
///
/// # Panics
/// If θ is not N×8 or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn projective_sample(input: &Var, theta: &Var, out_hw: [usize; 2], opts: SampleOptions) -> Var {
    check_theta("projective_sample", theta, 8);
    point_map_sample(Arc::new(Projective), input, theta, out_hw, opts)
}

/// V = sampler(U, T_θ(G)) for any pointwise map, θ N×P for the map's P.
///
/// # Panics
/// If θ is not N×P or `input` is not N×C×H×W with the same N and H, W > 0.
pub fn point_map_sample(
    map: Arc<dyn PointMap>,
    input: &Var,
    theta: &Var,
    out_hw: [usize; 2],
    opts: SampleOptions,
) -> Var {
    crate::sampler::kernels::fused::sample(map, input, theta, out_hw, opts)
}
