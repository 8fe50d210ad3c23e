//! `hoard compact`: arguments and output of [`commands::compact`](crate::commands::compact).

use clap::Args;

use super::options::CommonOptions;
use super::progress_view::{Display, View};
use super::{repo_location, EXIT_SUCCESS};
use crate::commands::{self, CommandError};

/// `compact`
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// repository to compact
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// do nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// cleanup commit-only 17-byte segment files
    #[arg(long = "cleanup-commits")]
    pub cleanup_commits: bool,
    /// set minimum threshold for saved space in PERCENT (Default: 10)
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 10,
        allow_negative_numbers = true
    )]
    pub threshold: i64,
}

/// Runs `compact`; freed space is logged by the repository layer at INFO (`-v`).
pub fn run(a: CompactArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    let opts = commands::compact::CompactOptions {
        threshold_percent: a.threshold,
        cleanup_commits: a.cleanup_commits,
        dry_run: a.dry_run,
        progress: View::new(Display::for_process(common.progress), common.iec).sink(),
    };
    commands::compact::run(&loc, &opts, common.lock_wait)?;
    Ok(EXIT_SUCCESS)
}
