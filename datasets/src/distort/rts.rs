//! RTS: rotation, scale and a random placement on a larger canvas.

use super::geometry::Affine2;
use engine::rng::Rng;
use rand::Rng as _;

/// Parameters of RTS.
#[derive(Clone, Debug, PartialEq)]
pub struct RtsParams {
    /// Largest rotation in degrees (the paper: 45).
    pub max_degrees: f32,
    /// Smallest scale (the paper: 0.7).
    pub scale_min: f32,
    /// Largest scale (the paper: 1.2).
    pub scale_max: f32,
    /// Side of the square canvas (the paper: 42).
    pub canvas: usize,
}

impl Default for RtsParams {
    fn default() -> Self {
        RtsParams {
            max_degrees: 45.0,
            scale_min: 0.7,
            scale_max: 1.2,
            canvas: 42,
        }
    }
}

/// What was drawn for one RTS sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The rotation in degrees, counter-clockwise on screen.
    pub angle_deg: f32,
    /// The scale.
    pub scale: f32,
    /// Where the digit's centre lands on the canvas (pixel units).
    pub centre: [f32; 2],
}

impl RtsParams {
    /// Draws one sample. The centre is uniform over the positions where the
    /// scaled 28×28 box stays on the canvas.
    pub fn draw(&self, rng: &mut Rng) -> Drawn {
        let angle_deg = rng.gen_range(-self.max_degrees..=self.max_degrees);
        let scale = rng.gen_range(self.scale_min..=self.scale_max);
        let half = crate::mnist::SIDE as f32 * scale / 2.0;
        let lo = half - 0.5;
        let hi = (self.canvas as f32 - half - 0.5).max(lo);
        let centre = [rng.gen_range(lo..=hi), rng.gen_range(lo..=hi)];
        Drawn {
            angle_deg,
            scale,
            centre,
        }
    }
}

impl Drawn {
    pub(crate) fn map(&self, src_side: usize) -> Affine2 {
        let c = (src_side as f32 - 1.0) / 2.0;
        Affine2::rotate_scale(self.angle_deg, self.scale, self.centre, [c, c])
    }
}
