//! Deterministic parallel helpers.
//!
//! Work is split into chunks of a fixed size that does not depend on the
//! number of threads, and partial results are combined in chunk order. So every
//! result is bit-identical for any `RAYON_NUM_THREADS`.
//!
//! The vectors these helpers build come from the buffer [`crate::pool`].

use crate::pool::{self, Elem};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Elements per chunk for elementwise work and reductions.
pub const CHUNK: usize = 1 << 14;

/// Below this many elements, work runs on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 16;

/// Runs `f` on a worker thread of a pool of `threads` threads (`None`: the
/// `RAYON_NUM_THREADS` variable, else one per core), and returns its result.
///
/// Why: a parallel op called from a thread outside the pool hands its work to
/// a sleeping worker and blocks until it is done, two context switches per
/// op (about 10% of a 0.3 ms sampler call at one thread). Called from a
/// worker, the op starts on the calling thread and the other workers steal.
/// Results do not depend on it: every reduction has a fixed order.
pub fn in_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No threads to be had: the global pool still works from outside.
        Err(_) => f(),
    }
}

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
    finish_lanes(&acc, it.remainder())
}

/// The end of [`sum_chunk`]: its eight lane sums combined pairwise, then
/// the values past the last full group of 8 added in order.
fn finish_lanes(a: &[f32; 8], rest: &[f32]) -> f32 {
    let mut s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for v in rest {
        s += v;
    }
    s
}

/// [`sum_chunk`] of four slices of one length, bit for bit: the four sums'
/// chains interleaved, so that four times as many adds are in flight (one
/// chain is bound by the add's latency, not by the vector width).
///
/// # Panics
/// If the slices differ in length.
pub fn sum_chunks4(x: [&[f32]; 4]) -> [f32; 4] {
    let n = x[0].len();
    assert!(
        x.iter().all(|s| s.len() == n),
        "sum_chunks4: slices of different lengths"
    );
    let full = n / 8 * 8;
    let acc = sum8x4(full, [x[0], x[1], x[2], x[3]]);
    std::array::from_fn(|i| finish_lanes(&acc[i], &x[i][full..]))
}

/// The eight lane sums of the first `full` (a multiple of 8) values of each
/// of four slices: lane `i` adds values `i, i + 8, …` in order.
#[cfg(target_arch = "x86_64")]
fn sum8x4(full: usize, x: [&[f32]; 4]) -> [[f32; 8]; 4] {
    use std::arch::x86_64::*;
    assert!(x.iter().all(|s| s.len() >= full) && full.is_multiple_of(8));
    // Two SSE vectors a slice (SSE2 is part of x86-64): written out, since
    // the compiler's own vectorisation of four interleaved sums shuffles
    // lanes between them.
    // SAFETY: SSE is part of every x86-64 CPU.
    let mut acc = [[unsafe { _mm_setzero_ps() }; 2]; 4];
    for j in (0..full).step_by(8) {
        for (a, s) in acc.iter_mut().zip(&x) {
            // SAFETY: SSE as above; j + 8 <= full <= s.len() (asserted);
            // unaligned loads.
            unsafe {
                a[0] = _mm_add_ps(a[0], _mm_loadu_ps(s.as_ptr().add(j)));
                a[1] = _mm_add_ps(a[1], _mm_loadu_ps(s.as_ptr().add(j + 4)));
            }
        }
    }
    acc.map(|[lo, hi]| {
        let mut out = [0.0f32; 8];
        // SAFETY: SSE as above; `out` holds 8 values; unaligned stores.
        unsafe {
            _mm_storeu_ps(out.as_mut_ptr(), lo);
            _mm_storeu_ps(out.as_mut_ptr().add(4), hi);
        }
        out
    })
}

