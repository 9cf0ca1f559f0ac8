//! The paper's distorted MNIST variants (appendix A; see `../shared/PAPER.md`).
//!
//! | variant | canvas | distortion                                                      |
//! |---------|--------|-----------------------------------------------------------------|
//! | R       | 28×28  | rotation uniform in [−90°, 90°]                                 |
//! | RTS     | 42×42  | rotation ±45°, scale 0.7–1.2, random placement                  |
//! | P       | 28×28  | scale 0.75–1.0, corners moved by N(0, 5 px), projective warp    |
//! | E       | 28×28  | scale 0.75–1.0, 4×4 TPS control points moved by N(0, 1.5 px)    |
//! | TC      | 60×60  | digit at a random position + 6 random 6×6 crops of other digits |
//! | addition | 2×42×42 | two digits, one per channel, each distorted as RTS; label = sum |
//!
//! Every parameter lives in one documented struct per variant ([`rotation`],
//! [`rts`], [`projective`], [`elastic`], [`clutter`]). The warps map each
//! *output* pixel to a *source* pixel and sample with the stn crate's bilinear
//! sampler (`stn::grid_sample`, zero padding), so the project has one bilinear
//! implementation.
//!
//! Determinism: sample `i` of epoch `e` is drawn from the stream
//! `derive(seed, [variant, e, i])`, so any thread count and any batch order
//! give the same images, and a resumed run sees the same batches. Test sets
//! use the fixed epoch [`TEST_EPOCH`] with the caller's seed.

pub mod addition;
pub mod clutter;
pub mod elastic;
mod geometry;
pub mod projective;
pub mod rotation;
pub mod rts;

pub use clutter::ClutterParams;
pub use elastic::ElasticParams;
pub use projective::ProjectiveParams;
pub use rotation::RotationParams;
pub use rts::RtsParams;

use crate::mnist::{Mnist, SIDE};
use engine::rng::{derive, Rng};
use engine::{pool, Tensor};
use rayon::prelude::*;
use std::fmt;
use std::sync::OnceLock;
use stn::transforms::{ThinPlateSpline, Transform};

/// The epoch key under which test sets are drawn (never a training epoch).
pub const TEST_EPOCH: u64 = u64::MAX;

/// Which data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Plain MNIST, 28×28.
    Mnist,
    /// Rotated.
    R,
    /// Rotated, translated and scaled on a 42×42 canvas.
    Rts,
    /// Projective.
    P,
    /// Elastic (thin plate spline).
    E,
    /// Translated and cluttered on a 60×60 canvas.
    Tc,
    /// MNIST addition (appendix A.1): two RTS digits, one per channel, on
    /// 42×42; the label is their sum (see [`addition`]).
    Addition,
}

/// An unknown data-set name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown dataset '{}': expected one of mnist, r, rts, p, e, tc, addition",
            self.0
        )
    }
}

impl std::error::Error for UnknownVariant {}

impl Variant {
    /// Every variant, in the order of the paper's table, then addition.
    pub const ALL: [Variant; 7] = [
        Variant::Mnist,
        Variant::R,
        Variant::Rts,
        Variant::P,
        Variant::E,
        Variant::Tc,
        Variant::Addition,
    ];

    /// Parses a name: mnist, r, rts, p, e, tc, addition (case-insensitive).
    pub fn parse(name: &str) -> Result<Variant, UnknownVariant> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "mnist" | "plain" => Variant::Mnist,
            "r" => Variant::R,
            "rts" => Variant::Rts,
            "p" => Variant::P,
            "e" => Variant::E,
            "tc" => Variant::Tc,
            "addition" | "add" => Variant::Addition,
            _ => return Err(UnknownVariant(name.to_string())),
        })
    }

    /// The short name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mnist => "mnist",
            Variant::R => "r",
            Variant::Rts => "rts",
            Variant::P => "p",
            Variant::E => "e",
            Variant::Tc => "tc",
            Variant::Addition => "addition",
        }
    }

    /// Side of the square images of this variant.
    pub fn side(self, params: &Distortions) -> usize {
        match self {
            Variant::Rts | Variant::Addition => params.rts.canvas,
            Variant::Tc => params.tc.canvas,
            _ => SIDE,
        }
    }

    /// Channels of the images of this variant: 2 for addition, else 1.
    pub fn channels(self) -> usize {
        match self {
            Variant::Addition => addition::CHANNELS,
            _ => 1,
        }
    }

    /// Number of classes: 19 for addition (sums 0 to 18), else 10.
    pub fn classes(self) -> usize {
        match self {
            Variant::Addition => addition::CLASSES,
            _ => crate::mnist::CLASSES,
        }
    }

    fn key(self) -> u64 {
        self as u64 + 1
    }
}

