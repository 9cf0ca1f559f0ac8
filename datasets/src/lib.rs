//! # datasets
//!
//! The IDX file format ([`idx`]), MNIST ([`mnist`]) and the paper's
//! distorted variants ([`distort`]).

pub mod distort;
pub mod idx;
pub mod mnist;

pub use distort::{Batch, DistortedMnist, Distortions, Variant, TEST_EPOCH};
pub use idx::{
    read_idx, read_idx_from, read_idx_from_limited, read_idx_limited, write_idx, write_idx_to,
    IdxArray, IdxData, IdxError, IdxHeader, IdxStream, IdxType, DEFAULT_MAX_BYTES,
};
pub use mnist::{default_data_dir, load_mnist, load_mnist_limited, Mnist, Split, DEFAULT_DATA_DIR};

use std::fmt;
use std::path::PathBuf;

/// Why a dataset could not be loaded. Every variant names the file(s).
#[derive(Debug)]
pub enum DatasetError {
    /// A file could not be read as IDX.
    Idx(IdxError),
    /// Neither the raw nor the `.gz` form of a required file exists.
    MissingFile {
        /// The directory searched.
        dir: PathBuf,
        /// The paths tried, in order of preference.
        tried: Vec<PathBuf>,
    },
    /// A file is valid IDX but not the type or shape the dataset needs.
    WrongFormat {
        /// The file involved.
        file: PathBuf,
        /// What the dataset needs.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The images and labels files hold different numbers of examples.
    CountMismatch {
        /// The images file.
        images_file: PathBuf,
        /// Its number of images.
        images: usize,
        /// The labels file.
        labels_file: PathBuf,
        /// Its number of labels.
        labels: usize,
    },
    /// A label is outside the valid class range.
    BadLabel {
        /// The labels file.
        file: PathBuf,
        /// Index of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::Idx(e) => e.fmt(f),
            DatasetError::MissingFile { dir, tried } => {
                let names: Vec<String> = tried
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                write!(
                    f,
                    "{}: missing dataset file: expected one of {}",
                    dir.display(),
                    names.join(" or ")
                )
            }
            DatasetError::WrongFormat {
                file,
                expected,
                found,
            } => write!(f, "{}: expected {expected}, found {found}", file.display()),
            DatasetError::CountMismatch {
                images_file,
                images,
                labels_file,
                labels,
            } => write!(
                f,
                "{} holds {images} images but {} holds {labels} labels",
                images_file.display(),
                labels_file.display()
            ),
            DatasetError::BadLabel { file, index, label } => write!(
                f,
                "{}: label {index} is {label}, expected 0 to 9",
                file.display()
            ),
        }
    }
}

impl std::error::Error for DatasetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DatasetError::Idx(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IdxError> for DatasetError {
    fn from(e: IdxError) -> Self {
        DatasetError::Idx(e)
    }
}
