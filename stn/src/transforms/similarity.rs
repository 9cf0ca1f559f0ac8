//! Similarity: the affine transform of eq. (1) restricted to an isotropic
//! scale, a rotation and a translation,
//!
//! A_θ = [[s·cos φ, −s·sin φ, t_x], [s·sin φ, s·cos φ, t_y]],
//!
//! with θ = (s, φ, t_x, t_y): s the scale (s < 1 zooms in), φ the angle in
//! radians (positive turns the sampling grid from +x towards +y, i.e. the
//! *output* appears rotated by −φ), t the shift in normalised units.
//! Identity: (1, 0, 0, 0). The scale is used as is (not its logarithm), so
//! s = 0 collapses the grid to one point and s < 0 adds a half turn.

use super::{affine_matrix, check_theta, grid_from_affine, PointMap, Transform, ViaAffine};
use engine::Var;
use std::sync::Arc;

/// The similarity transform: isotropic scale, rotation, shift.
///
/// * θ layout (P = 4): θ = (s, φ, t_x, t_y); s the scale (s < 1 zooms in),
///   φ in radians, t in normalised units.
/// * Formula: A_θ = [[s cos φ, −s sin φ, t_x], [s sin φ, s cos φ, t_y]] in eq. (1).
/// * Identity: (1, 0, 0, 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Similarity;

impl Similarity {
    /// The similarity transform.
    pub fn new() -> Similarity {
        Similarity
    }
}

impl Transform for Similarity {
    fn name(&self) -> &'static str {
        "similarity"
    }

    fn num_params(&self) -> usize {
        4
    }

    fn identity(&self) -> Vec<f32> {
        vec![1.0, 0.0, 0.0, 0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        check_theta(self.name(), theta, 4);
        let s = theta.narrow(1, 0, 1);
        let phi = theta.narrow(1, 1, 1);
        let tx = theta.narrow(1, 2, 1);
        let ty = theta.narrow(1, 3, 1);
        // a = s cos φ, b = s sin φ: A_θ = [[a, −b, t_x], [b, a, t_y]].
        let a = s.mul(&phi.cos());
        let b = s.mul(&phi.sin());
        let mb = b.neg();
        let a6 = Var::concat(&[&a, &mb, &tx, &b, &a, &ty], 1);
        grid_from_affine(&a6, out_hw, align_corners)
    }

    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        let (s, phi) = (theta[0], theta[1]);
        let (a, b) = (s * phi.cos(), s * phi.sin());
        Some(affine_matrix(&[a, -b, theta[2], b, a, theta[3]]))
    }

    /// Fused: A_θ and ∂A/∂θ (columns s, φ, t_x, t_y) per item.
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(ViaAffine {
            num_params: 4,
            to_affine: |t, out| {
                let (sn, cs) = t[1].sin_cos();
                let (a, b) = (t[0] * cs, t[0] * sn);
                out[..6].copy_from_slice(&[a, -b, t[2], b, a, t[3]]);
                // Row i of ∂A_i/∂(s, φ, t_x, t_y).
                let j: [[f64; 4]; 6] = [
                    [cs, -b, 0.0, 0.0],
                    [-sn, -a, 0.0, 0.0],
                    [0.0, 0.0, 1.0, 0.0],
                    [sn, a, 0.0, 0.0],
                    [cs, -b, 0.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0],
                ];
                out[6..].copy_from_slice(j.as_flattened());
            },
        }))
    }
}
