//! The 8-parameter plane projective transform (§3.2): a homography
//! H = [[h11, h12, h13], [h21, h22, h23], [h31, h32, 1]] (h33 fixed to 1),
//!
//! x_s = (h11 x_t + h12 y_t + h13) / (h31 x_t + h32 y_t + 1),
//! y_s = (h21 x_t + h22 y_t + h23) / (h31 x_t + h32 y_t + 1),
//!
//! θ = (h11, h12, h13, h21, h22, h23, h31, h32), identity (1, 0, 0, 0, 1, 0, 0, 0):
//! the first six are A_θ of eq. (1), the last two the perspective row.
//!
//! Where the denominator reaches 0 the grid is ±Inf or NaN; the sampler treats
//! those points as far outside (or not sampled) with a zero gradient.

use super::{base_grid, check_theta, PointMap, Transform};
use engine::{Tensor, Var};
use std::sync::Arc;

/// The plane projective transform (a homography, h33 fixed to 1).
///
/// * θ layout (P = 8): (h11, h12, h13, h21, h22, h23, h31, h32).
/// * Formula: with D = h31 x_t + h32 y_t + 1,
///   x_s = (h11 x_t + h12 y_t + h13) / D, y_s = (h21 x_t + h22 y_t + h23) / D.
/// * Identity: (1, 0, 0, 0, 1, 0, 0, 0).
///
/// Where D reaches 0 the grid is ±Inf or NaN; the sampler treats those points
/// as far outside with a zero gradient. Fused through its own [`PointMap`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Projective;

impl Projective {
    /// The projective transform.
    pub fn new() -> Projective {
        Projective
    }
}

impl Transform for Projective {
    fn name(&self) -> &'static str {
        "proj"
    }

    fn num_params(&self) -> usize {
        8
    }

    fn identity(&self) -> Vec<f32> {
        vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, 8);
        let hw = out_hw[0] * out_hw[1];
        // Homogeneous base points B = [x_t, y_t, 1] (HW×3).
        let b2 = base_grid(out_hw, align_corners);
        let mut b3 = engine::pool::take_empty(hw * 3);
        for p in b2.data().chunks_exact(2) {
            b3.extend_from_slice(&[p[0], p[1], 1.0]);
        }
        let b = Var::constant(Tensor::from_vec(b3, &[hw, 3]));
        // H per item (N×3×3, rows r, columns k), with h33 = 1 appended.
        let ones = Var::constant(Tensor::ones(&[n, 1]));
        let h = Var::concat(&[theta, &ones], 1).reshape(&[n, 3, 3]);
        // Q[n, p, r] = Σ_k B[p, k] H[n, r, k]: one matmul for the whole batch
        // with the items side by side, M[k, 3n + r] = H[n, r, k].
        let m = h.permute(&[2, 0, 1]).reshape(&[3, 3 * n]);
        let q = b.matmul(&m).reshape(&[hw, n, 3]).permute(&[1, 0, 2]); // N×HW×3: (numerator x, numerator y, denominator)
        let num = q.narrow(2, 0, 2);
        let den = q.narrow(2, 2, 1);
        num.div(&den).reshape(&[n, out_hw[0], out_hw[1], 2])
    }

    fn matrix(&self, t: &[f32]) -> Option<[[f32; 3]; 3]> {
        Some([[t[0], t[1], t[2]], [t[3], t[4], t[5]], [t[6], t[7], 1.0]])
    }

    fn point_map(&self) -> Option<Arc<dyn PointMap>> {
        Some(Arc::new(*self))
    }
}

impl Projective {
    /// (x_s, y_s) and the denominator D = h31 x_t + h32 y_t + 1.
    #[inline(always)]
    fn at(t: &[f64], x: f64, y: f64) -> (f64, f64, f64) {
        let d = x * t[6] + y * t[7] + 1.0;
        (
            (x * t[0] + y * t[1] + t[2]) / d,
            (x * t[3] + y * t[4] + t[5]) / d,
            d,
        )
    }
}

/// The homography per point: x_s = (h11 x + h12 y + h13)/D, …; ∂ in
/// [`crate::fused`]'s module docs.
impl PointMap for Projective {
    fn num_params(&self) -> usize {
        8
    }

    fn source(&self, t: &[f64], x: f64, y: f64) -> (f64, f64) {
        let (a, c, _) = Self::at(t, x, y);
        (a, c)
    }

    fn add_dtheta(&self, t: &[f64], x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64]) {
        let (xsrc, ysrc, den) = Self::at(t, x, y);
        for (r, gk) in [gx, gy].into_iter().enumerate() {
            acc[3 * r] += gk * x / den;
            acc[3 * r + 1] += gk * y / den;
            acc[3 * r + 2] += gk / den;
        }
        let cxy = gx * xsrc + gy * ysrc;
        acc[6] -= cxy * x / den;
        acc[7] -= cxy * y / den;
    }
}
