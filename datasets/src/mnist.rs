//! MNIST: loading the official IDX files (raw or `.gz`) with every check a
//! corrupted or mismatched download would fail.

use crate::idx::{IdxHeader, IdxStream, IdxType, DEFAULT_MAX_BYTES};
use crate::DatasetError;
use engine::Tensor;
use std::path::{Path, PathBuf};

/// The repo's MNIST directory (`data/mnist` at the workspace root), where the
/// checked-in `.gz` files live.
pub const DEFAULT_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist");

/// [`DEFAULT_DATA_DIR`] as a path.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

/// Image side length.
pub const SIDE: usize = 28;

/// Number of classes (digits 0 to 9).
pub const CLASSES: usize = 10;

/// Which half of MNIST to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 60 000 training images (`train-*`).
    Train,
    /// The 10 000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// The official (uncompressed) images file name.
    pub fn images_file(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// The official (uncompressed) labels file name.
    pub fn labels_file(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

/// One MNIST split: `n` 28×28 u8 images (row-major, concatenated) and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// `n * 28 * 28` pixel bytes, image after image.
    pub images: Vec<u8>,
    /// `n` labels, each in 0..=9.
    pub labels: Vec<u8>,
    /// Number of examples.
    pub n: usize,
}

impl Mnist {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The 784 pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.n, "image {i} out of range for {} images", self.n);
        &self.images[i * SIDE * SIDE..(i + 1) * SIDE * SIDE]
    }

    /// The label of example `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The first `n` examples (all of them if `n >= self.len()`).
    pub fn take(&self, n: usize) -> Mnist {
        let n = n.min(self.n);
        Mnist {
            images: self.images[..n * SIDE * SIDE].to_vec(),
            labels: self.labels[..n].to_vec(),
            n,
        }
    }

    /// Examples `start..end` (clamped to the split).
    pub fn range(&self, start: usize, end: usize) -> Mnist {
        let end = end.min(self.n);
        let start = start.min(end);
        Mnist {
            images: self.images[start * SIDE * SIDE..end * SIDE * SIDE].to_vec(),
            labels: self.labels[start..end].to_vec(),
            n: end - start,
        }
    }

    /// The images as an f32 tensor of shape `[n, 1, 28, 28]`, scaled to [0, 1].
    pub fn images_tensor(&self) -> Tensor {
        let data = self.images.iter().map(|&p| p as f32 / 255.0).collect();
        Tensor::from_vec(data, &[self.n, 1, SIDE, SIDE])
    }

    /// How many examples carry each label.
    pub fn label_counts(&self) -> [usize; CLASSES] {
        let mut c = [0; CLASSES];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }
}

/// `dir/name` if it exists, else `dir/name.gz` if that exists, else an error
/// naming both. The raw file wins when both exist: it is what a user unpacked.
fn locate(dir: &Path, name: &str) -> Result<PathBuf, DatasetError> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if raw.is_file() {
        Ok(raw)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(DatasetError::MissingFile {
            dir: dir.to_path_buf(),
            tried: vec![raw, gz],
        })
    }
}

/// Checks the header says u8 with dims `want` (`None` matches any length).
fn check_format(
    file: &Path,
    h: &IdxHeader,
    want: &[Option<usize>],
    what: &str,
) -> Result<(), DatasetError> {
    let dims_ok = h.dims.len() == want.len()
        && h.dims
            .iter()
            .zip(want)
            .all(|(&d, w)| w.iter().all(|&w| w == d));
    if h.ty != IdxType::U8 || !dims_ok {
        return Err(DatasetError::WrongFormat {
            file: file.to_path_buf(),
            expected: what.to_string(),
            found: format!("{:?} with dims {:?}", h.ty, h.dims),
        });
    }
    Ok(())
}

/// Loads one MNIST split from `dir`, which holds the official file names,
/// each raw or gzip-compressed (`.gz`); a file over [`DEFAULT_MAX_BYTES`]
/// decompressed is refused (see [`load_mnist_limited`]).
pub fn load_mnist(dir: &Path, split: Split) -> Result<Mnist, DatasetError> {
    load_mnist_limited(dir, split, DEFAULT_MAX_BYTES)
}

/// [`load_mnist`] refusing either file over `max_bytes` decompressed.
///
/// Both headers are checked before any data is read: images a u8 IDX of
/// shape `[n, 28, 28]`, labels a u8 IDX of shape `[n]` with the same `n`,
/// each within the limit; then every label must be in 0..=9.
pub fn load_mnist_limited(dir: &Path, split: Split, max_bytes: u64) -> Result<Mnist, DatasetError> {
    let images_path = locate(dir, split.images_file())?;
    let labels_path = locate(dir, split.labels_file())?;
    let images = IdxStream::open(&images_path)?;
    check_format(
        &images_path,
        images.header(),
        &[None, Some(SIDE), Some(SIDE)],
        "u8 images of shape [n, 28, 28] (type 0x08, 3 dims)",
    )?;
    let labels = IdxStream::open(&labels_path)?;
    check_format(
        &labels_path,
        labels.header(),
        &[None],
        "u8 labels of shape [n] (type 0x08, 1 dim)",
    )?;
    let n = images.header().dims[0];
    let n_labels = labels.header().dims[0];
    if n_labels != n {
        return Err(DatasetError::CountMismatch {
            images_file: images_path,
            images: n,
            labels_file: labels_path,
            labels: n_labels,
        });
    }
    let labels = labels.read_all(max_bytes)?;
    let labels = labels.into_u8().expect("checked u8 above");
    if let Some(index) = labels.iter().position(|&l| l as usize >= CLASSES) {
        return Err(DatasetError::BadLabel {
            file: labels_path,
            index,
            label: labels[index],
        });
    }
    let images = images.read_all(max_bytes)?;
    let images = images.into_u8().expect("checked u8 above");
    Ok(Mnist { images, labels, n })
}
