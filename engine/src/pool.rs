//! A process-wide caching pool of `f32` (and `u32`) buffers: tensor storage
//! and per-step scratch come from it and go back to it, like PyTorch's CPU
//! caching allocator.
//!
//! Why: a training step allocates and frees the same large buffers
//! (activations, gradients, scratch) at every step. With the C allocator's
//! defaults the big ones go back to the kernel when freed and are faulted
//! in again, page by page, at the next step. A library should not need a
//! process-wide allocator setting to avoid that, so the buffers are reused
//! here instead.
//!
//! # How
//! * Requests of at least [`MIN_POOLED`] elements are rounded up to a size
//!   class, [`CLASSES_PER_DOUBLING`] per power of two (4096, 4608, 5120, …,
//!   7680, 8192, 9216, …), so a buffer serves later requests of nearby sizes
//!   (the last batch of an epoch, another layer of similar size). Smaller
//!   requests bypass the pool: they are plain `Vec`s, cheap for the C
//!   allocator.
//! * Each class keeps a stack of free buffers: a request takes the one given
//!   back last (the likeliest to be in cache).
//! * The cached bytes are capped ([`DEFAULT_CAP`], [`set_cap`], or the
//!   environment variable [`CAP_ENV`] read once); past the cap, the buffers
//!   given back longest ago are freed first (LRU across classes).
//! * One mutex guards the free lists, held only to push or pop a buffer:
//!   buffers are allocated, zeroed and freed outside it (only a free list's
//!   own occasional growth allocates under it).
//!
//! # Values
//! The pool changes where memory comes from, never values:
//! [`take_zeroed`] is all zeros, [`take_empty`] is empty (for push-style
//! fills), and [`take_for_overwrite`] holds unspecified values that the
//! caller must overwrite before reading. In debug builds those are NaN (or
//! `u32::MAX`), so a read before the write shows up in tests.
//!
//! Tensor storage ([`Pooled`]) gives its buffer back when the last reference
//! drops, so a training loop reaches a steady state where every step's
//! buffers come from the previous step's.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Buffers smaller than this many elements bypass the pool.
pub const MIN_POOLED: usize = 4096;

/// Size classes per power of two.
pub const CLASSES_PER_DOUBLING: usize = 8;

/// The default cap on cached bytes: 1 GiB.
pub const DEFAULT_CAP: usize = 1 << 30;

/// The environment variable read once, at the pool's first use, for the cap
/// in bytes: a number with an optional `K`, `M` or `G` suffix (powers of
/// 1024; `0` caches nothing).
pub const CAP_ENV: &str = "WARPGRAD_POOL_CAP";

/// log2 of [`MIN_POOLED`]: the first power of two with classes.
const MIN_SHIFT: u32 = MIN_POOLED.trailing_zeros();

/// log2 of [`CLASSES_PER_DOUBLING`].
const SUB_SHIFT: u32 = CLASSES_PER_DOUBLING.trailing_zeros();

/// Classes from `MIN_POOLED` up to the largest power of two.
const NUM_CLASSES: usize = (usize::BITS - MIN_SHIFT) as usize * CLASSES_PER_DOUBLING;

/// Bytes per element (both element types are four bytes wide).
const ELEM_BYTES: usize = 4;

/// `(class index, class size)` of a request of `n >= MIN_POOLED` elements,
/// rounded up; `None` if the class size overflows.
fn class_up(n: usize) -> Option<(usize, usize)> {
    let k = usize::BITS - 1 - n.leading_zeros();
    let step = 1usize << (k - SUB_SHIFT);
    let m = n.div_ceil(step);
    let size = m.checked_mul(step)?;
    // `m` is in 8..=16; 16 is the next power of two's first class, which the
    // same formula gives.
    let index = (k - MIN_SHIFT) as usize * CLASSES_PER_DOUBLING + (m - CLASSES_PER_DOUBLING);
    (index < NUM_CLASSES).then_some((index, size))
}

/// The class of a buffer of `capacity >= MIN_POOLED` elements, rounded down:
/// the largest class whose requests it can serve.
fn class_down(capacity: usize) -> usize {
    let k = usize::BITS - 1 - capacity.leading_zeros();
    let m = capacity >> (k - SUB_SHIFT);
    (k - MIN_SHIFT) as usize * CLASSES_PER_DOUBLING + (m - CLASSES_PER_DOUBLING)
}

