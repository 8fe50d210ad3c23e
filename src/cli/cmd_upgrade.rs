//! `hoard upgrade`: arguments and output of [`commands::upgrade`](crate::commands::upgrade).

use clap::Args;

use super::options::CommonOptions;
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
    /// rewrite repository in place, with no chance of going back to older versions of the repository.
    #[arg(long = "inplace")]
    pub inplace: bool,
    /// Force upgrade
    #[arg(long = "force")]
    pub force: bool,
    /// Enable manifest authentication (in key and cache) (Borg 1.0.9 and later).
    #[arg(long = "tam")]
    pub tam: bool,
    /// check manifest authentication (in key and cache).
    #[arg(long = "check-tam")]
    pub check_tam: bool,
    /// Disable manifest authentication (in key and cache).
    #[arg(long = "disable-tam")]
    pub disable_tam: bool,
    /// check TAM authentication for all archives.
    #[arg(long = "check-archives-tam", conflicts_with = "archives_tam")]
    pub check_archives_tam: bool,
    /// add TAM authentication for all archives.
    #[arg(long = "archives-tam")]
    pub archives_tam: bool,
}

/// Runs `upgrade`.
pub fn run(a: UpgradeArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = repo_location(a.location.as_deref(), common)?;
    if !a.archives_tam && !a.check_archives_tam {
        return run_other(&a, &loc, common);
    }
    let check_only = a.check_archives_tam || a.dry_run;
    let outcome =
        commands::upgrade::archives_tam(&loc, check_only, a.force, common.lock_wait, &confirm)?;
    if outcome.authentication_disabled {
        log::warning("Manifest authentication DISABLED.");
    }
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

/// `upgrade` without the archives-TAM options: `--tam | --check-tam`, `--disable-tam`, or the
/// legacy converters (in borg 1.4.5's order of precedence).
fn run_other(
    a: &UpgradeArgs,
    loc: &crate::location::Location,
    common: &CommonOptions,
) -> Result<i32, CommandError> {
    use commands::upgrade::{ManifestTamAction, TamLine};
    let action = if a.tam || a.check_tam {
        if a.check_tam {
            ManifestTamAction::Check
        } else {
            ManifestTamAction::Require
        }
    } else if a.disable_tam {
        ManifestTamAction::Disable
    } else {
        let outcome =
            commands::upgrade::legacy_upgrade(loc, a.dry_run, a.inplace, common.lock_wait)?;
        if let Some(b) = &outcome.backup {
            log::info(&format!("making a hardlink copy in {}", b.display()));
        }
        for w in &outcome.warnings {
            log::warning(w);
        }
        return Ok(EXIT_SUCCESS);
    };
    let outcome =
        commands::upgrade::manifest_tam(loc, action, a.force, common.lock_wait, &confirm)?;
    if outcome.authentication_disabled {
        log::warning("Manifest authentication DISABLED.");
    }
    for line in &outcome.lines {
        match line {
            TamLine::Out(text) => print_stdout(text),
            TamLine::Warning(text) => log::warning(text),
        }
    }
    Ok(if outcome.warnings() > 0 {
        EXIT_WARNING
    } else {
        EXIT_SUCCESS
    })
}
