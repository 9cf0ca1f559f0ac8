//! Process-wide tuning of the C allocator for training loops.
//!
//! A training step allocates and frees the same large tensors (activations,
//! gradients, im2col scratch) at every step. With glibc's defaults the big
//! ones are handed back to the kernel when freed (`munmap`, or `brk` trimming
//! of the heap top) and faulted in again, page by page, at the next step: a
//! fifth of a single-thread ST-CNN step went to page faults. Keeping freed
//! memory in the process turns those faults into plain reuse. Peak memory is
//! unchanged (the same buffers are live at the peak); only the release of
//! memory after the peak is deferred to process exit.
//!
//! All threads share one arena (the main heap). With glibc's per-thread
//! arenas the rayon workers, on which the step runs, allocate from heaps of
//! their own, and a heap whose blocks are all free is unmapped whatever the
//! trim threshold: at two threads an ST-CNN RTS step took 7,000–10,000 page
//! faults and 49–53 ms, against 39 ms (and no faults after the first steps)
//! with one arena. Locking one arena costs nothing measurable at a few
//! hundred large allocations per step.

/// Largest block served from the heap rather than its own mapping. Every
/// tensor of the paper's models at batch 256 is below it. glibc caps the
/// setting at half its 64 MiB arena size.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory kept at the top of a heap before it is returned to the kernel.
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Makes the C allocator keep freed memory for reuse (see the module docs).
/// Call it once at the start of `main`, before threads are started; later
/// calls are harmless. Returns whether the allocator accepted the settings
/// (always `false` where the C library is not glibc, where it does nothing).
pub fn keep_freed_memory() -> bool {
    imp::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::{MMAP_THRESHOLD, TRIM_THRESHOLD};
    use std::ffi::c_int;

    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    const M_ARENA_MAX: c_int = -8;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub fn keep_freed_memory() -> bool {
        let trim = c_int::try_from(TRIM_THRESHOLD).unwrap_or(c_int::MAX);
        let mmap = c_int::try_from(MMAP_THRESHOLD).unwrap_or(c_int::MAX);
        // SAFETY: `mallopt` is glibc's documented, thread-safe (it takes the
        // arena locks) setter of allocator parameters; it takes two ints and
        // touches no memory of ours. The thresholds only change when memory
        // is given back to the kernel, and the arena limit only where new
        // blocks come from, never the validity of live blocks.
        unsafe {
            mallopt(M_TRIM_THRESHOLD, trim) == 1
                && mallopt(M_MMAP_THRESHOLD, mmap) == 1
                && mallopt(M_ARENA_MAX, 1) == 1
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    /// Other C libraries: nothing to tune here.
    pub fn keep_freed_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_accepted_and_allocation_still_works() {
        let ok = keep_freed_memory();
        assert_eq!(ok, cfg!(all(target_os = "linux", target_env = "gnu")));
        // A block above the old threshold, freed, then one reused with zeros.
        let v = vec![1.0f32; 4 << 20];
        assert_eq!(v[(4 << 20) - 1], 1.0);
        drop(v);
        let z = vec![0.0f32; 4 << 20];
        assert!(z.iter().all(|&x| x == 0.0));
    }
}