/// The capacity a request of `n` elements gets: `n` rounded up to its size
/// class, or `n` itself below [`MIN_POOLED`] (those bypass the pool).
pub fn class_capacity(n: usize) -> usize {
    if n < MIN_POOLED {
        return n;
    }
    class_up(n).map_or(n, |(_, size)| size)
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u32 {}
}

/// An element type the pool holds: `f32` (values) or `u32` (indices, such
/// as max pooling's arg-max). Both share the same buffers, cap and LRU.
pub trait Elem: Copy + Default + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    /// Zero.
    const ZERO: Self;
    /// What [`take_for_overwrite`] fills buffers with in debug builds.
    const POISON: Self;
    /// The buffer as the pool stores it.
    #[doc(hidden)]
    fn into_store(v: Vec<Self>) -> Vec<f32>;
    /// A stored buffer as this type.
    #[doc(hidden)]
    fn from_store(v: Vec<f32>) -> Vec<Self>;
}

impl Elem for f32 {
    const ZERO: f32 = 0.0;
    const POISON: f32 = f32::NAN;
    fn into_store(v: Vec<f32>) -> Vec<f32> {
        v
    }
    fn from_store(v: Vec<f32>) -> Vec<f32> {
        v
    }
}

impl Elem for u32 {
    const ZERO: u32 = 0;
    const POISON: u32 = u32::MAX;
    fn into_store(v: Vec<u32>) -> Vec<f32> {
        let mut v = std::mem::ManuallyDrop::new(v);
        let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        // SAFETY: the allocation came from the global allocator for `cap`
        // u32s; f32 has u32's size and alignment, so it is an allocation of
        // `cap` f32s with the same layout (freeing it as such is correct).
        // The first `len` values are initialised and every bit pattern is a
        // valid f32. `v` is never dropped, so the allocation has one owner.
        unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, cap) }
    }
    fn from_store(v: Vec<f32>) -> Vec<u32> {
        let mut v = std::mem::ManuallyDrop::new(v);
        let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        // SAFETY: as in `into_store`, the other way round: same size and
        // alignment, every bit pattern is a valid u32, one owner.
        unsafe { Vec::from_raw_parts(ptr.cast::<u32>(), len, cap) }
    }
}

/// Counters and sizes of a pool (see [`stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Takes served from a cached buffer.
    pub hits: u64,
    /// Takes of pooled size that found no cached buffer (a new allocation).
    pub misses: u64,
    /// Takes and gives below [`MIN_POOLED`] elements (plain `Vec`s).
    pub bypassed: u64,
    /// Buffers given back and cached.
    pub returned: u64,
    /// Buffers given back but freed: larger than the cap.
    pub rejected: u64,
    /// Cached buffers freed to stay under the cap.
    pub evictions: u64,
    /// Bytes held by cached buffers.
    pub bytes_cached: usize,
    /// Number of cached buffers.
    pub buffers_cached: usize,
    /// Bytes of pooled-size buffers handed out and not yet given back
    /// (saturating at 0: buffers that never came from the pool may be given
    /// too).
    pub bytes_live: usize,
    /// The largest `bytes_live` seen.
    pub peak_bytes_live: usize,
    /// The cap on cached bytes.
    pub cap: usize,
}

/// A cached buffer and when it was given back.
struct Entry {
    stamp: u64,
    /// Its length is the prefix known to hold initialised values.
    buf: Vec<f32>,
}

/// Free lists and counters, behind the pool's mutex.
struct Inner {
    /// Per class, oldest first (stamps increase front to back, as buffers
    /// are pushed and popped at the back).
    free: [VecDeque<Entry>; NUM_CLASSES],
    clock: u64,
    stats: Stats,
}

impl Inner {
    fn new(cap: usize) -> Inner {
        Inner {
            free: std::array::from_fn(|_| VecDeque::new()),
            clock: 0,
            stats: Stats {
                cap,
                ..Stats::default()
            },
        }
    }

    /// Removes the buffer given back longest ago, if any.
    fn pop_oldest(&mut self) -> Option<Vec<f32>> {
        let class = (0..NUM_CLASSES)
            .filter_map(|c| self.free[c].front().map(|e| (e.stamp, c)))
            .min()?
            .1;
        let e = self.free[class].pop_front()?;
        self.stats.bytes_cached -= e.buf.capacity() * ELEM_BYTES;
        self.stats.buffers_cached -= 1;
        self.stats.evictions += 1;
        Some(e.buf)
    }

