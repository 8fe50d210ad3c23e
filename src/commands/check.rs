//! `check`: the repository part (segments, CRCs, index) and, with the archive layer, the
//! archives part, whose `--verify-data` may be sliced (`--max-duration`, resumed by the next
//! run; [`super::check_verify`]). Also `--coverage`: how much was verified recently. Returns
//! a report; the CLI prints it.

use crate::location::Location;
use crate::repo::CheckReport;

use super::check_archives::{self, ArchiveCheckOptions, ProgressSink, Selection};
use super::check_verify::VerifyLimits;
use super::verify_state::{Coverage, VerifyState};

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
    /// `--max-duration`: a partial repository check; with `--verify-data` also the data
    /// verification's time limit (hoard's extension).
    pub max_duration: u64,
    /// Hidden `--hoard-verify-max-segments`: with `--verify-data --max-duration`, also stop
    /// after this many segments (a deterministic limit for tests). 0: none.
    pub verify_max_segments: u64,
    /// The window of the coverage figure the verification logs at its end, days.
    pub coverage_days: u64,
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
    // hoard extends --max-duration to --verify-data (a verification slice, resumed by the
    // next run); every other combination borg refuses stays refused with borg's words.
    if opts.max_duration > 0 && !opts.repository_only && !opts.verify_data {
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
            verify_limits: VerifyLimits {
                max_duration: opts.max_duration,
                max_units: opts.verify_max_segments,
                coverage_days: opts.coverage_days,
            },
        };
        outcome.ok &= check_archives::check_archives(repo, &archive_opts, progress)?;
    }
    Ok(outcome)
}

/// `check --coverage`: how much of the repository's data was verified (without error) within
/// the last `days` days, from the client's verification record; verifies nothing. Opens the
/// repository with a shared lock to learn its segments (or, over `borg serve`, its object
/// count). No key is needed.
pub fn coverage(loc: &Location, lock: LockSpec, days: u64) -> Result<Coverage> {
    let access = Access {
        exclusive: false,
        lock_wait: lock.wait,
        lock: lock.lock,
    };
    let mut repo = common::open_repository(loc, &access)?;
    let state = VerifyState::load(&VerifyState::path_for(&repo.id())).map_err(CommandError::new)?;
    let now = chrono::Utc::now();
    Ok(match repo.segments()? {
        Some(segments) => state.coverage(&segments, now, days),
        None => state.objects_coverage(repo.len()? as u64, now, days),
    })
}
