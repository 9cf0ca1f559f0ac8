//! `.npy` reader/writer: NumPy-written fixtures (see
//! tools/fixtures/make_npy_fixtures.py), round trips and every error case.

use engine::npy::{read_npy, read_npy_from, write_npy, write_npy_to, NpyError};
use engine::Tensor;
use std::path::PathBuf;
use std::time::Instant;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory under the system temp dir, unique to this test.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warpgrad-npy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds `.npy` bytes by hand: version 1.0, the given header text, then `data`.
fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn f32_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_bytes(bytes: &[u8], name: &str) -> Result<Tensor, NpyError> {
    read_npy_from(bytes, name)
}

#[test]
fn reads_f32_2d_fixture() {
    let t = read_npy(fixture("f32_2d.npy")).unwrap();
    assert_eq!(t.shape(), &[3, 4]);
    let want: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    assert_eq!(t.data(), &want[..]);
}

#[test]
fn reads_f64_3d_fixture() {
    let t = read_npy(fixture("f64_3d.npy")).unwrap();
    assert_eq!(t.shape(), &[2, 3, 4]);
    let want: Vec<f32> = (0..24).map(|i| i as f32 / 8.0).collect();
    assert_eq!(t.data(), &want[..]);
}

#[test]
fn reads_u8_fixture() {
    let t = read_npy(fixture("u8_2d.npy")).unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.data(), &[0.0, 51.0, 102.0, 153.0, 204.0, 255.0]);
}

#[test]
fn reads_i64_fixture() {
    let t = read_npy(fixture("i64_1d.npy")).unwrap();
    assert_eq!(t.shape(), &[4]);
    assert_eq!(t.data(), &[-3.0, 0.0, 7.0, (1u64 << 40) as f32]);
}

#[test]
fn reads_scalar_fixture() {
    let t = read_npy(fixture("scalar_f32.npy")).unwrap();
    assert_eq!(t.shape(), &[] as &[usize]);
    assert_eq!(t.item(), 3.25);
}

#[test]
fn reads_empty_fixture() {
    let t = read_npy(fixture("empty_f32.npy")).unwrap();
    assert_eq!(t.shape(), &[0, 3]);
    assert!(t.data().is_empty());
}

