//! Rotation about the centre: the affine transform of eq. (1) restricted to
//!
//! A_θ = [[cos φ, −sin φ, 0], [sin φ, cos φ, 0]],
//!
//! one parameter θ = (φ), the angle in radians; identity (0). The worked
//! example of `docs/extending.md`.
//!
//! Derivatives (what the tape computes for us): x_s = cos φ·x_t − sin φ·y_t,
//! y_s = sin φ·x_t + cos φ·y_t, so ∂x_s/∂φ = −y_s and ∂y_s/∂φ = x_s.
//!
//! The angle acts on normalised coordinates, so on a non-square image the
//! warp is a rotation followed by the aspect-ratio stretch.

use super::{affine_matrix, check_theta, grid_from_affine, PointMap, Transform, ViaAffine};
use engine::{Tensor, Var};
use std::sync::Arc;

/// The rotation about the image centre.
///
/// * θ layout (P = 1): θ = (φ), the angle in radians.
/// * Formula: A_θ = [[cos φ, −sin φ, 0], [sin φ, cos φ, 0]] in eq. (1), so
///   x_s = cos φ·x_t − sin φ·y_t, y_s = sin φ·x_t + cos φ·y_t.
/// * Identity: (0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rotation;

impl Rotation {
    /// The rotation.
    pub fn new() -> Rotation {
        Rotation
    }
}

impl Transform for Rotation {
    fn name(&self) -> &'static str {
        "rotation"
    }

    fn num_params(&self) -> usize {
        1
    }

    fn identity(&self) -> Vec<f32> {
        vec![0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, 1);
        // Build A_θ (N×6) from tape ops, then reuse the affine grid generator.
        let (c, s) = (theta.cos(), theta.sin());
        let minus_s = s.neg();
        let zero = Var::constant(Tensor::zeros(&[n, 1]));
        let a = Var::concat(&[&c, &minus_s, &zero, &s, &c, &zero], 1);
        grid_from_affine(&a, out_hw, align_corners)
    }

    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        let (c, s) = (theta[0].cos(), theta[0].sin());
        Some(affine_matrix(&[c, -s, 0.0, s, c, 0.0]))
    }

    /// Fused: A_θ and ∂A/∂φ = [−sin φ, −cos φ, 0, cos φ, −sin φ, 0] per item.
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(ViaAffine {
            num_params: 1,
            to_affine: |t, out| {
                let (s, c) = t[0].sin_cos();
                out[..6].copy_from_slice(&[c, -s, 0.0, s, c, 0.0]);
                out[6..].copy_from_slice(&[-s, -c, 0.0, c, -s, 0.0]);
            },
        }))
    }
}
