//! The pointwise form of a transform: where one output point samples the
//! input, and that point's contribution to ∂L/∂θ. A transform that provides
//! one (see [`crate::Transform::point_map`]) runs on the fused sampler, which
//! never materialises the N×H'×W'×2 grid.
//!
//! This module depends on nothing else in the crate: the transforms implement
//! it, the fused sampler (`sampler::kernels::fused`) consumes it, and neither imports
//! the other.
//!
//! Contract (checked for every transform by `transform_checks!`, see
//! `stn::testing`): `source` equals [`crate::Transform::grid`] at every point
//! to f32 rounding, and `add_dtheta` is the chain rule of eq. (7) through it:
//! `acc += ∂(x_s, y_s)/∂θ ᵀ · (gx, gy)`.

/// A transform's source map, per point, in f64.
///
/// All methods see one batch item's θ after [`PointMap::prepare`] (by
/// default θ itself, widened to f64), so per-item work (cos φ, a matrix)
/// is done once per item, not once per pixel.
pub trait PointMap: Send + Sync {
    /// P, the number of parameters per batch item.
    fn num_params(&self) -> usize;

    /// Per-item precomputation from θ (P values): whatever `source` and
    /// `add_dtheta` need.
    fn prepare(&self, theta: &[f64]) -> Vec<f64> {
        theta.to_vec()
    }

    /// The source point (x_s, y_s) of the normalised output point (x, y).
    fn source(&self, t: &[f64], x: f64, y: f64) -> (f64, f64);

    /// Length of the accumulator `add_dtheta` adds into (default P; a map
    /// may accumulate something smaller or larger and convert in `finish`).
    fn acc_len(&self) -> usize {
        self.num_params()
    }

    /// Adds the ∂L/∂θ contribution of output point (x, y), whose source point
    /// receives ∂L/∂(x_s, y_s) = (gx, gy), into `acc`. Never called with
    /// gx = gy = 0.
    fn add_dtheta(&self, t: &[f64], x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64]);

    /// Converts the accumulator into ∂L/∂θ (P values). Default: a cast.
    fn finish(&self, _t: &[f64], acc: &[f64], dtheta: &mut [f32]) {
        for (o, a) in dtheta.iter_mut().zip(acc) {
            *o = *a as f32;
        }
    }

    /// `source` over a run of points `xs` of one output row `y`, rounded
    /// once to f32. Override only to vectorise; the values must not change.
    fn source_row(&self, t: &[f64], xs: &[f64], y: f64, sx: &mut [f32], sy: &mut [f32]) {
        for ((&x, ox), oy) in xs.iter().zip(sx).zip(sy) {
            let (a, c) = self.source(t, x, y);
            (*ox, *oy) = (a as f32, c as f32);
        }
    }

    /// `add_dtheta` over a run of points of one output row, in order
    /// (skipping zero gradients). Override for a faster fixed-order sum.
    fn add_dtheta_row(
        &self,
        t: &[f64],
        xs: &[f64],
        y: f64,
        gx: &[f32],
        gy: &[f32],
        acc: &mut [f64],
    ) {
        for ((&x, &a), &c) in xs.iter().zip(gx).zip(gy) {
            if a != 0.0 || c != 0.0 {
                self.add_dtheta(t, x, y, a as f64, c as f64, acc);
            }
        }
    }
}

/// Eq. (1) pointwise: θ = A_θ row-major (6 values), x_s = A (x_t, y_t, 1)ᵀ,
/// in `affine_grid`'s expression so the rounded points agree to the bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct AffineMap;

impl AffineMap {
    #[inline(always)]
    fn at(t: &[f64], x: f64, y: f64) -> (f64, f64) {
        (x * t[0] + y * t[1] + t[2], x * t[3] + y * t[4] + t[5])
    }

