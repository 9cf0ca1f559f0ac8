//! P: the digit scaled, then its four corners moved by Gaussian noise, and
//! the image warped by the projective map those corners define.

use super::geometry::Homography;
use engine::rng::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};

/// Parameters of P.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectiveParams {
    /// Smallest scale (0.75).
    pub scale_min: f32,
    /// Largest scale (1.0).
    pub scale_max: f32,
    /// Standard deviation of each corner's displacement, in pixels (5).
    /// Displacements that would fold the image (a non-convex quadrilateral) or
    /// view it nearly edge-on (a corner flatter than 160° or sharper than 20°)
    /// are drawn again.
    pub corner_std_px: f32,
}

impl Default for ProjectiveParams {
    fn default() -> Self {
        ProjectiveParams {
            scale_min: 0.75,
            scale_max: 1.0,
            corner_std_px: 5.0,
        }
    }
}

/// What was drawn for one P sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The scale about the image centre.
    pub scale: f32,
    /// Displacement of each corner (top-left, top-right, bottom-right,
    /// bottom-left) after scaling, in pixels.
    pub corner_offsets: [[f32; 2]; 4],
}

/// The image's corners (pixel-box corners, pixel centres at integers).
fn corners() -> [[f64; 2]; 4] {
    let e = crate::mnist::SIDE as f64 - 0.5;
    [[-0.5, -0.5], [e, -0.5], [e, e], [-0.5, e]]
}

/// Smallest sin of a corner's angle for a quadrilateral to count as a
/// reasonable view of a square: every corner between 20° and 160°. Flatter
/// corners come from near edge-on views that squash the digit to a sliver.
const MIN_SIN: f64 = 0.34;

/// Redraws of the corner noise before giving up on a sample's perspective.
const MAX_REDRAWS: usize = 100;

/// True if the quadrilateral (in order) is convex with every corner's angle
/// between 20° and 160°. A camera view of a square is always convex; a
/// non-convex quad makes the homography send the digit through infinity,
/// out of the picture (a blank image).
fn is_proper_view(q: &[[f64; 2]; 4]) -> bool {
    (0..4).all(|k| {
        let (a, b, c) = (q[k], q[(k + 1) % 4], q[(k + 2) % 4]);
        let (e1, e2) = ([b[0] - a[0], b[1] - a[1]], [c[0] - b[0], c[1] - b[1]]);
        let cross = e1[0] * e2[1] - e1[1] * e2[0];
        let norms = (e1[0].hypot(e1[1]) * e2[0].hypot(e2[1])).max(1e-12);
        cross / norms >= MIN_SIN
    })
}

impl ProjectiveParams {
    /// Draws one sample. Corner noise that would not be a reasonable view of a
    /// square (non-convex, or a corner outside 20°–160°) is
    /// drawn again from the same stream, so the sample stays deterministic;
    /// after 100 failed draws the corners stay unperturbed.
    pub fn draw(&self, rng: &mut Rng) -> Drawn {
        let scale = rng.gen_range(self.scale_min..=self.scale_max);
        let noise = Normal::new(0.0f32, self.corner_std_px).expect("corner_std_px must be >= 0");
        for _ in 0..MAX_REDRAWS {
            let mut corner_offsets = [[0.0; 2]; 4];
            for c in &mut corner_offsets {
                *c = [noise.sample(rng), noise.sample(rng)];
            }
            let d = Drawn {
                scale,
                corner_offsets,
            };
            if is_proper_view(&d.destination_corners()) {
                return d;
            }
        }
        Drawn {
            scale,
            corner_offsets: [[0.0; 2]; 4],
        }
    }
}

impl Drawn {
    /// Where each corner lands on the output.
    pub fn destination_corners(&self) -> [[f64; 2]; 4] {
        let c = (crate::mnist::SIDE as f64 - 1.0) / 2.0;
        let mut d = corners();
        for (p, o) in d.iter_mut().zip(&self.corner_offsets) {
            for k in 0..2 {
                p[k] = c + self.scale as f64 * (p[k] - c) + o[k] as f64;
            }
        }
        d
    }

    pub(crate) fn map(&self) -> Homography {
        // Output corners → source corners; fall back to the plain scale if the
        // noise made the quadrilateral degenerate (astronomically rare).
        Homography::from_points(&self.destination_corners(), &corners()).unwrap_or_else(|| {
            let plain = Drawn {
                scale: self.scale,
                corner_offsets: [[0.0; 2]; 4],
            };
            Homography::from_points(&plain.destination_corners(), &corners())
                .expect("a scaled square is never degenerate")
        })
    }
}