    fn add_live(&mut self, bytes: usize) {
        self.stats.bytes_live += bytes;
        self.stats.peak_bytes_live = self.stats.peak_bytes_live.max(self.stats.bytes_live);
    }
}

/// A caching pool of buffers. Most code uses the process-wide one through
/// the module's functions ([`take_zeroed`], [`give`], …); a `Pool` of its
/// own is for tests and for code that wants an isolated cache.
pub struct Pool {
    inner: Mutex<Inner>,
    /// Counted outside the lock: small requests never take it.
    bypassed: AtomicU64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pool({:?})", self.stats())
    }
}

impl Pool {
    /// An empty pool that caches at most `cap_bytes` bytes.
    pub fn new(cap_bytes: usize) -> Pool {
        Pool {
            inner: Mutex::new(Inner::new(cap_bytes)),
            bypassed: AtomicU64::new(0),
        }
    }

    /// The lock; a panic elsewhere while it was held leaves consistent
    /// lists (nothing here panics mid-update), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A buffer of capacity at least `n`, with its initialised prefix as
    /// its length (0 for a new one).
    fn take_raw<T: Elem>(&self, n: usize) -> Vec<T> {
        let Some((class, size)) = (n >= MIN_POOLED).then(|| class_up(n)).flatten() else {
            self.bypassed.fetch_add(1, Ordering::Relaxed);
            return Vec::with_capacity(n);
        };
        let cached = {
            let mut g = self.lock();
            match g.free[class].pop_back() {
                Some(e) => {
                    let bytes = e.buf.capacity() * ELEM_BYTES;
                    g.stats.hits += 1;
                    g.stats.bytes_cached -= bytes;
                    g.stats.buffers_cached -= 1;
                    g.add_live(bytes);
                    Some(e.buf)
                }
                None => {
                    g.stats.misses += 1;
                    g.add_live(size * ELEM_BYTES);
                    None
                }
            }
        };
        // Allocated outside the lock.
        cached.map_or_else(|| Vec::with_capacity(size), T::from_store)
    }

    /// An empty buffer with room for at least `capacity` elements.
    pub fn take_empty<T: Elem>(&self, capacity: usize) -> Vec<T> {
        let mut v = self.take_raw(capacity);
        v.clear();
        v
    }

    /// `n` zeros.
    pub fn take_zeroed<T: Elem>(&self, n: usize) -> Vec<T> {
        let mut v = self.take_raw(n);
        v.clear();
        v.resize(n, T::ZERO);
        v
    }

    /// `n` unspecified values (NaN or `u32::MAX` in debug builds): every one
    /// must be written before it is read.
    pub fn take_for_overwrite<T: Elem>(&self, n: usize) -> Vec<T> {
        let mut v = self.take_raw(n);
        // A reused buffer keeps its old values; only a gap past them is
        // written (zeros: no uninitialised memory is ever exposed).
        if v.len() >= n {
            v.truncate(n);
        } else {
            v.resize(n, T::ZERO);
        }
        if cfg!(debug_assertions) {
            v.fill(T::POISON);
        }
        v
    }

