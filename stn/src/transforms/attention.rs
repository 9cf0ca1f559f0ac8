//! Eq. (2), attention: A_θ = [[s, 0, t_x], [0, s, t_y]], an isotropic scale and
//! a translation (crop, zoom and move a window).

use super::{
    affine_matrix, check_theta, grid_from_affine, linear_params, PointMap, Transform, ViaAffine,
};
use engine::Var;
use std::sync::Arc;

/// θ = (s, t_x, t_y) → the six entries of A_θ, as rows of a 3×6 matrix.
const TO_AFFINE: [f32; 18] = [
    1.0, 0.0, 0.0, 0.0, 1.0, 0.0, // s sits at A11 and A22
    0.0, 0.0, 1.0, 0.0, 0.0, 0.0, // t_x at A13
    0.0, 0.0, 0.0, 0.0, 0.0, 1.0, // t_y at A23
];

/// The attention transform of eq. (2): crop, zoom and move a window.
///
/// * θ layout (P = 3): θ = (s, t_x, t_y).
/// * Formula: A_θ = [[s, 0, t_x], [0, s, t_y]] in eq. (1); s < 1 zooms in.
/// * Identity: (1, 0, 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Attention;

impl Attention {
    /// The attention transform.
    pub fn new() -> Attention {
        Attention
    }

    fn to_affine(theta: &[f32]) -> [f32; 6] {
        [theta[0], 0.0, theta[1], 0.0, theta[0], theta[2]]
    }
}

impl Transform for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn num_params(&self) -> usize {
        3
    }

    fn identity(&self) -> Vec<f32> {
        vec![1.0, 0.0, 0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        check_theta(self.name(), theta, 3);
        // A_θ is linear in θ: a constant matrix product on the tape.
        let a = linear_params(theta, &TO_AFFINE, [0.0; 6]);
        grid_from_affine(&a, out_hw, align_corners)
    }

    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        Some(affine_matrix(&Self::to_affine(theta)))
    }

    /// Fused: A_θ is linear in θ, ∂A/∂θ is [`TO_AFFINE`] transposed.
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(ViaAffine {
            num_params: 3,
            to_affine: |t, out| {
                out[..6].copy_from_slice(&[t[0], 0.0, t[1], 0.0, t[0], t[2]]);
                for i in 0..6 {
                    for k in 0..3 {
                        out[6 + i * 3 + k] = TO_AFFINE[k * 6 + i] as f64;
                    }
                }
            },
        }))
    }
}
