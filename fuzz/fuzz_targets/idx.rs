//! The IDX reader on raw bytes as found on disk (raw or gzip, detected from
//! the content): loading under a 16 MiB limit, and streaming as `data
//! inspect` does. Never a panic; heap within 3× the decompressed size
//! allowed (the limit) plus 1 MiB, and for raw input within 3× the input.
#![no_main]

use datasets::{read_idx_from_limited, IdxStream};
use libfuzzer_sys::fuzz_target;
use warpgrad_fuzz::{check_peak, peak_of, Counting};

#[global_allocator]
static A: Counting = Counting;

const LIMIT: u64 = 16 << 20;

fuzz_target!(|data: &[u8]| {
    let gz = data.starts_with(&[0x1f, 0x8b]);
    let peak = peak_of(|| {
        if let Ok(a) = read_idx_from_limited(data, "fuzz.idx", LIMIT) {
            // Whatever loads is consistent with its header.
            assert_eq!(a.len(), a.dims().iter().product::<usize>());
        }
    });
    if gz {
        check_peak(
            "idx (gzip)",
            data.len(),
            peak,
            3,
            3 * LIMIT as usize + (1 << 20),
        );
    } else {
        check_peak("idx (raw)", data.len(), peak, 3, 1 << 20);
    }
    let peak = peak_of(|| {
        if let Ok(mut s) = IdxStream::new(data, "fuzz.idx") {
            let t = s.header().ty;
            let mut n = 0usize;
            while let Ok(Some(c)) = s.next_chunk() {
                n += t.values_f64(c).count();
            }
            assert!(n <= s.header().len());
        }
    });
    // Streaming holds a chunk and the decoder, whatever the size.
    check_peak("idx stream", data.len(), peak, 0, 1 << 20);
});