/// The parameters of every variant (defaults: the paper's set-up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distortions {
    /// R.
    pub r: RotationParams,
    /// RTS.
    pub rts: RtsParams,
    /// P.
    pub p: ProjectiveParams,
    /// E.
    pub e: ElasticParams,
    /// TC.
    pub tc: ClutterParams,
}

/// The random values drawn for one sample (for tests, previews and logs).
#[derive(Clone, Debug, PartialEq)]
pub enum Drawn {
    /// Plain MNIST: nothing drawn.
    None,
    /// R.
    R(rotation::Drawn),
    /// RTS.
    Rts(rts::Drawn),
    /// P.
    P(projective::Drawn),
    /// E.
    E(elastic::Drawn),
    /// TC.
    Tc(clutter::Drawn),
    /// Addition: the partner digit and both distortions.
    Addition(addition::Drawn),
}

/// A batch of generated samples.
#[derive(Clone, Debug)]
pub struct Batch {
    /// N×C×S×S images in [0, 1] (C = [`Variant::channels`]).
    pub images: Tensor,
    /// The N labels.
    pub labels: Vec<u8>,
    /// What was drawn for each sample.
    pub drawn: Vec<Drawn>,
}

/// A distorted view of an MNIST split.
pub struct DistortedMnist<'a> {
    variant: Variant,
    params: Distortions,
    /// The digits to distort.
    pub source: &'a Mnist,
    /// Where TC takes its distractors from (the training split).
    pub distractors: &'a Mnist,
    /// The seed of every draw.
    pub seed: u64,
    /// The TPS of E, built on first use (its linear system is solved once).
    tps: OnceLock<ThinPlateSpline>,
}

/// Output pixel → source pixel, both in pixel units with pixel centres at
/// integers (x right, y down).
pub(crate) trait PixelMap: Sync {
    fn source_of(&self, x: f32, y: f32) -> (f32, f32);
}

/// Fills one sample's normalised sampling grid (side×side×2, x first).
type GridFill = Box<dyn Fn(&mut [f32]) + Send + Sync>;

/// The grid filler of a pixel map, for an output of side `side`.
fn pixel_grid<M: PixelMap + Send + 'static>(map: M, side: usize) -> Option<GridFill> {
    Some(Box::new(move |g: &mut [f32]| {
        geometry::fill_grid(&map, side, SIDE, g)
    }))
}

impl<'a> DistortedMnist<'a> {
    /// A view with the paper's parameters.
    pub fn new(variant: Variant, source: &'a Mnist, distractors: &'a Mnist, seed: u64) -> Self {
        DistortedMnist {
            variant,
            params: Distortions::default(),
            source,
            distractors,
            seed,
            tps: OnceLock::new(),
        }
    }

    /// A view with the given parameters.
    pub fn with_params(mut self, params: Distortions) -> Self {
        self.params = params;
        self.tps = OnceLock::new();
        self
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The parameters.
    pub fn params(&self) -> &Distortions {
        &self.params
    }

    /// Number of samples (that of the source split).
    pub fn len(&self) -> usize {
        self.source.len()
    }

    /// True if the source split is empty.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// Side of the generated images.
    pub fn side(&self) -> usize {
        self.variant.side(&self.params)
    }

    /// The random stream of sample `index` in `epoch`.
    fn stream(&self, epoch: u64, index: usize) -> Rng {
        derive(self.seed, &[self.variant.key(), epoch, index as u64])
    }

    /// Generates the samples `indices` (into the source split) for `epoch`.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn batch(&self, epoch: u64, indices: &[usize]) -> Batch {
        if self.variant == Variant::Addition {
            return addition::batch(self, epoch, indices);
        }
        let side = self.side();
        let px = side * side;
        let labels = indices.iter().map(|&i| self.source.label(i)).collect();
        let mut images = pool::take_zeroed(indices.len() * px);
        let mut drawn = vec![Drawn::None; indices.len()];
        let maps: Vec<Option<GridFill>> = {
            let work = images
                .par_chunks_mut(px.max(1))
                .zip(drawn.par_iter_mut())
                .zip(indices.par_iter());
            work.map(|((img, d), &i)| {
                let mut rng = self.stream(epoch, i);
                let (map, dr) = self.draw(i, &mut rng, img);
                *d = dr;
                map
            })
            .collect()
        };
        let grid = if self.variant == Variant::E {
            Some(self.elastic_grid(&drawn))
        } else if maps.iter().any(Option::is_some) {
            Some(self.pixel_grids(&maps))
        } else {
            None
        };
        if let Some(grid) = grid {
            self.warp(indices, &grid, &mut images);
        }
        Batch {
            images: Tensor::from_vec(images, &[indices.len(), 1, side, side]),
            labels,
            drawn,
        }
    }

