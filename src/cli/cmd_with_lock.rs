//! `hoard with-lock`: arguments of [`commands::with_lock`](crate::commands::with_lock).

use clap::Args;

use super::options::CommonOptions;
use super::repo_location;
use crate::commands::{self, CommandError};

/// `with-lock`
#[derive(Debug, Args)]
pub struct WithLockArgs {
    /// repository to lock
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// command to run
    #[arg(value_name = "COMMAND")]
    pub command: String,
    /// command arguments
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// Runs the command with the lock held and returns its exit code.
pub fn run(a: WithLockArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(Some(&a.location), common)?;
    commands::with_lock::run(&loc, &a.command, &a.args, common.lock_wait)
}
