//! `warpgrad reproduce` (under construction in this session).

use crate::error::{msg, CliError};
use clap::Subcommand;

/// Tables that can be reproduced.
#[derive(Subcommand)]
pub enum ReproduceCommand {
    /// Table 1: distorted MNIST.
    Table1,
}

/// `warpgrad reproduce`.
pub fn run(_c: &ReproduceCommand) -> Result<(), CliError> {
    Err(msg("reproduce: not implemented yet"))
}
