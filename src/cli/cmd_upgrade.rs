//! `hoard upgrade`: arguments and output of [`commands::upgrade`](crate::commands::upgrade).

use clap::Args;

use super::args::CommonOptions;
use super::{confirm, log, print_stdout, repo_location, EXIT_SUCCESS, EXIT_WARNING};
use crate::commands::{self, CommandError};

/// `upgrade`
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// path to the repository to be upgraded
    #[arg(value_name = "REPOSITORY")]
    pub location: Option<String>,
    /// do not change repository
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// check TAM authentication for all archives.
    #[arg(long = "check-archives-tam", conflicts_with = "archives_tam")]
    pub check_archives_tam: bool,
    /// add TAM authentication for all archives.
    #[arg(long = "archives-tam")]
    pub archives_tam: bool,
}

/// Runs `upgrade`.
pub fn run(a: UpgradeArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref())?;
    if !a.archives_tam && !a.check_archives_tam {
        return Err(commands::upgrade::nothing_to_do());
    }
    let check_only = a.check_archives_tam || a.dry_run;
    let outcome = commands::upgrade::archives_tam(&loc, check_only, common.lock_wait, &confirm)?;
    for line in &outcome.lines {
        print_stdout(&line.text());
    }
    let issues = outcome.issues();
    if check_only {
        if issues > 0 {
            log::warning(&format!("Found {issues} archives with TAM issues!"));
            return Ok(EXIT_WARNING);
        }
        print_stdout("All archives are TAM authenticated.");
        return Ok(EXIT_SUCCESS);
    }
    let unfixed = outcome.unfixed();
    if unfixed > 0 {
        log::warning(&format!(
            "{unfixed} archives still have TAM issues: their contents did not check out, so they were not authenticated (see above)."
        ));
        return Ok(EXIT_WARNING);
    }
    if issues > 0 {
        print_stdout(&format!("Fixed {issues} archives with TAM issues!"));
        print_stdout("All archives are TAM authenticated now.");
    } else {
        print_stdout("All archives are TAM authenticated.");
    }
    Ok(EXIT_SUCCESS)
}
