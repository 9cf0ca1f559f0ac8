//! Deterministic data order.
//!
//! The order of an epoch is `rand`'s `SliceRandom::shuffle` of `0..n`, drawn
//! from `engine::rng::derive(seed, &[DATA_ORDER_STREAM, epoch])`: it depends
//! only on the seed and the epoch, so a resumed run sees the same batches.
//! `warpgrad train` uses it: changing the stream or the shuffle changes every
//! trained number.

use engine::rng::derive;
use rand::seq::SliceRandom;

/// Stream key of the per-epoch data order.
pub const DATA_ORDER_STREAM: u64 = 0x5f1e;

/// The sample order of `epoch` for a data set of `n` samples.
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut derive(seed, &[DATA_ORDER_STREAM, epoch]));
    idx
}
