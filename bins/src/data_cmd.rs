//! `warpgrad data` (under construction in this session).

use crate::error::{msg, CliError};
use clap::Subcommand;

/// Data commands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Header, type, dimensions and value range of an IDX file.
    Inspect,
}

/// `warpgrad data`.
pub fn run(_c: &DataCommand) -> Result<(), CliError> {
    Err(msg("data: not implemented yet"))
}
