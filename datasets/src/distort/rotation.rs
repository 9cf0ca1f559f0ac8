//! R: the digit rotated by an angle drawn uniformly from [−max, max].

use super::geometry::Affine2;
use engine::rng::Rng;
use rand::Rng as _;

/// Parameters of R.
#[derive(Clone, Debug, PartialEq)]
pub struct RotationParams {
    /// Largest rotation in degrees (the paper: 90).
    pub max_degrees: f32,
}

impl Default for RotationParams {
    fn default() -> Self {
        RotationParams { max_degrees: 90.0 }
    }
}

/// What was drawn for one R sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The rotation in degrees, counter-clockwise on screen.
    pub angle_deg: f32,
}

impl RotationParams {
    /// Draws one sample's rotation.
    pub fn draw(&self, rng: &mut Rng) -> Drawn {
        Drawn {
            angle_deg: rng.gen_range(-self.max_degrees..=self.max_degrees),
        }
    }
}

impl Drawn {
    pub(crate) fn map(&self) -> Affine2 {
        let c = (crate::mnist::SIDE as f32 - 1.0) / 2.0;
        Affine2::rotate_scale(self.angle_deg, 1.0, [c, c], [c, c])
    }
}