/// [`sum8x4`] without SIMD intrinsics.
#[cfg(not(target_arch = "x86_64"))]
fn sum8x4(full: usize, x: [&[f32]; 4]) -> [[f32; 8]; 4] {
    x.map(|s| {
        let mut a = [0.0f32; 8];
        for c in s[..full].chunks_exact(8) {
            for (a, v) in a.iter_mut().zip(c) {
                *a += v;
            }
        }
        a
    })
}

/// `n` zeros from the pool, written in parallel when large: a serial
/// `memset` of a reused buffer is a serial section of every layer's output
/// at two threads.
pub fn zeros<T: Elem>(n: usize) -> Vec<T> {
    if n < PAR_THRESHOLD {
        return pool::global().take_zeroed(n);
    }
    #[cfg(feature = "safe-buffers")]
    return pool::global().take_zeroed(n);
    // Each piece is zeroed whole (a `memset`): rayon's `repeat_n` wrote value
    // by value, 3.5% of an ST-CNN training step at one thread.
    #[cfg(not(feature = "safe-buffers"))]
    written(n, |f| {
        let pieces: Vec<Filler<'_, T>> = f.chunks(CHUNK).collect();
        pieces.into_par_iter().for_each(|p| {
            p.zeroed();
        });
    })
}

/// A slot of a vector that [`written`] builds: uninitialised memory, or with
/// the `safe-buffers` feature (the fallback without `unsafe`) a zeroed value.
#[cfg(not(feature = "safe-buffers"))]
type Slot<T> = std::mem::MaybeUninit<T>;
#[cfg(feature = "safe-buffers")]
type Slot<T> = T;

/// The write end of a piece of a vector that [`written`] builds: values go in
/// once each, front to back. When dropped it reports how many it holds.
pub struct Filler<'a, T> {
    slots: &'a mut [Slot<T>],
    len: usize,
    done: &'a AtomicUsize,
}

impl<'a, T: Copy> Filler<'a, T> {
    /// Elements this piece holds when full.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Writes `v` after the values written so far (panics when full).
    #[inline]
    pub fn push(&mut self, v: T) {
        put(&mut self.slots[self.len], v);
        self.len += 1;
    }

    /// Writes `v` after the values written so far (panics if it overflows).
    #[inline]
    pub fn extend_from_slice(&mut self, v: &[T]) {
        let dst = &mut self.slots[self.len..self.len + v.len()];
        for (d, &x) in dst.iter_mut().zip(v) {
            put(d, x);
        }
        self.len += v.len();
    }

    /// Writes `a[0], b[0], a[1], b[1], …` after the values written so far
    /// (the slices must have one length; panics if it overflows).
    #[inline]
    pub fn extend_interleaved(&mut self, a: &[T], b: &[T]) {
        assert_eq!(a.len(), b.len(), "extend_interleaved: lengths differ");
        let dst = &mut self.slots[self.len..self.len + 2 * a.len()];
        for ((d, &x), &y) in dst.chunks_exact_mut(2).zip(a).zip(b) {
            put(&mut d[0], x);
            put(&mut d[1], y);
        }
        self.len += 2 * a.len();
    }

    /// Fills the rest of this piece with `T::default()` (zero) and hands
    /// the whole piece out for reading and writing: for outputs that are
    /// accumulated into, zeroed by the task that adds into them while they
    /// are in its cache, instead of by a pass of their own.
    pub fn zeroed(mut self) -> &'a mut [T]
    where
        T: Default,
    {
        let slots = std::mem::take(&mut self.slots);
        for slot in &mut slots[self.len..] {
            put(slot, T::default());
        }
        self.done.fetch_add(slots.len(), Ordering::Relaxed);
        // `self` now holds nothing: its drop adds 0.
        self.len = 0;
        #[cfg(feature = "safe-buffers")]
        return slots;
        // SAFETY: every slot holds a value: the first `len` were written by
        // `put` (the filler's invariant) and the rest just now, and
        // `MaybeUninit<T>` has `T`'s size and alignment, so the slice of
        // initialised slots may be viewed as `[T]` for the same lifetime.
        #[cfg(not(feature = "safe-buffers"))]
        unsafe {
            &mut *(slots as *mut [Slot<T>] as *mut [T])
        }
    }

