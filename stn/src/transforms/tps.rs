//! The thin plate spline (§3.2; the paper's experiments use 16 control points):
//! a smooth warp that moves K×K control points to target positions and
//! bends as little as possible in between.
//!
//! Control points c_k lie on a regular K×K grid over the output's [−1, 1]²,
//! k = i·K + j at (x, y) = (linspace(−1, 1, K)[j], linspace(−1, 1, K)[i]).
//! θ (2·K² values per item) holds their offsets, interleaved:
//! θ = (dx_0, dy_0, dx_1, dy_1, ...), so control point k samples the input at
//! c_k + (dx_k, dy_k). Identity: all zeros.
//!
//! Each coordinate of the warp is f(p) = a_0 + a_1 x + a_2 y + Σ_k w_k U(|p − c_k|)
//! with the kernel U(r) = r² log r² (U(0) = 0). Interpolating the targets v_k
//! (f(c_k) = v_k) with Σ_k w_k = Σ_k w_k x_k = Σ_k w_k y_k = 0 is the linear system
//!
//! [[K, P], [Pᵀ, 0]] · [w; a] = [v; 0],  K_ij = U(|c_i − c_j|),  P_i = (1, x_i, y_i),
//!
//! solved once, when the transform is built (Gaussian elimination with partial
//! pivoting, in f64). So θ → grid is a fixed linear map: with R the
//! (H'W')×(K²+3) matrix of rows (U(|p − c_1|), ..., U(|p − c_K²|), 1, x, y) and X
//! the first K² columns of the system's inverse, grid = R·X·(c + d). A TPS
//! reproduces affine maps exactly, so R·X·c is the base grid itself and we
//! compute grid = base + W·d with W = R·X ((H'W')×K², cached per output size);
//! identity θ gives exactly the base grid.

use super::{base_axis, base_grid, check_theta, Transform};
use engine::{Tensor, Var};
use std::collections::HashMap;
use std::sync::Mutex;

/// U(r) = r² log r² from the squared distance r², with U(0) = 0.
fn kernel(r2: f64) -> f64 {
    if r2 == 0.0 {
        0.0
    } else {
        r2 * r2.ln()
    }
}

/// Solves A·X = B in place (A m×m, B m×k, row-major) by Gaussian elimination
/// with partial pivoting; B is overwritten with X.
///
/// # Panics
/// If A is singular (a pivot below 1e-12 times the largest entry).
fn solve(mut a: Vec<f64>, b: &mut [f64], m: usize, k: usize) {
    let big = a.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    for col in 0..m {
        // Pivot: the largest entry of this column on or below the diagonal.
        let piv = (col..m)
            .max_by(|&i, &j| a[i * m + col].abs().total_cmp(&a[j * m + col].abs()))
            .expect("non-empty range");
        assert!(
            a[piv * m + col].abs() > 1e-12 * big,
            "tps: the control-point system is singular"
        );
        if piv != col {
            for j in 0..m {
                a.swap(piv * m + j, col * m + j);
            }
            for j in 0..k {
                b.swap(piv * k + j, col * k + j);
            }
        }
        for r in 0..m {
            if r == col {
                continue;
            }
            let f = a[r * m + col] / a[col * m + col];
            if f == 0.0 {
                continue;
            }
            for j in col..m {
                a[r * m + j] -= f * a[col * m + j];
            }
            for j in 0..k {
                b[r * k + j] -= f * b[col * k + j];
            }
        }
    }
    for r in 0..m {
        let d = a[r * m + r];
        for j in 0..k {
            b[r * k + j] /= d;
        }
    }
}

/// The thin plate spline with K×K control points (the paper's: K = 4).
///
/// * θ layout (P = 2·K²): offsets of the control points, interleaved,
///   θ = (dx_0, dy_0, dx_1, dy_1, …); control point k = i·K + j sits at
///   c_k = (linspace(−1, 1, K)[j], linspace(−1, 1, K)[i]) on the output.
/// * Formula: each coordinate is f(p) = a_0 + a_1 x + a_2 y + Σ_k w_k U(|p − c_k|),
///   U(r) = r² log r², interpolating f(c_k) = c_k + d_k with the least
///   bending; θ → grid is the fixed linear map grid = base + W·θ (W cached per
///   output size, see [`ThinPlateSpline::weights`]).
/// * Identity: all zeros.
///
/// No point map: it samples through the grid.
#[derive(Debug)]
pub struct ThinPlateSpline {
    k: usize,
    /// Control points (x, y), k = i·K + j.
    points: Vec<[f64; 2]>,
    /// X: the first K² columns of [[K, P], [Pᵀ, 0]]⁻¹, (K²+3)×K² row-major.
    solution: Vec<f64>,
    /// W = R·X per (output size, align_corners).
    cache: Mutex<HashMap<([usize; 2], bool), Tensor>>,
}

impl Default for ThinPlateSpline {
    /// The paper's 16-point TPS (K = 4).
    fn default() -> Self {
        ThinPlateSpline::new(4)
    }
}

