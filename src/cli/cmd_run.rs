//! `hoard run`: arguments of [`automation::job`](crate::automation::job), and the step
//! runner it is given: hoard's own parser and dispatcher, in this process.

use clap::Args;

use super::options::CommonOptions;
use crate::automation::job::{self, RunFlags};
use crate::automation::step::{Outcome, StepEnv, StepRunner};
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
    let runner = InProcess {
        outer: common.clone(),
    };
    Ok(job::run(&a.config, &flags, &runner))
}

/// Runs a job's steps with hoard's own command line, in this process. A step's options are
/// resolved with the job's environment; the remote options and `--workers` of the `run`
/// command itself (`outer`) hold for every step.
#[derive(Debug)]
pub struct InProcess {
    /// The common options of `hoard run`.
    pub outer: CommonOptions,
}

/// The first line of a parse error, without clap's `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid option")
        .trim_start_matches("error: ")
        .to_string()
}

/// A runner that only checks command lines with hoard's parser and never runs one: for
/// loading a job configuration without running it (the `job_yaml` fuzz target).
pub struct ParseOnly;

impl StepRunner for ParseOnly {
    fn check(&self, argv: &[String]) -> Result<(), String> {
        super::parse_argv(argv)
            .map(|_| ())
            .map_err(|e| first_line(&e))
    }

    fn run(&self, _argv: &[String], _env: &StepEnv) -> Outcome {
        Outcome {
            code: 2,
            message: Some("this runner does not run commands".into()),
            msgid: None,
        }
    }
}

impl StepRunner for InProcess {
    fn check(&self, argv: &[String]) -> Result<(), String> {
        super::parse_argv(argv)
            .map(|_| ())
            .map_err(|e| first_line(&e))
    }

    fn run(&self, argv: &[String], env: &StepEnv) -> Outcome {
        let (cmd, mut common) = match super::parse_argv(argv) {
            Ok(c) => c,
            Err(e) => {
                return Outcome {
                    code: 2,
                    message: Some(first_line(&e)),
                    msgid: None,
                }
            }
        };
        let resolved = common.resolve(env, Some(&self.outer));
        match resolved.and_then(|()| super::run_command(cmd, &common)) {
            Ok(code) => Outcome {
                code,
                message: None,
                msgid: None,
            },
            Err(e) => Outcome {
                code: e.exit_code.max(2),
                message: Some(e.message),
                msgid: e.msgid,
            },
        }
    }
}
