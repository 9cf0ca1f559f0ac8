//! Deterministic data order.
//!
//! The order of an epoch is a Fisher–Yates shuffle drawn from
//! `engine::rng::derive(seed, &[DATA_ORDER_STREAM, epoch])`: it depends only
//! on the seed and the epoch, so a resumed run sees the same batches.

use engine::rng::{derive, Rng};
use rand::Rng as _;

/// Stream key of the per-epoch data order.
pub const DATA_ORDER_STREAM: u64 = 0xDA7A;

/// A uniformly random permutation of `0..n` from `rng` (Fisher–Yates).
pub fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
    v
}

/// The sample order of `epoch` for a data set of `n` samples.
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    permutation(n, &mut derive(seed, &[DATA_ORDER_STREAM, epoch]))
}