impl ThinPlateSpline {
    /// A TPS with `k`×`k` control points on a regular grid over [−1, 1]²;
    /// solves the interpolation system once.
    ///
    /// # Panics
    /// If `k < 2` (the affine part needs at least 3 non-collinear points).
    pub fn new(k: usize) -> ThinPlateSpline {
        assert!(k >= 2, "tps: need at least 2×2 control points, got k = {k}");
        let lin = base_axis(k, true);
        let points: Vec<[f64; 2]> = (0..k * k).map(|i| [lin[i % k], lin[i / k]]).collect();
        let kk = k * k;
        let m = kk + 3;
        let mut sys = vec![0.0; m * m];
        for (i, p) in points.iter().enumerate() {
            for (j, q) in points.iter().enumerate() {
                sys[i * m + j] = kernel((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2));
            }
            for (c, v) in [1.0, p[0], p[1]].into_iter().enumerate() {
                sys[i * m + kk + c] = v; // P
                sys[(kk + c) * m + i] = v; // Pᵀ
            }
        }
        // Right-hand sides [I; 0]: the solution is X, the map from targets to [w; a].
        let mut x = vec![0.0; m * kk];
        for i in 0..kk {
            x[i * kk + i] = 1.0;
        }
        solve(sys, &mut x, m, kk);
        ThinPlateSpline {
            k,
            points,
            solution: x,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// K, the control points per side.
    pub fn grid_size(&self) -> usize {
        self.k
    }

    /// The control points c_k (x, y), k = i·K + j, in normalised output coordinates.
    pub fn control_points(&self) -> Vec<[f32; 2]> {
        self.points
            .iter()
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect()
    }

    /// W = R·X ((H'W')×K²): the grid's offset is W·d for control-point offsets
    /// d (K²×2). Computed in f64 on first use per size, then cached.
    pub fn weights(&self, out_hw: [usize; 2], align_corners: bool) -> Tensor {
        let key = (out_hw, align_corners);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = cache.get(&key) {
            return w.clone();
        }
        let kk = self.k * self.k;
        let [h, w] = out_hw;
        let (xs, ys) = (base_axis(w, align_corners), base_axis(h, align_corners));
        let mut out = Vec::with_capacity(h * w * kk);
        let mut row = vec![0.0f64; kk + 3];
        for y in &ys {
            for x in &xs {
                for (r, c) in row.iter_mut().zip(&self.points) {
                    *r = kernel((x - c[0]).powi(2) + (y - c[1]).powi(2));
                }
                row[kk..].copy_from_slice(&[1.0, *x, *y]);
                for j in 0..kk {
                    let v: f64 = (0..kk + 3)
                        .map(|i| row[i] * self.solution[i * kk + j])
                        .sum();
                    out.push(v as f32);
                }
            }
        }
        let t = Tensor::from_vec(out, &[h * w, kk]);
        cache.insert(key, t.clone());
        t
    }
}

impl Transform for ThinPlateSpline {
    fn name(&self) -> &'static str {
        "tps"
    }

    fn num_params(&self) -> usize {
        2 * self.k * self.k
    }

    fn identity(&self) -> Vec<f32> {
        vec![0.0; self.num_params()]
    }

    fn grid(&self, theta: &Var, out_hw: [usize; 2], align_corners: bool) -> Var {
        let n = check_theta(self.name(), theta, self.num_params());
        let (kk, hw) = (self.k * self.k, out_hw[0] * out_hw[1]);
        let w = Var::constant(self.weights(out_hw, align_corners));
        // Offsets of all items side by side: D[k, 2n + c] = θ[n, 2k + c].
        let d = theta
            .reshape(&[n, kk, 2])
            .permute(&[1, 0, 2])
            .reshape(&[kk, 2 * n]);
        let offset = w.matmul(&d).reshape(&[hw, n, 2]).permute(&[1, 0, 2]);
        let base = Var::constant(base_grid(out_hw, align_corners));
        offset.add(&base).reshape(&[n, out_hw[0], out_hw[1], 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_points_move_exactly_to_their_targets() {
        // With align_corners and a K×K output, the output grid *is* the control points.
        let t = ThinPlateSpline::new(4);
        let theta: Vec<f32> = (0..32)
            .map(|i| 0.01 * ((i * 7 % 11) as f32 - 5.0))
            .collect();
        let g = t.grid(
            &Var::constant(Tensor::from_vec(theta.clone(), &[1, 32])),
            [4, 4],
            true,
        );
        for (k, c) in t.control_points().iter().enumerate() {
            for a in 0..2 {
                let got = g.value().data()[2 * k + a];
                assert!((got - (c[a] + theta[2 * k + a])).abs() < 1e-6, "point {k}");
            }
        }
    }

    #[test]
    fn offsets_that_are_affine_give_the_affine_grid() {
        // A TPS reproduces affine maps: offsets d_k = (A − I)·(c_k, 1).
        let t = ThinPlateSpline::new(4);
        let a = [1.1f32, -0.2, 0.05, 0.15, 0.9, -0.1];
        let theta: Vec<f32> = t
            .control_points()
            .iter()
            .flat_map(|c| {
                [
                    a[0] * c[0] + a[1] * c[1] + a[2] - c[0],
                    a[3] * c[0] + a[4] * c[1] + a[5] - c[1],
                ]
            })
            .collect();
        let g = t.grid(
            &Var::constant(Tensor::from_vec(theta, &[1, 32])),
            [5, 7],
            false,
        );
        let want = crate::affine_grid(
            &Tensor::from_vec(a.to_vec(), &[1, 2, 3]),
            [1, 1, 5, 7],
            false,
        );
        assert!(g.value().max_abs_diff(&want) < 1e-5);
    }
}
