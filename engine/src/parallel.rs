//! Deterministic parallel helpers.
//!
//! Work is split into chunks of a fixed size that does not depend on the
//! number of threads, and partial results are combined in chunk order. So every
//! result is bit-identical for any `RAYON_NUM_THREADS`.

use rayon::prelude::*;

/// Elements per chunk for elementwise work and reductions.
pub const CHUNK: usize = 1 << 14;

/// Below this many elements, work runs on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 16;

/// Applies `f(offset, chunk)` to fixed-size chunks of `out`, in parallel when large.
pub fn for_each_chunk_mut<F>(out: &mut [f32], f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    if out.len() < PAR_THRESHOLD {
        for (i, c) in out.chunks_mut(CHUNK).enumerate() {
            f(i * CHUNK, c);
        }
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    }
}

/// Sum of a slice in a fixed order: 8 interleaved lanes within fixed-size
/// chunks, chunk sums added left to right.
pub fn sum(x: &[f32]) -> f32 {
    let partials: Vec<f32> = if x.len() < PAR_THRESHOLD {
        x.chunks(CHUNK).map(sum_chunk).collect()
    } else {
        x.par_chunks(CHUNK).map(sum_chunk).collect()
    };
    partials.iter().sum()
}

/// Sum of a chunk with 8 independent accumulators (vectorises; fixed order).
pub fn sum_chunk(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in it.remainder() {
        s += v;
    }
    s
}
