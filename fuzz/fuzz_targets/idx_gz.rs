//! The IDX reader behind its gzip decoder: the input is compressed first, so
//! the fuzzer's mutations reach the IDX parser through the gzip path (the
//! `idx` target fuzzes the gzip decoder itself).
#![no_main]

use datasets::read_idx_from_limited;
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use warpgrad_fuzz::{check_peak, peak_of, Counting};

#[global_allocator]
static A: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    let gz = e.finish().unwrap();
    let peak = peak_of(|| {
        let r = read_idx_from_limited(&gz[..], "fuzz.idx.gz", 16 << 20);
        if data.len() > 16 << 20 {
            assert!(r.is_err());
        }
        if let Ok(a) = r {
            assert_eq!(a.len(), a.dims().iter().product::<usize>());
        }
    });
    // What is decompressed is the fuzz input: same bound as raw input.
    check_peak("idx_gz", data.len(), peak, 3, 1 << 20);
});
