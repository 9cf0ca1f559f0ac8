//! The affine grid generator T_θ of eq. (1): (x_s, y_s)ᵀ = A_θ (x_t, y_t, 1)ᵀ
//! for every point of a regular grid over the output, equal to PyTorch's
//! `F.affine_grid` (base grid times θᵀ), and its backward ∂L/∂θ.
//!
//! Both are computed in f64 and rounded once, so they agree with a float64
//! reference to the last bit or so; the work is tiny next to the sampler.

use engine::{pool, Tensor, Var};
use rayon::prelude::*;

// The base grid along one axis, shared with every transform.
use crate::grid::base_axis as base;

fn check_theta(name: &str, theta_shape: &[usize], size: [usize; 4]) {
    assert!(
        theta_shape == [size[0], 2, 3],
        "{name}: theta must be N×2×3 with N = size[0], got theta {theta_shape:?} and size {size:?}"
    );
}

/// Eq. (1) over a regular output grid: for θ (N×2×3) and the output size
/// `[n, c, h, w]`, the sampling grid N×H×W×2 (x first) with
/// `grid[n, i, j] = θ[n] · (x_j, y_i, 1)ᵀ`; equals `F.affine_grid(θ, size, align_corners)`.
///
/// # Panics
/// If θ is not `size[0]`×2×3.
pub fn affine_grid(theta: &Tensor, size: [usize; 4], align_corners: bool) -> Tensor {
    check_theta("affine_grid", theta.shape(), size);
    let [n, _, h, w] = size;
    let (xs, ys) = (base(w, align_corners), base(h, align_corners));
    // Every point of every item is written below.
    let mut out = pool::take_for_overwrite(n * h * w * 2);
    if !out.is_empty() {
        out.par_chunks_mut(h * w * 2)
            .zip(theta.data().par_chunks(6))
            .for_each(|(g, t)| {
                let t: Vec<f64> = t.iter().map(|&v| v as f64).collect();
                for (i, row) in g.chunks_exact_mut(w * 2).enumerate() {
                    for (j, xy) in row.chunks_exact_mut(2).enumerate() {
                        xy[0] = (xs[j] * t[0] + ys[i] * t[1] + t[2]) as f32;
                        xy[1] = (xs[j] * t[3] + ys[i] * t[4] + t[5]) as f32;
                    }
                }
            });
    }
    Tensor::from_vec(out, &[n, h, w, 2])
}

/// Backward of [`affine_grid`]: ∂L/∂θ (N×2×3) from ∂L/∂grid (N×H×W×2);
/// `∂L/∂θ[n, k, :] = Σ_ij ∂L/∂grid[n, i, j, k] · (x_j, y_i, 1)` (x_s is linear in θ).
///
/// # Panics
/// If `grad_grid` is not N×H×W×2 for `size = [n, c, h, w]`.
pub fn affine_grid_backward(grad_grid: &Tensor, size: [usize; 4], align_corners: bool) -> Tensor {
    let [n, _, h, w] = size;
    assert!(
        grad_grid.shape() == [n, h, w, 2],
        "affine_grid_backward: grad_grid must be {:?} for size {size:?}, got {:?}",
        [n, h, w, 2],
        grad_grid.shape()
    );
    let (xs, ys) = (base(w, align_corners), base(h, align_corners));
    let mut out = vec![0.0f32; n * 6];
    if h * w > 0 {
        out.par_chunks_mut(6)
            .zip(grad_grid.data().par_chunks(h * w * 2))
            .for_each(|(t, g)| {
                // Accumulate in f64: H·W terms of both signs.
                let mut acc = [0.0f64; 6];
                for (i, row) in g.chunks_exact(w * 2).enumerate() {
                    for (j, xy) in row.chunks_exact(2).enumerate() {
                        for k in 0..2 {
                            let gk = xy[k] as f64;
                            acc[3 * k] += gk * xs[j];
                            acc[3 * k + 1] += gk * ys[i];
                            acc[3 * k + 2] += gk;
                        }
                    }
                }
                for (o, a) in t.iter_mut().zip(acc) {
                    *o = a as f32;
                }
            });
    }
    Tensor::from_vec(out, &[n, 2, 3])
}

/// [`affine_grid`] recorded on the tape, with [`affine_grid_backward`] as its
/// backward (∂x_s/∂θ of eq. 1).
///
/// # Panics
/// As [`affine_grid`].
pub fn affine_grid_var(theta: &Var, size: [usize; 4], align_corners: bool) -> Var {
    let output = affine_grid(theta.value(), size, align_corners);
    Var::custom_op("affine_grid", &[theta], output, move |g, needs| {
        vec![needs[0].then(|| affine_grid_backward(g, size, align_corners))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_theta_puts_points_at_pixel_centres() {
        let theta = Tensor::from_vec(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[1, 2, 3]);
        let g = affine_grid(&theta, [1, 1, 1, 4], false);
        let xs: Vec<f32> = g.data().chunks(2).map(|p| p[0]).collect();
        assert_eq!(xs, vec![-0.75, -0.25, 0.25, 0.75]);
        let g = affine_grid(&theta, [1, 1, 3, 1], true);
        let ys: Vec<f32> = g.data().chunks(2).map(|p| p[1]).collect();
        assert_eq!(ys, vec![-1.0, 0.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "affine_grid: theta must be N×2×3")]
    fn wrong_theta_shape_panics_with_the_shapes() {
        affine_grid(&Tensor::zeros(&[2, 3, 2]), [2, 1, 4, 4], false);
    }
}
