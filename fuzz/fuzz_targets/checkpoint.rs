//! The checkpoint reader: `Checkpoint::read_from` on a stream of unknown
//! length (the `load` path for pipes and devices) and with the size known
//! (the path for files), then `from_bytes`. Never a panic; heap within 4× the
//! input plus 1 MiB.
#![no_main]

use layers::Checkpoint;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use warpgrad_fuzz::{check_peak, peak_of, Counting};

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz.wgck");
    let peak = peak_of(|| {
        let a = Checkpoint::read_from(data, None, p);
        let b = Checkpoint::read_from(data, Some(data.len() as u64), p);
        let c = Checkpoint::from_bytes(data, p);
        // The three routes agree on success, and on what was read.
        assert_eq!(a.is_ok(), c.is_ok());
        assert_eq!(b.is_ok(), c.is_ok());
        if let (Ok(a), Ok(c)) = (a, c) {
            // Compared as bytes: NaN values are not equal to themselves.
            assert_eq!(a.to_bytes(), c.to_bytes());
        }
    });
    check_peak("checkpoint", data.len(), peak, 4, 1 << 20);
});