    /// Generates samples `start..start+count` of the source split.
    pub fn range(&self, epoch: u64, start: usize, count: usize) -> Batch {
        let idx: Vec<usize> = (start..start + count).collect();
        self.batch(epoch, &idx)
    }

    /// Draws one sample's parameters. Geometric variants return the map to
    /// warp with; the others write the image into `img` directly.
    fn draw(&self, i: usize, rng: &mut Rng, img: &mut [f32]) -> (Option<GridFill>, Drawn) {
        let p = &self.params;
        let side = self.side();
        match self.variant {
            Variant::Mnist => {
                for (o, &v) in img.iter_mut().zip(self.source.image(i)) {
                    *o = v as f32 / 255.0;
                }
                (None, Drawn::None)
            }
            Variant::R => {
                let d = p.r.draw(rng);
                (pixel_grid(d.map(), side), Drawn::R(d))
            }
            Variant::Rts => {
                let d = p.rts.draw(rng);
                (pixel_grid(d.map(SIDE), side), Drawn::Rts(d))
            }
            Variant::P => {
                let d = p.p.draw(rng);
                (pixel_grid(d.map(), side), Drawn::P(d))
            }
            Variant::E => {
                // Warped in one batched TPS call (see `warp`).
                let d = p.e.draw(rng);
                (None, Drawn::E(d))
            }
            Variant::Tc => {
                let d = p.tc.draw(rng, self.distractors.len());
                d.render(self.source.image(i), self.distractors, p.tc.canvas, img);
                (None, Drawn::Tc(d))
            }
            Variant::Addition => unreachable!("addition batches are made by addition::batch"),
        }
    }

    /// Every sample's sampling grid (N×S×S×2) from its pixel map.
    fn pixel_grids(&self, maps: &[Option<GridFill>]) -> Tensor {
        let side = self.side();
        let mut grid = pool::take_zeroed(maps.len() * side * side * 2);
        grid.par_chunks_mut(side * side * 2)
            .zip(maps.par_iter())
            .for_each(|(g, m)| {
                let fill = m.as_ref().expect("geometric variants warp every sample");
                fill(g);
            });
        Tensor::from_vec(grid, &[maps.len(), side, side, 2])
    }

    /// The E grids of a batch in one call of the stn TPS (one matrix product).
    fn elastic_grid(&self, drawn: &[Drawn]) -> Tensor {
        let tps = self
            .tps
            .get_or_init(|| ThinPlateSpline::new(self.params.e.control));
        let thetas: Vec<Tensor> = drawn
            .iter()
            .map(|d| match d {
                Drawn::E(d) => d.theta(tps),
                _ => unreachable!("elastic_grid is only called for E"),
            })
            .collect();
        let theta = Tensor::concat(&thetas.iter().collect::<Vec<_>>(), 0);
        let side = self.side();
        tps.grid(&engine::Var::constant(theta), [side, side], false)
            .value()
            .clone()
    }

    /// Warps the digits with the stn bilinear sampler, in one call.
    fn warp(&self, indices: &[usize], grid: &Tensor, out: &mut [f32]) {
        let n = indices.len();
        let src = SIDE;
        // Every digit is copied in whole below.
        let mut digits = pool::take_for_overwrite(n * src * src);
        digits
            .par_chunks_mut(src * src)
            .zip(indices.par_iter())
            .for_each(|(d, &i)| {
                for (o, &v) in d.iter_mut().zip(self.source.image(i)) {
                    *o = v as f32 / 255.0;
                }
            });
        let input = Tensor::from_vec(digits, &[n, 1, src, src]);
        let v = stn::grid_sample(&input, grid, stn::SampleOptions::default());
        out.copy_from_slice(v.data());
    }
}