#[test]
fn reads_version_2_fixture() {
    let bytes = std::fs::read(fixture("v2_f32.npy")).unwrap();
    assert_eq!(&bytes[6..8], &[2, 0], "fixture must really be version 2.0");
    let t = read_npy(fixture("v2_f32.npy")).unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.data(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn fortran_fixture_is_rejected() {
    let err = read_npy(fixture("fortran_f32.npy")).unwrap_err();
    assert!(matches!(err, NpyError::FortranOrder { .. }), "{err}");
    assert!(err.to_string().contains("fortran_f32.npy"), "{err}");
}

#[test]
fn big_endian_fixture_is_rejected() {
    let err = read_npy(fixture("bigendian_f4.npy")).unwrap_err();
    match &err {
        NpyError::BigEndian { dtype, .. } => assert_eq!(dtype, ">f4"),
        other => panic!("expected BigEndian, got {other}"),
    }
    assert!(err.to_string().contains("bigendian_f4.npy"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = read_npy(fixture("no_such_file.npy")).unwrap_err();
    assert!(matches!(err, NpyError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no_such_file.npy"), "{err}");
}

#[test]
fn round_trip_through_file_for_several_shapes() {
    let dir = temp_dir("roundtrip");
    let shapes: [&[usize]; 5] = [&[], &[7], &[3, 4], &[2, 0, 5], &[2, 3, 4, 5]];
    for (k, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| (i as f32).sin() * 1e3 - 0.1).collect();
        let t = Tensor::from_vec(data, shape);
        let path = dir.join(format!("t{k}.npy"));
        write_npy(&path, &t).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[6..8], &[1, 0], "small headers use version 1.0");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "header padded to 64 like NumPy");
        assert_eq!(bytes[10 + header_len - 1], b'\n');
        let back = read_npy(&path).unwrap();
        assert_eq!(back, t, "shape {shape:?}");
    }
    // No temp files are left behind by the atomic write.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_header_matches_numpy_for_f32_2d() {
    // NumPy's own file for the same array has the same dict text.
    let t = read_npy(fixture("f32_2d.npy")).unwrap();
    let mut ours = Vec::new();
    write_npy_to(&mut ours, &t).unwrap();
    let theirs = std::fs::read(fixture("f32_2d.npy")).unwrap();
    let dict = |b: &[u8]| {
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        String::from_utf8(b[10..10 + len].to_vec())
            .unwrap()
            .trim_end()
            .to_string()
    };
    assert_eq!(dict(&ours), dict(&theirs));
    assert_eq!(ours.len(), theirs.len());
}

#[test]
fn one_element_shape_is_written_as_python_tuple() {
    let mut out = Vec::new();
    write_npy_to(&mut out, &Tensor::from_vec(vec![1.5], &[1])).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("'shape': (1,)"), "{text}");
}

#[test]
fn huge_shape_uses_version_2_header() {
    // 25 000 dims of 1 ("1, " each) make a header over 65535 bytes.
    let shape = vec![1usize; 25_000];
    let t = Tensor::from_vec(vec![4.0], &shape);
    let mut out = Vec::new();
    write_npy_to(&mut out, &t).unwrap();
    assert_eq!(&out[6..8], &[2, 0]);
    let header_len = u32::from_le_bytes([out[8], out[9], out[10], out[11]]) as usize;
    assert_eq!((12 + header_len) % 64, 0);
    let back = read_bytes(&out, "v2.npy").unwrap();
    assert_eq!(back, t);
}

#[test]
fn reads_other_little_endian_dtypes() {
    let h = |d: &str| format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (2,), }}");
    let cases: [(&str, Vec<u8>, [f32; 2]); 5] = [
        ("|b1", vec![0, 1], [0.0, 1.0]),
        ("|i1", vec![0xff, 5], [-1.0, 5.0]),
        (
            "<i2",
            [-300i16, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
            [-300.0, 2.0],
        ),
        (
            "<i4",
            [-7i32, 1 << 20]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            [-7.0, 1048576.0],
        ),
        (
            "<u2",
            [65535u16, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
            [65535.0, 1.0],
        ),
    ];
    for (descr, data, want) in cases {
        let t = read_bytes(&npy_bytes(&h(descr), &data), "d.npy").unwrap();
        assert_eq!(t.data(), &want, "{descr}");
    }
}

// ---------- malformed input: each case has its own variant ----------

const GOOD_HEADER: &str = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";

#[test]
fn good_hand_built_bytes_read() {
    // Control for the error tests below: the same construction, undamaged, reads.
    let t = read_bytes(
        &npy_bytes(GOOD_HEADER, &f32_bytes(&[1.0, 2.0, 3.0, 4.0])),
        "ok.npy",
    )
    .unwrap();
    assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn bad_magic() {
    let mut b = npy_bytes(GOOD_HEADER, &f32_bytes(&[0.0; 4]));
    b[1] = b'X';
    let err = read_bytes(&b, "magic.npy").unwrap_err();
    assert!(matches!(err, NpyError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("magic.npy"), "{err}");
    let err = read_bytes(b"PK\x03\x04 a zip file", "zip.npy").unwrap_err();
    assert!(matches!(err, NpyError::BadMagic { .. }), "{err}");
}

#[test]
fn unsupported_version() {
    let mut b = npy_bytes(GOOD_HEADER, &f32_bytes(&[0.0; 4]));
    b[6] = 4;
    let err = read_bytes(&b, "ver.npy").unwrap_err();
    assert!(
        matches!(
            err,
            NpyError::UnsupportedVersion {
                major: 4,
                minor: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ver.npy"), "{err}");
}

#[test]
fn truncated_header() {
    let b = npy_bytes(GOOD_HEADER, &f32_bytes(&[0.0; 4]));
    for cut in [0, 4, 7, 9, 30] {
        let err = read_bytes(&b[..cut], "cut.npy").unwrap_err();
        assert!(
            matches!(err, NpyError::TruncatedHeader { .. }),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("cut.npy"), "{err}");
    }
}

#[test]
fn truncated_data_reports_expected_and_got() {
    let b = npy_bytes(GOOD_HEADER, &f32_bytes(&[1.0, 2.0, 3.0]));
    let err = read_bytes(&b, "short.npy").unwrap_err();
    match &err {
        NpyError::TruncatedData { expected, got, .. } => assert_eq!((*expected, *got), (16, 12)),
        other => panic!("expected TruncatedData, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("short.npy") && msg.contains("16") && msg.contains("12"),
        "{msg}"
    );
}

#[test]
fn trailing_data() {
    let b = npy_bytes(GOOD_HEADER, &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0]));
    let err = read_bytes(&b, "long.npy").unwrap_err();
    assert!(
        matches!(err, NpyError::TrailingData { extra: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("long.npy"), "{err}");
}

#[test]
fn huge_claimed_shape_fails_fast_without_allocating() {
    // 10^12 f32 elements claimed, 100 bytes present.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }\n";
    let b = npy_bytes(header, &[0u8; 100]);
    let start = Instant::now();
    let err = read_bytes(&b, "huge.npy").unwrap_err();
    assert!(start.elapsed().as_secs_f64() < 1.0);
    match &err {
        NpyError::TruncatedData { expected, got, .. } => {
            assert_eq!(*expected, 4_000_000_000_000);
            assert_eq!(*got, 100);
        }
        other => panic!("expected TruncatedData, got {other}"),
    }
    // Also through a real file.
    let dir = temp_dir("huge");
    let path = dir.join("huge.npy");
    std::fs::write(&path, &b).unwrap();
    let err = read_npy(&path).unwrap_err();
    assert!(matches!(err, NpyError::TruncatedData { .. }), "{err}");
    assert!(err.to_string().contains("huge.npy"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shape_product_overflow() {
    let header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }";
    let err = read_bytes(&npy_bytes(header, &[]), "ovf.npy").unwrap_err();
    assert!(matches!(err, NpyError::ShapeOverflow { .. }), "{err}");
    assert!(err.to_string().contains("ovf.npy"), "{err}");
}

#[test]
fn unsupported_dtype_names_it() {
    let header = "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }";
    let err = read_bytes(&npy_bytes(header, &[0u8; 16]), "cplx.npy").unwrap_err();
    match &err {
        NpyError::UnsupportedDtype { dtype, .. } => assert_eq!(dtype, "<c8"),
        other => panic!("expected UnsupportedDtype, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("cplx.npy") && msg.contains("<c8"), "{msg}");
    // Structured dtypes are a list, not a string.
    let header = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    let err = read_bytes(&npy_bytes(header, &[0u8; 4]), "rec.npy").unwrap_err();
    assert!(matches!(err, NpyError::UnsupportedDtype { .. }), "{err}");
}

#[test]
fn fortran_order_hand_built() {
    let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
    let err = read_bytes(&npy_bytes(header, &[0u8; 16]), "f.npy").unwrap_err();
    assert!(matches!(err, NpyError::FortranOrder { .. }), "{err}");
}

#[test]
fn big_endian_hand_built() {
    let header = "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }";
    let err = read_bytes(&npy_bytes(header, &[0u8; 16]), "be.npy").unwrap_err();
    assert!(matches!(err, NpyError::BigEndian { .. }), "{err}");
    assert!(err.to_string().contains("be.npy"), "{err}");
}

#[test]
fn malformed_header_names_the_key() {
    let cases = [
        ("{'descr': '<f4', 'fortran_order': False}", Some("shape")),
        ("{'descr': '<f4', 'shape': (2,)}", Some("fortran_order")),
        ("{'fortran_order': False, 'shape': (2,)}", Some("descr")),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
            Some("shape"),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}",
            Some("shape"),
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
            Some("fortran_order"),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            Some("x"),
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
            None,
        ),
        ("not a dict at all", None),
        ("", None),
    ];
    for (header, key) in cases {
        let err = read_bytes(&npy_bytes(header, &[0u8; 8]), "hdr.npy").unwrap_err();
        match &err {
            NpyError::MalformedHeader { key: k, .. } => {
                assert_eq!(k.as_deref(), key, "{header}: {err}")
            }
            other => panic!("{header}: expected MalformedHeader, got {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("hdr.npy"), "{msg}");
        if let Some(k) = key {
            assert!(msg.contains(k), "{msg}");
        }
    }
}

#[test]
fn deeply_nested_header_does_not_overflow_the_stack() {
    let header = format!("{{'descr': {}", "(".repeat(100_000));
    let err = read_bytes(&npy_bytes(&header[..60_000], &[]), "deep.npy").unwrap_err();
    assert!(matches!(err, NpyError::MalformedHeader { .. }), "{err}");
}

#[test]
fn arbitrary_garbage_never_panics() {
    // Every prefix and every single-byte corruption of a valid file is an Ok or an Err.
    let good = npy_bytes(GOOD_HEADER, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
    for cut in 0..good.len() {
        assert!(read_bytes(&good[..cut], "p.npy").is_err(), "prefix {cut}");
    }
    for i in 0..good.len() {
        for v in [0u8, b'(', b'\'', 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = read_bytes(&b, "c.npy");
        }
    }
}
