//! The errors of checkpoint files and of restoring saved state.
//!
//! In a file of its own because both [`crate::checkpoint`] (reading files)
//! and [`crate::optim`] / [`crate::ema`] (checking restored state) return
//! them; neither imports the other for it.

use std::fmt;
use std::path::PathBuf;

/// What went wrong with a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointErrorKind {
    /// Reading or writing failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        message: String,
    },
    /// The file ends before the length its header promises.
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The file is longer than its header says.
    TrailingData {
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// Not a warpgrad checkpoint.
    BadMagic {
        /// The first 8 bytes found.
        found: [u8; 8],
    },
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The stored checksum does not match the contents (corruption).
    ChecksumMismatch {
        /// CRC-32 stored in the file.
        stored: u32,
        /// CRC-32 of the contents.
        computed: u32,
    },
    /// The checksum matches but the body is inconsistent.
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// A tensor the model (or optimiser) needs is not in the file.
    MissingTensor {
        /// Its name.
        name: String,
    },
    /// The file holds a tensor the model (or optimiser) does not have.
    UnexpectedTensor {
        /// Its name.
        name: String,
    },
    /// A tensor has another shape than the model's.
    ShapeMismatch {
        /// Its name.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A named word (counter, RNG state) is not in the file.
    MissingWord {
        /// Its name.
        name: String,
    },
}

impl fmt::Display for CheckpointErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CheckpointErrorKind::*;
        match self {
            Io { op, message } => write!(f, "{op} failed: {message}"),
            Truncated { expected, actual } => {
                write!(f, "truncated: {actual} bytes, the header needs {expected}")
            }
            TrailingData { expected, actual } => write!(
                f,
                "{actual} bytes but the header says {expected}: trailing data"
            ),
            BadMagic { found } => write!(f, "not a warpgrad checkpoint (magic {found:02x?})"),
            UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is not supported (this build reads up to {supported})"
            ),
            ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: stored CRC-32 {stored:08x}, contents give {computed:08x} (file corrupt)"
            ),
            Malformed { what } => write!(f, "malformed body: {what}"),
            MissingTensor { name } => write!(f, "tensor {name:?} is missing"),
            UnexpectedTensor { name } => write!(f, "unexpected tensor {name:?}"),
            ShapeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor {name:?} has shape {found:?}, the model needs {expected:?}"
            ),
            MissingWord { name } => write!(f, "word {name:?} is missing"),
        }
    }
}

/// A checkpoint error, naming the file.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointError {
    /// The file involved (empty for an in-memory checkpoint).
    pub path: PathBuf,
    /// What went wrong.
    pub kind: CheckpointErrorKind,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint {}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for CheckpointError {}
