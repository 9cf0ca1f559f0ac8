//! TC: the digit at a random position on a large canvas, plus distractors:
//! small random crops of other random training digits at random positions,
//! added and clipped to [0, 1].

use crate::mnist::{Mnist, SIDE};
use engine::rng::Rng;
use rand::Rng as _;

/// Parameters of TC.
#[derive(Clone, Debug, PartialEq)]
pub struct ClutterParams {
    /// Side of the square canvas (60).
    pub canvas: usize,
    /// Number of distractors (6).
    pub distractors: usize,
    /// Side of each square distractor crop (6).
    pub crop: usize,
}

impl Default for ClutterParams {
    fn default() -> Self {
        ClutterParams {
            canvas: 60,
            distractors: 6,
            crop: 6,
        }
    }
}

/// One distractor: which training digit, where the crop is taken, where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distractor {
    /// Index of the training digit it is cut from.
    pub source: usize,
    /// Top-left corner (x, y) of the crop in that digit.
    pub from: [usize; 2],
    /// Top-left corner (x, y) on the canvas.
    pub to: [usize; 2],
}

/// What was drawn for one TC sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drawn {
    /// Top-left corner (x, y) of the digit on the canvas.
    pub position: [usize; 2],
    /// Side of the distractor crops.
    pub crop: usize,
    /// The distractors.
    pub distractors: Vec<Distractor>,
}

impl ClutterParams {
    /// Draws one sample; `pool` is the number of training digits to cut from.
    ///
    /// # Panics
    /// If the canvas is smaller than a digit or the crop larger than one.
    pub fn draw(&self, rng: &mut Rng, pool: usize) -> Drawn {
        assert!(
            self.canvas >= SIDE && self.crop <= SIDE && self.crop > 0,
            "ClutterParams: canvas {} must be >= {SIDE} and crop {} in 1..={SIDE}",
            self.canvas,
            self.crop
        );
        let room = self.canvas - SIDE;
        let position = [rng.gen_range(0..=room), rng.gen_range(0..=room)];
        let distractors = (0..if pool > 0 { self.distractors } else { 0 })
            .map(|_| Distractor {
                source: rng.gen_range(0..pool),
                from: [
                    rng.gen_range(0..=SIDE - self.crop),
                    rng.gen_range(0..=SIDE - self.crop),
                ],
                to: [
                    rng.gen_range(0..=self.canvas - self.crop),
                    rng.gen_range(0..=self.canvas - self.crop),
                ],
            })
            .collect();
        Drawn {
            position,
            crop: self.crop,
            distractors,
        }
    }
}

impl Drawn {
    /// Renders the sample into `out` (canvas×canvas): pixel placement only,
    /// no resampling.
    pub fn render(&self, digit: &[u8], pool: &Mnist, canvas: usize, out: &mut [f32]) {
        out.fill(0.0);
        let s = SIDE;
        let paste = |out: &mut [f32], src: &[u8], from: [usize; 2], to: [usize; 2], w: usize| {
            for r in 0..w {
                for c in 0..w {
                    let v = src[(from[1] + r) * s + from[0] + c] as f32 / 255.0;
                    let o = &mut out[(to[1] + r) * canvas + to[0] + c];
                    *o = (*o + v).min(1.0);
                }
            }
        };
        for d in &self.distractors {
            paste(out, pool.image(d.source), d.from, d.to, self.crop);
        }
        paste(out, digit, [0, 0], self.position, s);
    }
}
