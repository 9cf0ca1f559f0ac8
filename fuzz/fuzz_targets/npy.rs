//! The .npy reader. Never a panic; heap within 8× the input (an i1 value
//! becomes a 4-byte f32, and the vector may double) plus 1 MiB.
#![no_main]

use engine::npy::read_npy_from;
use libfuzzer_sys::fuzz_target;
use warpgrad_fuzz::{check_peak, peak_of, Counting};

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let peak = peak_of(|| {
        if let Ok(t) = read_npy_from(data, "fuzz.npy") {
            assert_eq!(t.numel(), t.shape().iter().product::<usize>());
        }
    });
    check_peak("npy", data.len(), peak, 8, 1 << 20);
});
