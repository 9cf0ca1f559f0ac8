//! Seeded random number generators.
//!
//! Every random draw in warpgrad comes from an explicit seed. [`Rng`] is
//! ChaCha8, whose stream is fixed by its seed across platforms and versions
//! of this crate. [`derive`] gives independent streams for keys such as
//! (seed, epoch, sample index), so data and dropout masks do not depend on the
//! order in which threads run.

use rand::SeedableRng;

/// The generator used throughout warpgrad.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded with `seed`.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// SplitMix64 finaliser: a bijective mix of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for the stream named by `seed` and a path of keys, e.g.
/// `derive(seed, &[EPOCH_STREAM, epoch, index])`.
pub fn derive(seed: u64, keys: &[u64]) -> Rng {
    let mut h = mix64(seed);
    for &k in keys {
        h = mix64(h ^ mix64(k));
    }
    seeded(h)
}