    /// Gives a buffer back for reuse (any buffer, whether it came from the
    /// pool or not). Small ones, and ones larger than the cap, are freed.
    pub fn give<T: Elem>(&self, v: Vec<T>) {
        let cap = v.capacity();
        if cap < MIN_POOLED {
            if cap > 0 {
                self.bypassed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let bytes = cap * ELEM_BYTES;
        let class = class_down(cap);
        let buf = T::into_store(v);
        let rejected = {
            let mut g = self.lock();
            g.stats.bytes_live = g.stats.bytes_live.saturating_sub(bytes);
            if bytes > g.stats.cap {
                g.stats.rejected += 1;
                Some(buf)
            } else {
                g.clock += 1;
                let stamp = g.clock;
                g.free[class].push_back(Entry { stamp, buf });
                g.stats.bytes_cached += bytes;
                g.stats.buffers_cached += 1;
                g.stats.returned += 1;
                None
            }
        };
        // Freed outside the lock.
        drop(rejected);
        self.evict_over_cap();
    }

    /// Frees the least recently given buffers until the cache fits the cap.
    fn evict_over_cap(&self) {
        loop {
            let victim = {
                let mut g = self.lock();
                if g.stats.bytes_cached <= g.stats.cap {
                    return;
                }
                g.pop_oldest()
            };
            // One at a time, freed outside the lock.
            if victim.is_none() {
                return;
            }
        }
    }

    /// Sets the cap on cached bytes, evicting at once if over it.
    pub fn set_cap(&self, bytes: usize) {
        self.lock().stats.cap = bytes;
        self.evict_over_cap();
    }

    /// Frees every cached buffer (counters are kept).
    pub fn clear(&self) {
        let old = {
            let mut g = self.lock();
            g.stats.bytes_cached = 0;
            g.stats.buffers_cached = 0;
            // An empty array allocates nothing; the buffers are freed below,
            // outside the lock.
            std::mem::replace(&mut g.free, std::array::from_fn(|_| VecDeque::new()))
        };
        drop(old);
    }

    /// Writes `value` into every cached buffer, over its whole capacity.
    /// For tests: results must not depend on what reused buffers held, and
    /// after this every read of a buffer before its write shows. Holds the
    /// lock while it writes.
    pub fn fill_cached(&self, value: f32) {
        let mut g = self.lock();
        for e in g.free.iter_mut().flatten() {
            e.buf.fill(value);
            e.buf.resize(e.buf.capacity(), value);
        }
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> Stats {
        let mut s = self.lock().stats;
        s.bypassed = self.bypassed.load(Ordering::Relaxed);
        s
    }
}

/// Why a cap setting could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapParseError {
    /// The text given.
    pub text: String,
}

impl fmt::Display for CapParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool cap {:?} is not a byte count (a number with an optional K, M or G suffix)",
            self.text
        )
    }
}

impl std::error::Error for CapParseError {}

/// Reads a cap in bytes: `"1073741824"`, `"512M"`, `"1G"`, `"64k"` (powers
/// of 1024; an optional trailing `B` or `iB` is allowed).
pub fn parse_cap(text: &str) -> Result<usize, CapParseError> {
    let err = || CapParseError {
        text: text.to_string(),
    };
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: usize = digits.trim().parse().map_err(|_| err())?;
    n.checked_mul(1usize << shift).ok_or_else(err)
}

/// The process-wide pool, made at first use with the cap of [`CAP_ENV`].
pub fn global() -> &'static Pool {
    static GLOBAL: OnceLock<Pool> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let cap = match std::env::var(CAP_ENV) {
            Ok(text) => parse_cap(&text).unwrap_or_else(|e| {
                // A library has no other channel for a bad setting; the
                // default keeps the program running.
                eprintln!("warning: {CAP_ENV}: {e}; using {DEFAULT_CAP} bytes");
                DEFAULT_CAP
            }),
            Err(_) => DEFAULT_CAP,
        };
        Pool::new(cap)
    })
}

/// `n` zeros from the process-wide pool.
pub fn take_zeroed(n: usize) -> Vec<f32> {
    global().take_zeroed(n)
}

/// `n` values to overwrite before reading, from the process-wide pool (NaN
/// in debug builds).
pub fn take_for_overwrite(n: usize) -> Vec<f32> {
    global().take_for_overwrite(n)
}

/// An empty buffer with room for `capacity` values, from the process-wide
/// pool, for push-style fills.
pub fn take_empty(capacity: usize) -> Vec<f32> {
    global().take_empty(capacity)
}

/// Gives a buffer back to the process-wide pool.
pub fn give(v: Vec<f32>) {
    global().give(v)
}

/// Sets the cap of the process-wide pool in bytes (default [`DEFAULT_CAP`]
/// or [`CAP_ENV`]); evicts at once if over it.
pub fn set_cap(bytes: usize) {
    global().set_cap(bytes)
}

/// Frees every buffer the process-wide pool caches.
pub fn clear() {
    global().clear()
}

/// Counters and sizes of the process-wide pool.
pub fn stats() -> Stats {
    global().stats()
}

/// Writes `value` into every buffer the process-wide pool caches (for tests;
/// see [`Pool::fill_cached`]).
pub fn fill_cached(value: f32) {
    global().fill_cached(value)
}

