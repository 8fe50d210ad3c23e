//! `hoard run`: arguments of [`automation::job`](crate::automation::job).

use clap::Args;

use super::args::CommonOptions;
use crate::automation::job::{self, RunFlags};
use crate::commands::CommandError;

/// `run` (`--debug` and `--progress` are the common options).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// job name under ~/backup_scripts (or $HOARD_CONFIG_DIR), or a path to a job folder or file
    #[arg(long, value_name = "NAME")]
    pub config: String,
    /// start $SHELL with the job's environment instead of running the job
    #[arg(long)]
    pub shell: bool,
    /// skip creating an archive
    #[arg(long)]
    pub nocreate: bool,
    /// skip prune and compact
    #[arg(long)]
    pub nocleanup: bool,
    /// run create and prune with --dry-run; skip compact, check, hooks and pings
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// create the repository, passphrase file and key backup when missing
    #[arg(long)]
    pub init: bool,
    /// print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
    /// write the run's Prometheus metrics to PATH (instead of the job's `metrics:` file)
    #[arg(long = "metrics-file", value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// Runs the job and returns its exit status.
pub fn run(a: RunArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let flags = RunFlags {
        shell: a.shell,
        nocreate: a.nocreate,
        nocleanup: a.nocleanup,
        dry_run: a.dry_run,
        init: a.init,
        json: a.json,
        progress: common.progress,
        metrics_file: a.metrics_file,
    };
    Ok(job::run(&a.config, &flags))
}
