//! Eq. (1), the affine transform: (x_s, y_s)ᵀ = A_θ (x_t, y_t, 1)ᵀ with
//! A_θ = [[θ11, θ12, θ13], [θ21, θ22, θ23]], θ stored row-major (6 values).

use super::{affine_matrix, check_theta, grid_from_affine, AffineMap, PointMap, Transform};
use engine::Var;
use std::sync::Arc;

/// The affine transform of eq. (1).
///
/// * θ layout (P = 6): A_θ row-major, θ = (θ11, θ12, θ13, θ21, θ22, θ23).
/// * Formula: (x_s, y_s)ᵀ = A_θ (x_t, y_t, 1)ᵀ with
///   A_θ = [[θ11, θ12, θ13], [θ21, θ22, θ23]].
/// * Identity: (1, 0, 0, 0, 1, 0).
///
/// Its grid is [`crate::affine_grid()`]'s, exactly; it samples through the
/// fused path ([`crate::point_map::AffineMap`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Affine;

impl Affine {
    /// The affine transform.
    pub fn new() -> Affine {
        Affine
    }
}

impl Transform for Affine {
    fn name(&self) -> &'static str {
        "affine"
    }

    fn num_params(&self) -> usize {
        6
    }

    fn identity(&self) -> Vec<f32> {
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        check_theta(self.name(), theta, 6);
        grid_from_affine(theta, out_hw, align_corners)
    }

    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        Some(affine_matrix(theta))
    }

    /// Eq. (1) per point, in `affine_grid`'s expression (so the fused path
    /// samples the very same points).
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(AffineMap))
    }
}
