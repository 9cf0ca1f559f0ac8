//! The checkpoint reader: `Checkpoint::read_from` on a stream of unknown
//! length (the `load` path for pipes and devices) and with the size known
//! (the path for files), then `from_bytes`; and the same input with its
//! length field and CRC-32 made right, so mutations reach the body parser
//! instead of stopping at the checksum. Never a panic; heap within 4× the
//! input plus 1 MiB.
#![no_main]

use layers::checkpoint::crc32;
use layers::Checkpoint;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use warpgrad_fuzz::{check_peak, peak_of, Counting};

#[global_allocator]
static A: Counting = Counting;

/// Reads `data` the three ways; they must agree.
fn read_all_ways(data: &[u8]) {
    let p = Path::new("fuzz.wgck");
    let a = Checkpoint::read_from(data, None, p);
    let b = Checkpoint::read_from(data, Some(data.len() as u64), p);
    let c = Checkpoint::from_bytes(data, p);
    assert_eq!(a.is_ok(), c.is_ok());
    assert_eq!(b.is_ok(), c.is_ok());
    if let (Ok(a), Ok(c)) = (a, c) {
        // Compared as bytes: NaN values are not equal to themselves.
        assert_eq!(a.to_bytes(), c.to_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let peak = peak_of(|| read_all_ways(data));
    check_peak("checkpoint", data.len(), peak, 4, 1 << 20);
    if data.len() >= 28 {
        let mut fixed = data.to_vec();
        let n = fixed.len();
        fixed[16..24].copy_from_slice(&((n - 28) as u64).to_le_bytes());
        let crc = crc32(&fixed[..n - 4]);
        fixed[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let peak = peak_of(|| read_all_ways(&fixed));
        check_peak("checkpoint (length and CRC fixed)", n, peak, 4, 1 << 20);
    }
});
