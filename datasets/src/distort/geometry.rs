//! Pixel-space geometry shared by the warps: 2-d affine maps, homographies
//! from four point pairs, and the conversion of a pixel map to a normalised
//! sampling grid.

use super::PixelMap;

/// Fills `grid` (side_out×side_out×2, x first) with the normalised source
/// coordinates of every output pixel, for a source of side `side_in`
/// (PyTorch's align_corners=false convention: x_norm = (2x + 1)/W − 1).
pub(crate) fn fill_grid(map: &dyn PixelMap, side_out: usize, side_in: usize, grid: &mut [f32]) {
    let s = side_in as f32;
    for (i, row) in grid.chunks_exact_mut(side_out * 2).enumerate() {
        for (j, xy) in row.chunks_exact_mut(2).enumerate() {
            let (qx, qy) = map.source_of(j as f32, i as f32);
            xy[0] = (2.0 * qx + 1.0) / s - 1.0;
            xy[1] = (2.0 * qy + 1.0) / s - 1.0;
        }
    }
}

/// q = M·p + t in pixel units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Affine2 {
    pub m: [[f32; 2]; 2],
    pub t: [f32; 2],
}

impl Affine2 {
    /// Output pixel p shows source pixel `src_centre + R(−φ)(p − out_centre)/s`:
    /// the digit rotated by `angle_deg` (counter-clockwise on screen), scaled by
    /// `scale` and moved so that `src_centre` lands on `out_centre`.
    pub fn rotate_scale(
        angle_deg: f32,
        scale: f32,
        out_centre: [f32; 2],
        src_centre: [f32; 2],
    ) -> Self {
        let (s, c) = angle_deg.to_radians().sin_cos();
        let m = [[c / scale, -s / scale], [s / scale, c / scale]];
        let t = [
            src_centre[0] - m[0][0] * out_centre[0] - m[0][1] * out_centre[1],
            src_centre[1] - m[1][0] * out_centre[0] - m[1][1] * out_centre[1],
        ];
        Affine2 { m, t }
    }
}

impl PixelMap for Affine2 {
    fn source_of(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.m[0][0] * x + self.m[0][1] * y + self.t[0],
            self.m[1][0] * x + self.m[1][1] * y + self.t[1],
        )
    }
}

/// A plane projective map q ~ H·(p, 1), with h₃₃ = 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Homography {
    pub h: [f64; 8],
    /// Sign of the denominator w on the side of the horizon where the given
    /// points lie (with h₃₃ fixed to 1, w may be negative there).
    pub side: f64,
}

impl Homography {
    /// The homography sending each `from[k]` to `to[k]` (four pairs, no three
    /// collinear), from the 8×8 linear system of the direct linear transform.
    /// `None` if the system is singular.
    pub fn from_points(from: &[[f64; 2]; 4], to: &[[f64; 2]; 4]) -> Option<Self> {
        let mut a = [[0.0f64; 9]; 8];
        for k in 0..4 {
            let ([x, y], [u, v]) = (from[k], to[k]);
            a[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let h = solve8(a)?;
        let w = |p: [f64; 2]| h[6] * p[0] + h[7] * p[1] + 1.0;
        let side = w(from[0]).signum();
        // All four points must lie on one side of the horizon.
        if from.iter().any(|&p| w(p) * side <= 0.0) {
            return None;
        }
        Some(Homography { h, side })
    }
}

impl PixelMap for Homography {
    fn source_of(&self, x: f32, y: f32) -> (f32, f32) {
        let (x, y) = (x as f64, y as f64);
        let h = &self.h;
        let w = h[6] * x + h[7] * y + 1.0;
        // Beyond the horizon (w of the other sign than at the corners) lies no
        // point of the source plane: send it far outside, into zero padding.
        if w * self.side <= 1e-9 {
            return (-1e6, -1e6);
        }
        (
            ((h[0] * x + h[1] * y + h[2]) / w) as f32,
            ((h[3] * x + h[4] * y + h[5]) / w) as f32,
        )
    }
}

/// Gaussian elimination with partial pivoting on an 8×9 augmented matrix.
fn solve8(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let piv = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        let pivot = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot[col];
                for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut x = [0.0; 8];
    for (i, (xi, row)) in x.iter_mut().zip(&a).enumerate() {
        *xi = row[8] / row[i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homography_maps_the_four_points() {
        let from = [[0.0, 0.0], [27.0, 0.0], [27.0, 27.0], [0.0, 27.0]];
        let to = [[1.0, 2.0], [25.0, -1.0], [29.0, 30.0], [-2.0, 26.0]];
        let h = Homography::from_points(&from, &to).unwrap();
        for k in 0..4 {
            let (u, v) = h.source_of(from[k][0] as f32, from[k][1] as f32);
            assert!((u - to[k][0] as f32).abs() < 1e-4 && (v - to[k][1] as f32).abs() < 1e-4);
        }
        let collinear = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::from_points(&collinear, &to).is_none());
    }

    #[test]
    fn rotate_scale_sends_centres_and_rotates() {
        let a = Affine2::rotate_scale(90.0, 2.0, [20.0, 20.0], [13.5, 13.5]);
        assert_eq!(a.source_of(20.0, 20.0), (13.5, 13.5));
        // One pixel right of the output centre is half a pixel from the
        // source centre, rotated by −90° on screen (y down): straight up... or down.
        let (x, y) = a.source_of(21.0, 20.0);
        assert!((x - 13.5).abs() < 1e-6 && ((y - 13.5).abs() - 0.5).abs() < 1e-6);
    }
}
