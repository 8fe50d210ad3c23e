//! `version`: the client and server versions.

use clap::Args;

use crate::commands::{self, CommandError};

use super::options::CommonOptions;
use super::{print_stdout, repo_location, EXIT_SUCCESS};

/// `version [REPOSITORY]`
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// repository (used to determine client/server situation)
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
}

/// Runs `version`; returns the exit code.
pub fn run(a: VersionArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let lock_wait = common.lock_wait;
    let loc = repo_location(a.location.as_deref(), common)?;
    let v = commands::version::run(&loc, lock_wait)?;
    print_stdout(&format!(
        "{} / {}",
        crate::version::format_version(&v.client),
        crate::version::format_version(&v.server)
    ));
    Ok(EXIT_SUCCESS)
}