    /// Cuts this piece into pieces of `size` elements (the last may be
    /// shorter), like `chunks_mut`. Values already written here are dropped
    /// from the count: the new pieces start empty.
    pub fn chunks(mut self, size: usize) -> impl Iterator<Item = Filler<'a, T>> {
        let slots = std::mem::take(&mut self.slots);
        self.len = 0;
        let done = self.done;
        slots.chunks_mut(size).map(move |slots| Filler {
            slots,
            len: 0,
            done,
        })
    }
}

impl<T> Drop for Filler<'_, T> {
    fn drop(&mut self) {
        self.done.fetch_add(self.len, Ordering::Relaxed);
    }
}

#[inline(always)]
fn put<T>(slot: &mut Slot<T>, v: T) {
    #[cfg(not(feature = "safe-buffers"))]
    slot.write(v);
    #[cfg(feature = "safe-buffers")]
    {
        *slot = v;
    }
}

/// A vector of `n` values that `fill` writes through [`Filler`]s (cut from
/// the one it is given, typically handed to parallel tasks), with no
/// zero-fill first: `zeros` then overwriting costs an extra pass over the
/// output, a parallel one of its own (a fork and join per op: one-channel
/// sampler calls measured 5–10% faster at two threads without it).
///
/// Panics, before the vector exists, unless every value was written.
pub fn written<T: Elem>(n: usize, fill: impl FnOnce(Filler<'_, T>)) -> Vec<T> {
    let done = AtomicUsize::new(0);
    // An empty buffer from the pool: its spare capacity is written in place.
    #[cfg(not(feature = "safe-buffers"))]
    let mut v = pool::global().take_empty(n);
    #[cfg(feature = "safe-buffers")]
    let mut v = zeros(n);
    fill(Filler {
        #[cfg(not(feature = "safe-buffers"))]
        slots: &mut v.spare_capacity_mut()[..n],
        #[cfg(feature = "safe-buffers")]
        slots: &mut v[..],
        len: 0,
        done: &done,
    });
    // `fill` has returned, so every filler was dropped (their lifetime ends
    // here) and every task joined, which orders their writes before this.
    let count = done.load(Ordering::Relaxed);
    assert_eq!(count, n, "parallel::written: {count} of {n} values written");
    // SAFETY: the fillers' slots are disjoint pieces of `v`'s first `n`
    // slots (they are only made by cutting the first one with `chunks_mut`),
    // and each counts the slots it wrote, a prefix of its own, once on drop.
    // A count of `n` therefore means every one of the `n` slots holds a
    // value written by `put`. (A forgotten filler only makes the count short,
    // which panics above.)
    #[cfg(not(feature = "safe-buffers"))]
    unsafe {
        v.set_len(n)
    };
    v
}

/// `f` of every element of `x`, computed in parallel when large, written
/// straight into a vector from the pool (no zero-fill first).
pub fn map<F>(x: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32) -> f32 + Sync + Send,
{
    let mut out = pool::take_empty(x.len());
    if x.len() < PAR_THRESHOLD {
        out.extend(x.iter().map(|&v| f(v)));
    } else {
        // The capacity suffices: rayon writes in place, no reallocation.
        x.par_iter().map(|&v| f(v)).collect_into_vec(&mut out);
    }
    out
}

/// `f(x[i], y[i])` for equal-length slices, like [`map`].
pub fn zip_map<F>(x: &[f32], y: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync + Send,
{
    assert_eq!(x.len(), y.len(), "zip_map: lengths differ");
    let mut out = pool::take_empty(x.len());
    if x.len() < PAR_THRESHOLD {
        out.extend(x.iter().zip(y).map(|(&p, &q)| f(p, q)));
    } else {
        x.par_iter()
            .zip(y)
            .map(|(&p, &q)| f(p, q))
            .collect_into_vec(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_chunks4_gives_sum_chunk_bits_for_every_length() {
        let mut rng = crate::rng::seeded(3);
        for n in [0, 1, 7, 8, 9, 63, 64, 1156, 1157] {
            let planes: Vec<Vec<f32>> = (0..4)
                .map(|_| {
                    crate::Tensor::normal(&[n.max(1)], 0.0, 1.0, &mut rng).data()[..n].to_vec()
                })
                .collect();
            let got = sum_chunks4(std::array::from_fn(|i| &planes[i][..]));
            for (g, p) in got.iter().zip(&planes) {
                assert_eq!(g.to_bits(), sum_chunk(p).to_bits(), "length {n}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn sum_chunks4_refuses_slices_of_different_lengths() {
        let (a, b) = ([1.0f32; 8], [1.0f32; 9]);
        sum_chunks4([&a, &a, &a, &b]);
    }

    #[test]
    fn in_pool_runs_on_a_worker_of_the_asked_size() {
        let (index, threads) = in_pool(Some(3), || {
            (rayon::current_thread_index(), rayon::current_num_threads())
        });
        assert!(index.is_some(), "not on a pool thread");
        assert_eq!(threads, 3);
    }

    #[test]
    fn written_takes_every_value_from_parallel_pieces() {
        let n = 10_007;
        let v: Vec<u32> = written(n, |all| {
            let pieces: Vec<_> = all.chunks(1000).collect();
            pieces.into_par_iter().enumerate().for_each(|(k, mut f)| {
                let base = (k * 1000) as u32;
                let half = f.capacity() / 2;
                for i in 0..half {
                    f.push(base + i as u32);
                }
                let rest: Vec<u32> = (half..f.capacity()).map(|i| base + i as u32).collect();
                let (two, tail) = rest.split_at(rest.len() / 2 * 2);
                let (evens, odds): (Vec<u32>, Vec<u32>) =
                    two.chunks(2).map(|p| (p[0], p[1])).unzip();
                f.extend_interleaved(&evens, &odds);
                f.extend_from_slice(tail);
            });
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    }

    #[test]
    fn zeroed_pieces_keep_their_values_and_zero_the_rest() {
        let v: Vec<f32> = written(7, |all| {
            let mut pieces = all.chunks(4);
            let mut a = pieces.next().unwrap();
            a.push(5.0);
            let a = a.zeroed();
            a[2] += 1.5;
            let b = pieces.next().unwrap().zeroed();
            b[2] = 9.0;
        });
        assert_eq!(v, [5.0, 0.0, 1.5, 0.0, 0.0, 0.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "9 of 10 values written")]
    fn written_refuses_a_gap() {
        let _: Vec<f32> = written(10, |all| {
            for (k, mut f) in all.chunks(5).enumerate() {
                for i in 0..5 - k {
                    f.push(i as f32);
                }
            }
        });
    }

    #[test]
    #[should_panic(expected = "0 of 4 values written")]
    fn written_does_not_count_a_forgotten_piece() {
        let _: Vec<f32> = written(4, |mut all| {
            all.extend_from_slice(&[1.0; 4]);
            std::mem::forget(all);
        });
    }

    #[test]
    fn zeros_map_and_zip_map_small_and_large() {
        for n in [5, PAR_THRESHOLD + 3] {
            let z: Vec<f32> = zeros(n);
            assert!(z.len() == n && z.iter().all(|&v| v == 0.0));
            let u: Vec<u32> = zeros(n);
            assert!(u.iter().all(|&v| v == 0));
            let x: Vec<f32> = (0..n).map(|i| i as f32 - 7.0).collect();
            let m = map(&x, |v| v.max(0.0));
            assert!(m.iter().zip(&x).all(|(&a, &b)| a == b.max(0.0)));
            let s = zip_map(&x, &m, |a, b| a * 2.0 + b);
            assert!(s.iter().enumerate().all(|(i, &v)| v == x[i] * 2.0 + m[i]));
        }
    }
}
