//! `warpgrad viz` (under construction in this session).

use crate::error::{msg, CliError};

/// `warpgrad viz`.
pub fn run(_a: &crate::VizArgs) -> Result<(), CliError> {
    Err(msg("viz: not implemented yet"))
}
