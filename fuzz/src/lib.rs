//! Shared by the fuzz targets: an allocator that tracks the peak heap use of
//! each input, so a target can assert that memory stays within a stated
//! multiple of the input's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting live and peak bytes.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The largest peak seen so far, for reporting.
static WORST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            // Counted as alloc-then-free: the old block lives until copied.
            let now = LIVE.fetch_add(new, Relaxed) + new;
            PEAK.fetch_max(now, Relaxed);
            LIVE.fetch_sub(l.size(), Relaxed);
        }
        q
    }
}

/// Runs `f` and returns the heap bytes it had allocated at its peak, above
/// what was live before.
pub fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    f();
    PEAK.load(Relaxed) - base
}

/// Asserts that `peak` is within `per_byte × input + fixed` bytes, and
/// prints a line each time the largest peak so far grows (the fuzz log then
/// holds the figure for the report).
pub fn check_peak(target: &str, input: usize, peak: usize, per_byte: usize, fixed: usize) {
    let bound = per_byte * input + fixed;
    assert!(
        peak <= bound,
        "{target}: {peak} heap bytes for a {input}-byte input (bound {bound})"
    );
    if WORST.fetch_max(peak, Relaxed) < peak {
        eprintln!(
            "#peak {target}: {peak} heap bytes for a {input}-byte input (bound {per_byte}×{input} + {fixed} = {bound})"
        );
    }
}
