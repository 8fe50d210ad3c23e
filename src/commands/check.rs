//! `check`: the repository part (segments, CRCs, index) and, with the archive layer, the
//! archives part. Returns a report; the CLI prints it.

use crate::location::Location;
use crate::repo::CheckReport;

use super::check_archives::{self, ArchiveCheckOptions, ProgressSink, Selection};

use super::common::{self, Access, CommandError, LockSpec, Result};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// `--repository-only`
    pub repository_only: bool,
    /// `--archives-only`
    pub archives_only: bool,
    /// `--verify-data`
    pub verify_data: bool,
    /// `--repair`
    pub repair: bool,
    /// `--save-space`
    pub save_space: bool,
    /// `--max-duration`
    pub max_duration: u64,
    /// True if any archive selection was given (`--first`, `--last`, `-a`, `-P`).
    pub has_archive_filter: bool,
    /// Which archives the archives part checks (`REPO::ARCHIVE`, `-a`/`-P`, `--sort-by`,
    /// `--first`, `--last`).
    pub selection: Selection,
    /// Worker threads for `--verify-data` and the archive decoding.
    pub workers: usize,
}

/// The outcome: repository part, and whether everything was fine (the archives part logs its
/// findings as it goes).
#[derive(Debug, Clone, Default)]
pub struct CheckOutcome {
    /// The repository check's findings, if it ran.
    pub repository: Option<CheckReport>,
    /// True if no errors were found.
    pub ok: bool,
}

/// Validates option combinations exactly as borg does (each is an error, exit 2).
pub fn validate(opts: &CheckOptions) -> Result<()> {
    if opts.repository_only && (opts.verify_data || opts.has_archive_filter) {
        return Err(CommandError::new(
            "--repository-only contradicts --first, --last, --glob-archives, --prefix and --verify-data arguments.",
        ));
    }
    if opts.repair && opts.max_duration > 0 {
        return Err(CommandError::new(
            "--repair does not allow --max-duration argument.",
        ));
    }
    if opts.max_duration > 0 && !opts.repository_only {
        return Err(CommandError::new(
            "--repository-only is required for --max-duration support.",
        ));
    }
    Ok(())
}

/// Runs the checks on `loc`. `on_repository` receives the repository report as soon as that
/// part is done (before the archives part starts logging); `progress` receives progress
/// updates.
pub fn run(
    loc: &Location,
    opts: &CheckOptions,
    lock: LockSpec,
    on_repository: &mut dyn FnMut(&CheckReport),
    progress: &mut ProgressSink<'_>,
) -> Result<CheckOutcome> {
    validate(opts)?;
    let access = Access {
        exclusive: true,
        lock_wait: lock.wait,
        lock: lock.lock,
    };
    let mut repo = common::open_repository(loc, &access)?;
    let mut outcome = CheckOutcome {
        repository: None,
        ok: true,
    };
    if !opts.archives_only {
        let report = repo.check_with_progress(opts.repair, opts.max_duration, progress)?;
        on_repository(&report);
        outcome.ok &= report.ok;
        outcome.repository = Some(report);
        if !outcome.ok {
            // borg stops here with exit code 1 when the repository part failed.
            return Ok(outcome);
        }
    }
    if !opts.repository_only {
        let archive_opts = ArchiveCheckOptions {
            repair: opts.repair,
            verify_data: opts.verify_data,
            save_space: opts.save_space,
            selection: opts.selection.clone(),
            location: loc.canonical(),
            env: loc.options.env.clone(),
            workers: opts.workers,
        };
        outcome.ok &= check_archives::check_archives(repo, &archive_opts, progress)?;
    }
    Ok(outcome)
}
