//! MNIST loading: the repo's real files and small hand-made directories for
//! every error.

use datasets::idx::{write_idx, IdxArray, IdxData};
use datasets::idx::{IdxError, DEFAULT_MAX_BYTES};
use datasets::mnist::{
    default_data_dir, load_mnist, load_mnist_limited, Mnist, Split, DEFAULT_DATA_DIR,
};
use datasets::DatasetError;
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, unique to this test.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warpgrad-mnist-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an images file of `n` 28×28 images (image i filled with i) and a
/// labels file (label i % 10) under the official test-split names + `suffix`.
fn write_split(dir: &Path, n: usize, suffix: &str) {
    let images: Vec<u8> = (0..n).flat_map(|i| vec![i as u8; 784]).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let img = IdxArray::new(vec![n, 28, 28], IdxData::U8(images)).unwrap();
    let lab = IdxArray::new(vec![n], IdxData::U8(labels)).unwrap();
    write_idx(dir.join(format!("t10k-images-idx3-ubyte{suffix}")), &img).unwrap();
    write_idx(dir.join(format!("t10k-labels-idx1-ubyte{suffix}")), &lab).unwrap();
}

#[test]
fn default_dir_points_at_repo_data() {
    assert!(DEFAULT_DATA_DIR.ends_with("/data/mnist"));
    assert!(default_data_dir().join("SHA256SUMS").is_file());
}

#[test]
fn loads_real_train_split() {
    let m = load_mnist(&default_data_dir(), Split::Train).unwrap();
    assert_eq!(m.len(), 60_000);
    assert_eq!(m.images.len(), 60_000 * 784);
    assert_eq!(
        m.labels[..5],
        [5, 0, 4, 1, 9],
        "the well-known first labels"
    );
    let counts = m.label_counts();
    assert_eq!(counts.iter().sum::<usize>(), 60_000);
    // Published train counts: 5923 zeros, 6742 ones.
    assert_eq!(counts[0], 5923);
    assert_eq!(counts[1], 6742);
    // The first image (a 5) has ink in the middle and a blank border.
    let img = m.image(0);
    assert!(img[14 * 28 + 14..14 * 28 + 18].iter().any(|&p| p > 0));
    assert!(img[..28].iter().all(|&p| p == 0));
}

#[test]
fn loads_real_test_split_and_tensor() {
    let m = load_mnist(&default_data_dir(), Split::Test).unwrap();
    assert_eq!(m.len(), 10_000);
    assert_eq!(m.labels[..3], [7, 2, 1]);
    assert_eq!(m.label_counts().iter().sum::<usize>(), 10_000);
    let small = m.take(8);
    assert_eq!(small.len(), 8);
    assert_eq!(small.image(7), m.image(7));
    let t = small.images_tensor();
    assert_eq!(t.shape(), &[8, 1, 28, 28]);
    let max = t.data().iter().cloned().fold(f32::MIN, f32::max);
    let min = t.data().iter().cloned().fold(f32::MAX, f32::min);
    assert_eq!((min, max), (0.0, 1.0));
    assert_eq!(
        t.at(&[0, 0, 10, 10]),
        m.image(0)[10 * 28 + 10] as f32 / 255.0
    );
}

