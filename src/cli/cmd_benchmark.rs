//! `hoard benchmark crud|cpu`: arguments and output of
//! [`commands::benchmark`](crate::commands::benchmark). `crud` runs `create`, `extract` and
//! `delete` in this process with the benchmark's own common options (`--rsh`,
//! `--remote-path`, lock wait …), as borg does.

use clap::{Args, Subcommand};

use super::options::CommonOptions;
use super::{print_stdout, repo_location, run_command, EXIT_SUCCESS};
use crate::commands::{self, CommandError};

/// `benchmark …`
#[derive(Debug, Subcommand)]
pub enum BenchmarkCommand {
    /// benchmarks borg CRUD (create, extract, update, delete).
    Crud(CrudArgs),
    /// benchmarks the building blocks (chunker, hashes, encryption, compression); hoard only.
    Cpu,
}

/// `benchmark crud`
#[derive(Debug, Args)]
pub struct CrudArgs {
    /// repository to use for benchmark (must exist)
    #[arg(value_name = "REPOSITORY")]
    pub location: String,
    /// path where to create benchmark input data
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// Runs `benchmark crud` or `benchmark cpu`.
pub fn run(cmd: BenchmarkCommand, common: &CommonOptions) -> Result<i32, CommandError> {
    let mut say = |line: &str| print_stdout(line);
    match cmd {
        BenchmarkCommand::Crud(a) => {
            let loc = repo_location(Some(&a.location), common)?;
            // the repository as typed: the commands parse it again
            let repo = loc.raw_repo.clone();
            let test_mode = std::env::var_os("_BORG_BENCHMARK_CRUD_TEST").is_some();
            let mut runner = |argv: &[String]| -> Result<i32, CommandError> {
                let full = std::iter::once("hoard".to_string()).chain(argv.iter().cloned());
                let (cmd, _) = super::parse_argv(full)
                    .map_err(|e| CommandError::new(format!("benchmark crud: {e}")))?;
                run_command(cmd, common)
            };
            commands::benchmark::crud(
                &repo,
                std::path::Path::new(&a.path),
                test_mode,
                &mut runner,
                &mut say,
            )?;
        }
        BenchmarkCommand::Cpu => commands::benchmark::cpu(&mut say)?,
    }
    Ok(EXIT_SUCCESS)
}