/// Runs `f` twice, every buffer the process-wide pool caches filled with
/// NaN before the second run (for tests: a result that depends on what a
/// reused buffer held shows up as a difference or a NaN). Returns both
/// results.
///
/// # Panics
/// If the second run took no buffer from the pool (the check would then
/// test nothing).
pub fn run_twice_on_poisoned<R>(f: impl Fn() -> R) -> (R, R) {
    let first = f();
    fill_cached(f32::NAN);
    let before = stats().hits;
    let second = f();
    assert!(stats().hits > before, "the second run reused no buffer");
    (first, second)
}

/// A buffer that goes back to the process-wide pool when dropped: tensor
/// storage, and scratch that outlives a function (max pooling's arg-max).
/// It reads and writes as a slice.
#[derive(Default)]
pub struct Pooled<T: Elem = f32> {
    vec: Vec<T>,
}

impl<T: Elem> Pooled<T> {
    /// Wraps a vector (from the pool or not).
    pub fn new(vec: Vec<T>) -> Pooled<T> {
        Pooled { vec }
    }

    /// The vector, no longer returned on drop.
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.vec)
    }
}

impl<T: Elem> From<Vec<T>> for Pooled<T> {
    fn from(vec: Vec<T>) -> Pooled<T> {
        Pooled::new(vec)
    }
}

impl<T: Elem> Drop for Pooled<T> {
    fn drop(&mut self) {
        // The check keeps small buffers off the pool's atomic and lock.
        if self.vec.capacity() >= MIN_POOLED {
            global().give(std::mem::take(&mut self.vec));
        }
    }
}

impl<T: Elem> Clone for Pooled<T> {
    fn clone(&self) -> Pooled<T> {
        let mut v = global().take_empty(self.vec.len());
        v.extend_from_slice(&self.vec);
        Pooled { vec: v }
    }
}

impl<T: Elem> Deref for Pooled<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.vec
    }
}

impl<T: Elem> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.vec
    }
}

impl<T: Elem + PartialEq> PartialEq for Pooled<T> {
    fn eq(&self, other: &Pooled<T>) -> bool {
        self.vec == other.vec
    }
}

impl<T: Elem> fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.vec.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_and_down_consistently() {
        // Eight classes per doubling, starting at MIN_POOLED.
        assert_eq!(class_up(4096), Some((0, 4096)));
        assert_eq!(class_up(4097), Some((1, 4608)));
        assert_eq!(class_up(7680), Some((7, 7680)));
        assert_eq!(class_up(7681), Some((8, 8192)));
        assert_eq!(class_up(8193), Some((9, 9216)));
        for n in (MIN_POOLED..200_000).step_by(97) {
            let (c, size) = class_up(n).unwrap();
            assert!(size >= n && size - n < size / CLASSES_PER_DOUBLING + 1);
            // A buffer of the class's size is filed under that class.
            assert_eq!(class_down(size), c);
            // One element more than a class size files under that class.
            assert_eq!(class_down(size + 1), c);
        }
        assert_eq!(class_up(usize::MAX), None);
        assert_eq!(class_capacity(usize::MAX), usize::MAX);
    }

    #[test]
    fn u32_buffers_share_the_f32_lists() {
        let p = Pool::new(1 << 20);
        let mut a: Vec<u32> = p.take_zeroed(5000);
        a[4999] = 7;
        p.give(a);
        let b: Vec<f32> = p.take_for_overwrite(5000);
        assert_eq!(b.len(), 5000);
        assert_eq!(p.stats().hits, 1);
        p.give(b);
        let c: Vec<u32> = p.take_zeroed(5000);
        assert!(c.iter().all(|&v| v == 0));
    }

    #[test]
    fn parse_cap_reads_suffixes_and_refuses_junk() {
        assert_eq!(parse_cap("1073741824"), Ok(1 << 30));
        assert_eq!(parse_cap("512M"), Ok(512 << 20));
        assert_eq!(parse_cap(" 1G "), Ok(1 << 30));
        assert_eq!(parse_cap("64k"), Ok(64 << 10));
        assert_eq!(parse_cap("2GiB"), Ok(2 << 30));
        assert_eq!(parse_cap("0"), Ok(0));
        assert!(parse_cap("lots").is_err());
        assert!(parse_cap("").is_err());
        assert!(parse_cap("-1").is_err());
        assert!(parse_cap("99999999999999999999G").is_err());
    }
}
