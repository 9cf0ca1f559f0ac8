//! The command line's error: one clear line for the user, never a panic trace.

use std::fmt;

/// What went wrong in a command.
#[derive(Debug)]
pub enum CliError {
    /// Bad input from the user or a file: the message says which.
    Msg(String),
    /// The run was stopped (Ctrl-C) after saving a checkpoint.
    Interrupted(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Msg(m) | CliError::Interrupted(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// Shorthand for a message error.
pub fn msg(m: impl Into<String>) -> CliError {
    CliError::Msg(m.into())
}

macro_rules! from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                CliError::Msg(e.to_string())
            }
        }
    )*};
}
/// A data file over the size limit: the message names the flag that raises it.
impl From<datasets::IdxError> for CliError {
    fn from(e: datasets::IdxError) -> Self {
        match e {
            datasets::IdxError::TooLarge { .. } => CliError::Msg(format!(
                "{e} (raise the limit with --max-decompressed BYTES, e.g. --max-decompressed 2G)"
            )),
            e => CliError::Msg(e.to_string()),
        }
    }
}

impl From<datasets::DatasetError> for CliError {
    fn from(e: datasets::DatasetError) -> Self {
        match e {
            datasets::DatasetError::Idx(e) => e.into(),
            e => CliError::Msg(e.to_string()),
        }
    }
}

from_display!(
    datasets::distort::UnknownVariant,
    stn::UnknownModel,
    layers::CheckpointError,
    layers::OptimError,
    engine::npy::NpyError
);