    /// Σ over a row run into the 6 entries of ∂L/∂A: Σ g·x and Σ g in f64
    /// over 4 fixed lanes (a fixed order, so the bits do not depend on
    /// threads), then A's y column as y·Σ g.
    #[inline(always)]
    fn row_sums(xs: &[f64], y: f64, gx: &[f32], gy: &[f32], acc: &mut [f64]) {
        let m = xs.len();
        // Lanes of Σ gx·x, Σ gx, Σ gy·x, Σ gy.
        let mut l = [[0.0f64; 4]; 4];
        let mut add = |lane: usize, x: f64, a: f32, c: f32| {
            let (a, c) = (a as f64, c as f64);
            l[0][lane] += a * x;
            l[1][lane] += a;
            l[2][lane] += c * x;
            l[3][lane] += c;
        };
        let whole = m - m % 4;
        for ((x4, a4), c4) in xs[..whole]
            .chunks_exact(4)
            .zip(gx[..whole].chunks_exact(4))
            .zip(gy[..whole].chunks_exact(4))
        {
            for lane in 0..4 {
                add(lane, x4[lane], a4[lane], c4[lane]);
            }
        }
        for j in whole..m {
            add(j - whole, xs[j], gx[j], gy[j]);
        }
        let s = l.map(|v| (v[0] + v[1]) + (v[2] + v[3]));
        acc[0] += s[0];
        acc[1] += s[1] * y;
        acc[2] += s[1];
        acc[3] += s[2];
        acc[4] += s[3] * y;
        acc[5] += s[3];
    }

    /// ∂L/∂A of one point, in `affine_grid_backward`'s order.
    #[inline(always)]
    fn point_sums(x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64]) {
        for (r, gk) in [gx, gy].into_iter().enumerate() {
            acc[3 * r] += gk * x;
            acc[3 * r + 1] += gk * y;
            acc[3 * r + 2] += gk;
        }
    }
}

impl PointMap for AffineMap {
    fn num_params(&self) -> usize {
        6
    }

    fn source(&self, t: &[f64], x: f64, y: f64) -> (f64, f64) {
        Self::at(t, x, y)
    }

    fn add_dtheta(&self, _t: &[f64], x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64]) {
        Self::point_sums(x, y, gx, gy, acc);
    }

    fn source_row(&self, t: &[f64], xs: &[f64], y: f64, sx: &mut [f32], sy: &mut [f32]) {
        for ((&x, ox), oy) in xs.iter().zip(sx).zip(sy) {
            let (a, c) = Self::at(t, x, y);
            (*ox, *oy) = (a as f32, c as f32);
        }
    }

    fn add_dtheta_row(
        &self,
        _t: &[f64],
        xs: &[f64],
        y: f64,
        gx: &[f32],
        gy: &[f32],
        acc: &mut [f64],
    ) {
        Self::row_sums(xs, y, gx, gy, acc);
    }
}

/// The pointwise map of any member of the affine family: θ (P values) → A_θ
/// (2×3) and its Jacobian ∂A/∂θ, once per item; per point it runs
/// [`AffineMap`] on A and accumulates ∂L/∂A, chained to ∂L/∂θ at the end.
/// `to_affine(θ, out)` writes A_θ row-major into `out[..6]` and
/// ∂A_i/∂θ_k into `out[6 + i·P + k]`.
#[derive(Clone, Copy, Debug)]
pub struct ViaAffine {
    /// P.
    pub num_params: usize,
    /// θ → (A_θ, ∂A/∂θ), see the type's docs.
    pub to_affine: fn(theta: &[f64], out: &mut [f64]),
}

impl PointMap for ViaAffine {
    fn num_params(&self) -> usize {
        self.num_params
    }

    fn prepare(&self, theta: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; 6 + 6 * self.num_params];
        (self.to_affine)(theta, &mut out);
        out
    }

    fn source(&self, t: &[f64], x: f64, y: f64) -> (f64, f64) {
        AffineMap::at(t, x, y)
    }

    fn acc_len(&self) -> usize {
        6
    }

    fn add_dtheta(&self, _t: &[f64], x: f64, y: f64, gx: f64, gy: f64, acc: &mut [f64]) {
        AffineMap::point_sums(x, y, gx, gy, acc);
    }

    fn finish(&self, t: &[f64], acc: &[f64], dtheta: &mut [f32]) {
        let p = self.num_params;
        for (k, o) in dtheta.iter_mut().enumerate() {
            let s: f64 = (0..6).map(|i| acc[i] * t[6 + i * p + k]).sum();
            *o = s as f32;
        }
    }

    fn source_row(&self, t: &[f64], xs: &[f64], y: f64, sx: &mut [f32], sy: &mut [f32]) {
        AffineMap.source_row(t, xs, y, sx, sy);
    }

    fn add_dtheta_row(
        &self,
        _t: &[f64],
        xs: &[f64],
        y: f64,
        gx: &[f32],
        gy: &[f32],
        acc: &mut [f64],
    ) {
        AffineMap::row_sums(xs, y, gx, gy, acc);
    }
}
