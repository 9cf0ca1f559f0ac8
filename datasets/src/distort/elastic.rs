//! E: the digit scaled, then warped elastically by a thin plate spline whose
//! K×K control points (a regular grid) move by Gaussian noise.
//!
//! The warp is the stn crate's [`stn::transforms::ThinPlateSpline`]: its
//! control points sit on a regular K×K grid over the output, and θ gives the
//! offset from each control point to the input point it samples. Here that
//! point is the control point scaled by 1/s about the centre (the digit
//! shrinks by s) plus the noise, so the data set and the model share one TPS
//! implementation.

use engine::rng::Rng;
use engine::Tensor;
use rand::Rng as _;
use rand_distr::{Distribution, Normal};
use stn::transforms::ThinPlateSpline;

/// Parameters of E.
#[derive(Clone, Debug, PartialEq)]
pub struct ElasticParams {
    /// Smallest scale (0.75).
    pub scale_min: f32,
    /// Largest scale (1.0).
    pub scale_max: f32,
    /// Control points per side (4, so 16 points as in the paper).
    pub control: usize,
    /// Standard deviation of each control point's displacement, in pixels (1.5).
    pub std_px: f32,
}

impl Default for ElasticParams {
    fn default() -> Self {
        ElasticParams {
            scale_min: 0.75,
            scale_max: 1.0,
            control: 4,
            std_px: 1.5,
        }
    }
}

/// What was drawn for one E sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The scale about the image centre.
    pub scale: f32,
    /// Control points per side.
    pub control: usize,
    /// Displacement (x, y) of each control point in pixels, row-major.
    pub offsets: Vec<[f32; 2]>,
}

impl ElasticParams {
    /// Draws one sample.
    pub fn draw(&self, rng: &mut Rng) -> Drawn {
        let scale = rng.gen_range(self.scale_min..=self.scale_max);
        let noise = Normal::new(0.0f32, self.std_px).expect("std_px must be >= 0");
        let offsets = (0..self.control * self.control)
            .map(|_| [noise.sample(rng), noise.sample(rng)])
            .collect();
        Drawn {
            scale,
            control: self.control,
            offsets,
        }
    }
}

impl Drawn {
    /// θ of the stn TPS for this sample (1×2K², offsets (dx, dy) interleaved).
    pub fn theta(&self, tps: &ThinPlateSpline) -> Tensor {
        let px_to_norm = 2.0 / crate::mnist::SIDE as f32;
        let pts = tps.control_points();
        let mut theta = Vec::with_capacity(pts.len() * 2);
        for (p, o) in pts.iter().zip(&self.offsets) {
            let shrink = 1.0 / self.scale - 1.0;
            theta.push(p[0] * shrink + o[0] * px_to_norm);
            theta.push(p[1] * shrink + o[1] * px_to_norm);
        }
        Tensor::from_vec(theta, &[1, pts.len() * 2])
    }
}
