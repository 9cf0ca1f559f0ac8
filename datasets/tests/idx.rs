//! IDX reader/writer: round trips of every type code and every malformed case,
//! raw and gzip.

use datasets::idx::{
    read_idx, read_idx_from, read_idx_from_limited, read_idx_limited, write_idx, IdxArray, IdxData,
    IdxError, IdxStream, IdxType, DEFAULT_MAX_BYTES,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// A fresh directory under the system temp dir, unique to this test.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warpgrad-idx-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// IDX bytes built by hand: magic, big-endian dims, then `data` as given.
fn idx_bytes(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Reads without a size limit (the limit has its own tests).
fn read(bytes: &[u8], name: &str) -> Result<IdxArray, IdxError> {
    read_idx_from_limited(bytes, name, u64::MAX)
}

/// Reads `bytes` both raw and gzipped; both must give the same outcome kind.
fn read_both(bytes: &[u8], name: &str) -> [Result<IdxArray, IdxError>; 2] {
    [read(bytes, name), read(&gzip(bytes), name)]
}

#[test]
fn every_type_code_reads_from_hand_written_bytes() {
    let dims = [2u32, 3];
    let cases: Vec<(u8, Vec<u8>, IdxData)> = vec![
        (
            0x08,
            vec![0, 1, 2, 253, 254, 255],
            IdxData::U8(vec![0, 1, 2, 253, 254, 255]),
        ),
        (
            0x09,
            vec![0x80, 0xff, 0, 1, 0x7f, 5],
            IdxData::I8(vec![-128, -1, 0, 1, 127, 5]),
        ),
        (
            0x0B,
            [-32768i16, -1, 0, 1, 300, 32767]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
            IdxData::I16(vec![-32768, -1, 0, 1, 300, 32767]),
        ),
        (
            0x0C,
            [i32::MIN, -1, 0, 1, 70000, i32::MAX]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
            IdxData::I32(vec![i32::MIN, -1, 0, 1, 70000, i32::MAX]),
        ),
        (
            0x0D,
            [-1.5f32, 0.0, 0.25, 1e-7, 3e8, f32::MAX]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
            IdxData::F32(vec![-1.5, 0.0, 0.25, 1e-7, 3e8, f32::MAX]),
        ),
        (
            0x0E,
            [-1.5f64, 0.0, 0.1, 1e-300, 3e300, 2.0]
                .iter()
                .flat_map(|x| x.to_be_bytes())
                .collect(),
            IdxData::F64(vec![-1.5, 0.0, 0.1, 1e-300, 3e300, 2.0]),
        ),
    ];
    let dir = temp_dir("types");
    for (code, data, want) in cases {
        let bytes = idx_bytes(code, &dims, &data);
        for (gz, file_bytes) in [(false, bytes.clone()), (true, gzip(&bytes))] {
            let a = read(&file_bytes, "t").unwrap();
            assert_eq!(a.dims(), &[2, 3]);
            assert_eq!(a.idx_type().code(), code);
            assert_eq!(a.data(), &want, "code {code:#x} gz {gz}");
            // The writer reproduces the exact raw bytes, and gzip by name.
            let path = dir.join(format!("t{code}{}", if gz { ".gz" } else { "" }));
            write_idx(&path, &a).unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk[..2] == [0x1f, 0x8b], gz, "gzip iff .gz");
            if !gz {
                assert_eq!(on_disk, bytes);
            }
            assert_eq!(read_idx(&path).unwrap(), a);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn type_codes_map_both_ways() {
    for t in [
        IdxType::U8,
        IdxType::I8,
        IdxType::I16,
        IdxType::I32,
        IdxType::F32,
        IdxType::F64,
    ] {
        assert_eq!(IdxType::from_code(t.code()), Some(t));
    }
    assert_eq!(IdxType::from_code(0x0A), None);
}

#[test]
fn any_number_of_dims_including_zero_and_empty() {
    // 0 dims: a single element.
    let a = read(&idx_bytes(0x08, &[], &[42]), "scalar").unwrap();
    assert_eq!(a.dims(), &[] as &[usize]);
    assert_eq!(a.as_u8(), Some(&[42u8][..]));
    // 5 dims.
    let a = read(&idx_bytes(0x08, &[1, 2, 1, 3, 2], &[7; 12]), "5d").unwrap();
    assert_eq!(a.dims(), &[1, 2, 1, 3, 2]);
    assert_eq!(a.to_tensor().shape(), &[1, 2, 1, 3, 2]);
    // A zero dim: no data at all.
    let a = read(&idx_bytes(0x0D, &[0, 28, 28], &[]), "empty").unwrap();
    assert!(a.is_empty());
}

#[test]
fn to_tensor_converts_values() {
    let a = IdxArray::new(vec![2, 2], IdxData::I16(vec![-2, 0, 5, 1000])).unwrap();
    let t = a.to_tensor();
    assert_eq!(t.shape(), &[2, 2]);
    assert_eq!(t.data(), &[-2.0, 0.0, 5.0, 1000.0]);
}

#[test]
fn new_rejects_a_length_mismatch() {
    assert!(IdxArray::new(vec![2, 3], IdxData::U8(vec![0; 5])).is_err());
    assert!(IdxArray::new(vec![2, 3], IdxData::U8(vec![0; 6])).is_ok());
}

#[test]
fn u8_and_f32_write_read_round_trip_raw_and_gzip() {
    let dir = temp_dir("roundtrip");
    let u = IdxArray::new(vec![3, 4, 5], IdxData::U8((0..60).collect())).unwrap();
    let f = IdxArray::new(
        vec![7, 2],
        IdxData::F32((0..14).map(|i| i as f32 * -0.75).collect()),
    )
    .unwrap();
    for name in ["u.idx", "u.idx.gz", "f.idx", "f.idx.gz"] {
        let a = if name.starts_with('u') { &u } else { &f };
        let path = dir.join(name);
        write_idx(&path, a).unwrap();
        assert_eq!(&read_idx(&path).unwrap(), a, "{name}");
    }
    let tmp_left = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(tmp_left, 0, "atomic write leaves no temp file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gzip_is_detected_from_content_not_name() {
    let dir = temp_dir("detect");
    let bytes = idx_bytes(0x08, &[3], &[1, 2, 3]);
    // gzip content under a plain name, raw content under a .gz name.
    std::fs::write(dir.join("plain-name"), gzip(&bytes)).unwrap();
    std::fs::write(dir.join("raw.gz"), &bytes).unwrap();
    for name in ["plain-name", "raw.gz"] {
        let a = read_idx(dir.join(name)).unwrap();
        assert_eq!(a.as_u8(), Some(&[1u8, 2, 3][..]), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------- malformed input: each case has its own variant, raw and gzip ----------

fn assert_names(e: &IdxError, name: &str) {
    assert!(
        e.to_string().contains(name),
        "message must name {name}: {e}"
    );
    assert_eq!(e.file(), name);
}

#[test]
fn bad_magic() {
    let mut b = idx_bytes(0x08, &[2], &[1, 2]);
    b[0] = 0x50;
    for r in read_both(&b, "magic.idx") {
        let e = r.unwrap_err();
        assert!(matches!(e, IdxError::BadMagic { .. }), "{e}");
        assert_names(&e, "magic.idx");
    }
    // A PNG is not IDX, however short.
    let e = read(b"\x89P", "png").unwrap_err();
    assert!(matches!(e, IdxError::BadMagic { .. }), "{e}");
}

#[test]
fn unknown_type_code() {
    for r in read_both(&idx_bytes(0x0A, &[2], &[1, 2]), "type.idx") {
        let e = r.unwrap_err();
        assert!(matches!(e, IdxError::UnknownType { code: 0x0A, .. }), "{e}");
        assert!(e.to_string().contains("0x0A"), "{e}");
        assert_names(&e, "type.idx");
    }
}

#[test]
fn header_cut_short() {
    let b = idx_bytes(0x08, &[2, 2], &[1, 2, 3, 4]);
    for cut in [0, 1, 3, 4, 7, 11] {
        for r in read_both(&b[..cut], "hdr.idx") {
            let e = r.unwrap_err();
            assert!(
                matches!(e, IdxError::HeaderTruncated { .. }),
                "cut {cut}: {e}"
            );
            assert_names(&e, "hdr.idx");
        }
    }
}

#[test]
fn data_shorter_than_header_says() {
    let b = idx_bytes(0x0C, &[3], &[0; 10]);
    for r in read_both(&b, "short.idx") {
        let e = r.unwrap_err();
        match &e {
            IdxError::DataTruncated { expected, got, .. } => {
                assert_eq!((*expected, *got), (12, 10))
            }
            other => panic!("expected DataTruncated, got {other}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("12") && msg.contains("10"), "{msg}");
        assert_names(&e, "short.idx");
    }
}

#[test]
fn data_longer_than_header_says() {
    let b = idx_bytes(0x08, &[3], &[1, 2, 3, 4, 5]);
    for r in read_both(&b, "long.idx") {
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TrailingData {
                    expected: 3,
                    extra: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_names(&e, "long.idx");
    }
}

#[test]
fn dimension_product_overflow() {
    let dims = [u32::MAX; 4];
    for r in read_both(&idx_bytes(0x0E, &dims, &[]), "ovf.idx") {
        let e = r.unwrap_err();
        assert!(matches!(e, IdxError::DimOverflow { .. }), "{e}");
        assert_names(&e, "ovf.idx");
    }
}

#[test]
fn dims_multiplying_to_exactly_u64_max_do_not_overflow() {
    // 65535 * 42009217 * 6700417 == u64::MAX: fits, but "+1" would not.
    for r in read_both(
        &idx_bytes(0x08, &[65535, 42_009_217, 6_700_417], &[1; 9]),
        "max.idx",
    ) {
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::DataTruncated {
                    expected: u64::MAX,
                    got: 9,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn huge_header_claim_fails_fast_raw_gzip_and_file() {
    // 4e9 * 28 * 28 claimed f64 items would be terabytes; 100 bytes present.
    let b = idx_bytes(0x08, &[4_000_000_000, 28, 28], &[7; 100]);
    let dir = temp_dir("huge");
    std::fs::write(dir.join("huge.idx"), &b).unwrap();
    std::fs::write(dir.join("huge.idx.gz"), gzip(&b)).unwrap();
    let start = Instant::now();
    for r in read_both(&b, "huge.idx").into_iter().chain([
        read_idx_limited(dir.join("huge.idx"), u64::MAX),
        read_idx_limited(dir.join("huge.idx.gz"), u64::MAX),
    ]) {
        let e = r.unwrap_err();
        match &e {
            IdxError::DataTruncated { expected, got, .. } => {
                assert_eq!(*expected, 4_000_000_000 * 784);
                assert_eq!(*got, 100);
            }
            other => panic!("expected DataTruncated, got {other}"),
        }
    }
    assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pseudo-random bytes from 16 values, so the gzip stream is long and uses
/// Huffman coding throughout.
fn sample_file() -> Vec<u8> {
    let mut x = 0x2545_f491u32;
    let data: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 28) as u8
        })
        .collect();
    idx_bytes(0x08, &[20_000], &data)
}

#[test]
fn gzip_cut_in_half_is_truncated_gzip() {
    let gz = gzip(&sample_file());
    assert!(
        gz.len() > 200,
        "test needs a real stream, got {} bytes",
        gz.len()
    );
    for cut in [gz.len() / 2, gz.len() - 4, 20] {
        let e = read(&gz[..cut], "half.idx.gz").unwrap_err();
        assert!(
            matches!(e, IdxError::TruncatedGzip { .. }),
            "cut {cut}: {e}"
        );
        assert_names(&e, "half.idx.gz");
    }
}

#[test]
fn gzip_with_flipped_bytes_is_corrupt_gzip() {
    let gz = gzip(&sample_file());
    assert_eq!(
        read(&gz, "ok").unwrap().len(),
        20_000,
        "control: intact stream reads"
    );
    for at in [gz.len() / 2, gz.len() / 3, gz.len() - 6] {
        let mut bad = gz.clone();
        for b in &mut bad[at..at + 3] {
            *b ^= 0xA5;
        }
        let e = read(&bad, "flip.idx.gz").unwrap_err();
        assert!(matches!(e, IdxError::CorruptGzip { .. }), "at {at}: {e}");
        assert_names(&e, "flip.idx.gz");
    }
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let e = read_idx("/nonexistent/dir/train-images-idx3-ubyte").unwrap_err();
    assert!(matches!(e, IdxError::Io { .. }), "{e}");
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
}

#[test]
fn prefixes_and_corruptions_never_panic() {
    let good = idx_bytes(0x0B, &[2, 3], &[1; 12]);
    for bytes in [good.clone(), gzip(&good)] {
        for cut in 0..bytes.len() {
            assert!(read(&bytes[..cut], "p").is_err(), "prefix {cut}");
        }
        for i in 0..bytes.len() {
            for v in [0u8, 0xff, 0x1f] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = read(&b, "c");
            }
        }
    }
}

#[test]
fn over_the_limit_is_refused_from_the_header_before_reading() {
    // 2^27 f64 = 1 GiB claimed; no data at all follows the header, so a
    // reader that looked at the data first would say "cut short" instead.
    let b = idx_bytes(0x0E, &[1 << 27], &[]);
    let dir = temp_dir("limit");
    std::fs::write(dir.join("big.idx"), &b).unwrap();
    std::fs::write(dir.join("big.idx.gz"), gzip(&b)).unwrap();
    let total = 8 + 8u64 * (1 << 27);
    for r in [
        read_idx_from(&b[..], "big.idx"),
        read_idx_from(&gzip(&b)[..], "big.idx"),
        read_idx(dir.join("big.idx")),
        read_idx(dir.join("big.idx.gz")),
    ] {
        let e = r.unwrap_err();
        match &e {
            IdxError::TooLarge { bytes, limit, .. } => {
                assert_eq!((*bytes, *limit), (total, DEFAULT_MAX_BYTES));
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        assert!(e.file().ends_with("big.idx") || e.file().ends_with("big.idx.gz"));
        let text = e.to_string();
        assert!(text.contains(&DEFAULT_MAX_BYTES.to_string()), "{text}");
        assert!(text.contains(&total.to_string()), "{text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_limit_counts_header_and_data_and_is_inclusive() {
    let b = idx_bytes(0x0B, &[3, 2], &[0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6]);
    let n = b.len() as u64; // 4 + 8 header bytes + 12 data bytes
    assert_eq!(n, 24);
    let a = read_idx_from_limited(&b[..], "x.idx", n).unwrap();
    assert_eq!(a.data(), &IdxData::I16(vec![1, 2, 3, 4, 5, 6]));
    for bytes in [b.clone(), gzip(&b)] {
        let e = read_idx_from_limited(&bytes[..], "x.idx", n - 1).unwrap_err();
        assert!(
            matches!(
                e,
                IdxError::TooLarge {
                    bytes: 24,
                    limit: 23,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn stream_hands_out_the_data_in_bounded_chunks() {
    // 200 000 i32 (800 kB): several chunks, each whole elements, at most 64 KiB.
    let vals: Vec<i32> = (0..200_000).map(|i| i * 7 - 500_000).collect();
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    let b = idx_bytes(0x0C, &[200_000], &data);
    for bytes in [b.clone(), gzip(&b)] {
        let mut s = IdxStream::new(&bytes[..], "s.idx").unwrap();
        assert_eq!(s.header().dims, vec![200_000]);
        assert_eq!(s.header().data_bytes(), 800_000);
        let (mut got, mut chunks) = (Vec::new(), 0);
        while let Some(c) = s.next_chunk().unwrap() {
            assert!(c.len() <= 64 << 10 && c.len() % 4 == 0, "{}", c.len());
            got.extend(IdxType::I32.values_f64(c));
            chunks += 1;
        }
        assert!(chunks >= 13, "{chunks}");
        s.finish().unwrap();
        let want: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
        assert_eq!(got, want);
    }
    // Trailing bytes are still found when streaming.
    let mut extra = b.clone();
    extra.push(9);
    let mut s = IdxStream::new(&extra[..], "t.idx").unwrap();
    while s.next_chunk().unwrap().is_some() {}
    let e = s.finish().unwrap_err();
    assert!(matches!(e, IdxError::TrailingData { extra: 1, .. }), "{e}");
}

#[test]
fn trailing_bytes_are_counted_only_up_to_the_scan_limit() {
    // A gzip that expands to 64 MiB of zeros after a 1-byte array: the error
    // comes after 1 MiB of them, saying "at least".
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(&idx_bytes(0x08, &[1], &[5])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let gz = e.finish().unwrap();
    let err = read_idx_from(&gz[..], "bomb.idx.gz").unwrap_err();
    assert!(
        matches!(err, IdxError::TrailingData { extra, .. } if (datasets::idx::TRAILING_SCAN..2 << 20).contains(&extra)),
        "{err}"
    );
    assert!(err.to_string().contains("at least"), "{err}");
}
