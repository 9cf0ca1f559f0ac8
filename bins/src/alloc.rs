//! Process-wide tuning of the C allocator for training loops: a policy of
//! the program (this binary; the benchmarks include this file as an opt-in,
//! `WARPGRAD_BENCH_MALLOC_TUNING=1`), set through `engine::malloc`. The
//! library does not need it: tensor buffers are reused by `engine::pool`.
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
    use engine::malloc::{set, Param};
    let trim = i32::try_from(TRIM_THRESHOLD).unwrap_or(i32::MAX);
    let mmap = i32::try_from(MMAP_THRESHOLD).unwrap_or(i32::MAX);
    set(Param::TrimThreshold, trim) && set(Param::MmapThreshold, mmap) && set(Param::ArenaMax, 1)
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
