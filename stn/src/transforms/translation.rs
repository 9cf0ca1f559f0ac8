//! Translation: A_θ = [[1, 0, t_x], [0, 1, t_y]], the affine transform of
//! eq. (1) restricted to a shift (in normalised units: t_x = 1 moves by half
//! the image width).

use super::{
    affine_matrix, check_theta, grid_from_affine, linear_params, PointMap, Transform, ViaAffine,
};
use engine::Var;
use std::sync::Arc;

/// θ = (t_x, t_y) → A_θ − I, as rows of a 2×6 matrix.
const TO_AFFINE: [f32; 12] = [
    0.0, 0.0, 1.0, 0.0, 0.0, 0.0, // t_x at A13
    0.0, 0.0, 0.0, 0.0, 0.0, 1.0, // t_y at A23
];

/// The translation.
///
/// * θ layout (P = 2): θ = (t_x, t_y), in normalised units (t_x = 1 moves by
///   half the image width).
/// * Formula: A_θ = [[1, 0, t_x], [0, 1, t_y]] in eq. (1): x_s = x_t + t_x,
///   y_s = y_t + t_y.
/// * Identity: (0, 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct Translation;

impl Translation {
    /// The translation.
    pub fn new() -> Translation {
        Translation
    }
}

impl Transform for Translation {
    fn name(&self) -> &'static str {
        "translation"
    }

    fn num_params(&self) -> usize {
        2
    }

    fn identity(&self) -> Vec<f32> {
        vec![0.0, 0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        check_theta(self.name(), theta, 2);
        let a = linear_params(theta, &TO_AFFINE, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        grid_from_affine(&a, out_hw, align_corners)
    }

    fn matrix(&self, theta: &[f32]) -> Option<[[f32; 3]; 3]> {
        Some(affine_matrix(&[1.0, 0.0, theta[0], 0.0, 1.0, theta[1]]))
    }

    /// Fused: A_θ = I + shift, ∂A/∂θ is [`TO_AFFINE`] transposed.
    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(ViaAffine {
            num_params: 2,
            to_affine: |t, out| {
                out[..6].copy_from_slice(&[1.0, 0.0, t[0], 0.0, 1.0, t[1]]);
                for i in 0..6 {
                    for k in 0..2 {
                        out[6 + i * 2 + k] = TO_AFFINE[k * 6 + i] as f64;
                    }
                }
            },
        }))
    }
}
