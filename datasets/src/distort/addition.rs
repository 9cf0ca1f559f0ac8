//! MNIST addition (the paper's appendix A.1): two digits, one per input
//! channel, each distorted independently as in RTS (rotation, scale and a
//! random placement on the 42×42 canvas); the label is their sum (19
//! classes, 0 to 18).
//!
//! Sample `i` of epoch `e` is digit `i` of the source split in channel 0 and
//! a partner digit `j` in channel 1, with `j` and both distortions drawn from
//! the sample's stream `derive(seed, [variant, e, i])`: the pairs change with
//! the epoch and the seed, and a test set (fixed seed, [`super::TEST_EPOCH`])
//! always pairs the same digits. The partner comes from the same split, so
//! training and test digits never meet.

use super::rts::{self, RtsParams};
use super::{geometry, Batch, DistortedMnist, Drawn as AnyDrawn};
use crate::mnist::SIDE;
use engine::rng::Rng;
use engine::{pool, Tensor};
use rand::Rng as _;
use rayon::prelude::*;

/// Number of classes of the addition task: sums 0 to 18.
pub const CLASSES: usize = 19;

/// Number of input channels (one digit each).
pub const CHANNELS: usize = 2;

/// What was drawn for one addition sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// Index (into the source split) of the digit in channel 1; channel 0
    /// holds the sample's own digit.
    pub partner: usize,
    /// The distortion of channel 0.
    pub first: rts::Drawn,
    /// The distortion of channel 1.
    pub second: rts::Drawn,
}

/// Draws one sample's partner and distortions (in this order).
pub fn draw(params: &RtsParams, pool: usize, rng: &mut Rng) -> Drawn {
    let partner = rng.gen_range(0..pool);
    let first = params.draw(rng);
    let second = params.draw(rng);
    Drawn {
        partner,
        first,
        second,
    }
}

/// The samples `indices` of `epoch`: N×2×S×S images, labels the sums.
///
/// # Panics
/// If an index is out of range or the source split is empty.
pub(super) fn batch(d: &DistortedMnist<'_>, epoch: u64, indices: &[usize]) -> Batch {
    let side = d.side();
    let n = indices.len();
    let pool = d.source.len();
    let drawn: Vec<Drawn> = indices
        .par_iter()
        .map(|&i| {
            assert!(i < pool, "addition: index {i} out of range 0..{pool}");
            draw(&d.params().rts, pool, &mut d.stream(epoch, i))
        })
        .collect();
    let labels = indices
        .iter()
        .zip(&drawn)
        .map(|(&i, dr)| d.source.label(i) + d.source.label(dr.partner))
        .collect();
    // Digit and grid of image k = 2·sample + channel: the sampler's N×1×S×S
    // output is then the batch's N×2×S×S in memory.
    let src_px = SIDE * SIDE;
    // Every digit is copied in whole below.
    let mut digits = pool::take_for_overwrite(2 * n * src_px);
    let mut grid = pool::take_zeroed(2 * n * side * side * 2);
    digits
        .par_chunks_mut(2 * src_px)
        .zip(grid.par_chunks_mut(2 * side * side * 2))
        .zip(indices.par_iter().zip(drawn.par_iter()))
        .for_each(|((dg, g), (&i, dr))| {
            let (d0, d1) = dg.split_at_mut(src_px);
            let (g0, g1) = g.split_at_mut(side * side * 2);
            for (digit, out) in [(i, d0), (dr.partner, d1)] {
                for (o, &v) in out.iter_mut().zip(d.source.image(digit)) {
                    *o = v as f32 / 255.0;
                }
            }
            geometry::fill_grid(&dr.first.map(SIDE), side, SIDE, g0);
            geometry::fill_grid(&dr.second.map(SIDE), side, SIDE, g1);
        });
    let input = Tensor::from_vec(digits, &[2 * n, 1, SIDE, SIDE]);
    let grid = Tensor::from_vec(grid, &[2 * n, side, side, 2]);
    let v = stn::grid_sample(&input, &grid, stn::SampleOptions::default());
    Batch {
        images: v.reshape(&[n, CHANNELS, side, side]),
        labels,
        drawn: drawn.into_iter().map(AnyDrawn::Addition).collect(),
    }
}
