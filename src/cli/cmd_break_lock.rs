//! `break-lock`.

use crate::commands::{self, CommandError};

use super::options::CommonOptions;
use super::options::RepoArg;
use super::{repo_location, EXIT_SUCCESS};

/// Runs `break-lock`; returns the exit code.
pub fn run(a: RepoArg, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    commands::break_lock::run(&loc)?;
    Ok(EXIT_SUCCESS)
}