#[test]
fn loads_raw_files_from_a_data_dir() {
    let dir = temp_dir("raw");
    write_split(&dir, 12, "");
    let m = load_mnist(&dir, Split::Test).unwrap();
    assert_eq!(m.len(), 12);
    assert_eq!(m.image(11), &[11u8; 784][..]);
    assert_eq!(m.label(11), 1);
    assert_eq!(m.take(100).len(), 12, "take saturates");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn raw_file_is_preferred_over_gz() {
    let dir = temp_dir("prefer");
    write_split(&dir, 3, ".gz");
    write_split(&dir, 5, "");
    assert_eq!(load_mnist(&dir, Split::Test).unwrap().len(), 5);
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    // Images now come from the .gz (3) and labels from the raw file (5).
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    assert!(
        matches!(
            e,
            DatasetError::CountMismatch {
                images: 3,
                labels: 5,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("t10k-labels-idx1-ubyte"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_file_names_both_expected_names() {
    let dir = temp_dir("missing");
    let e = load_mnist(&dir, Split::Train).unwrap_err();
    assert!(matches!(e, DatasetError::MissingFile { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte") && msg.contains("train-images-idx3-ubyte.gz"),
        "{msg}"
    );
    // With the images present, the labels file is the one named.
    write_split(&dir, 2, "");
    let e = load_mnist(&dir, Split::Train).unwrap_err();
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
    std::fs::rename(
        dir.join("t10k-images-idx3-ubyte"),
        dir.join("train-images-idx3-ubyte"),
    )
    .unwrap();
    let e = load_mnist(&dir, Split::Train).unwrap_err();
    assert!(e.to_string().contains("train-labels-idx1-ubyte"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_image_shape_or_type_is_rejected() {
    let dir = temp_dir("format");
    write_split(&dir, 2, "");
    let images = dir.join("t10k-images-idx3-ubyte");
    for bad in [
        IdxArray::new(vec![2, 32, 32], IdxData::U8(vec![0; 2 * 1024])).unwrap(),
        IdxArray::new(vec![2, 784], IdxData::U8(vec![0; 2 * 784])).unwrap(),
        IdxArray::new(vec![2, 28, 28], IdxData::F32(vec![0.0; 2 * 784])).unwrap(),
    ] {
        write_idx(&images, &bad).unwrap();
        let e = load_mnist(&dir, Split::Test).unwrap_err();
        assert!(matches!(e, DatasetError::WrongFormat { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("t10k-images-idx3-ubyte") && msg.contains("[n, 28, 28]"),
            "{msg}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wrong_label_shape_is_rejected() {
    let dir = temp_dir("labelfmt");
    write_split(&dir, 2, "");
    let bad = IdxArray::new(vec![2, 1], IdxData::U8(vec![0, 1])).unwrap();
    write_idx(dir.join("t10k-labels-idx1-ubyte"), &bad).unwrap();
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    assert!(matches!(e, DatasetError::WrongFormat { .. }), "{e}");
    assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn label_out_of_range_is_rejected() {
    let dir = temp_dir("label");
    write_split(&dir, 3, "");
    let bad = IdxArray::new(vec![3], IdxData::U8(vec![1, 10, 2])).unwrap();
    write_idx(dir.join("t10k-labels-idx1-ubyte"), &bad).unwrap();
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    assert!(
        matches!(
            e,
            DatasetError::BadLabel {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_idx_file_surfaces_as_idx_error_naming_it() {
    let dir = temp_dir("corrupt");
    write_split(&dir, 2, "");
    let path = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    assert!(matches!(e, DatasetError::Idx(_)), "{e}");
    assert!(e.to_string().contains("t10k-images-idx3-ubyte"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_dataset_helpers() {
    let m = Mnist {
        images: vec![],
        labels: vec![],
        n: 0,
    };
    assert!(m.is_empty());
    assert_eq!(m.images_tensor().shape(), &[0, 1, 28, 28]);
}

/// The header of a u8 IDX file with these dims, and no data.
fn u8_header(dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn images_over_the_limit_are_refused_from_the_header() {
    // 700 000 images claimed (549 MB, over the 512 MiB default), with the
    // matching labels: refused before any image byte is looked for.
    let dir = temp_dir("limit");
    let n = 700_000u32;
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), u8_header(&[n, 28, 28])).unwrap();
    let mut labels = u8_header(&[n]);
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    let want = 16 + 784 * n as u64;
    match &e {
        DatasetError::Idx(IdxError::TooLarge { bytes, limit, file }) => {
            assert_eq!((*bytes, *limit), (want, DEFAULT_MAX_BYTES));
            assert!(file.ends_with("t10k-images-idx3-ubyte"), "{file}");
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    // A raised limit gets past the header, to the missing data.
    let e = load_mnist_limited(&dir, Split::Test, 1 << 30).unwrap_err();
    assert!(
        matches!(e, DatasetError::Idx(IdxError::DataTruncated { got: 0, .. })),
        "{e}"
    );
    // A lowered one refuses even the labels (8 + 700 000 bytes).
    let e = load_mnist_limited(&dir, Split::Test, 1000).unwrap_err();
    assert!(
        matches!(&e, DatasetError::Idx(IdxError::TooLarge { file, .. }) if file.ends_with("t10k-labels-idx1-ubyte")),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn counts_are_compared_from_the_headers_before_reading_data() {
    // Images claim 300 000 (within the limit) but hold none; labels hold 5.
    // The mismatch is reported, not the missing 235 MB of pixels.
    let dir = temp_dir("headers");
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        u8_header(&[300_000, 28, 28]),
    )
    .unwrap();
    let mut labels = u8_header(&[5]);
    labels.extend([1, 2, 3, 4, 5]);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let e = load_mnist(&dir, Split::Test).unwrap_err();
    assert!(
        matches!(
            e,
            DatasetError::CountMismatch {
                images: 300_000,
                labels: 5,
                ..
            }
        ),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
