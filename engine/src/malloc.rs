//! A safe setter of glibc's allocator parameters (`mallopt`), so that the
//! binaries, which choose the process-wide policy (see the `warpgrad` CLI's
//! `alloc` module), need no `unsafe` of their own. The engine itself never
//! calls it: how a process allocates is the program's decision, not a
//! library's.

/// The `mallopt` parameters a program may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `M_TRIM_THRESHOLD`: free memory kept at the top of a heap before it
    /// is returned to the kernel.
    TrimThreshold,
    /// `M_MMAP_THRESHOLD`: the largest block served from a heap rather than
    /// a mapping of its own (glibc caps it at half its 64 MiB arena size).
    MmapThreshold,
    /// `M_ARENA_MAX`: the number of arenas (heaps) threads share.
    ArenaMax,
}

/// Sets `param` to `value`; returns whether the allocator accepted it
/// (always `false` where the C library is not glibc, where it does nothing).
pub fn set(param: Param, value: i32) -> bool {
    imp::set(param, value)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::Param;
    use std::ffi::c_int;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub fn set(param: Param, value: i32) -> bool {
        // glibc's <malloc.h>.
        let p: c_int = match param {
            Param::TrimThreshold => -1,
            Param::MmapThreshold => -3,
            Param::ArenaMax => -8,
        };
        // SAFETY: `mallopt` is glibc's documented, thread-safe (it takes the
        // arena locks) setter of allocator parameters; it takes two ints and
        // touches no memory of ours. These three parameters only change when
        // memory is given back to the kernel and where new blocks come from,
        // never the validity of live blocks.
        unsafe { mallopt(p, value) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    /// Other C libraries: nothing to set.
    pub fn set(_param: super::Param, _value: i32) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_parameters() {
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        // Values equal to glibc's defaults on 64-bit Linux: no side effect on
        // the other tests of this process.
        assert_eq!(set(Param::TrimThreshold, 128 * 1024), glibc);
        assert_eq!(set(Param::MmapThreshold, 128 * 1024), glibc);
    }
}
