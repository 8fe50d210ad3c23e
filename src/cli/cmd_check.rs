//! `check`: arguments, the repair question and the progress lines around [`commands::check`],
//! and the `--coverage` report.

use clap::Args;

use crate::commands::{self, CommandError};

use super::options::ArchiveFilter;
use super::options::CommonOptions;
use super::progress_view::{Display, View};
use super::{ask_yes, cancelled_by_user, location, log, print_stdout, EXIT_SUCCESS, EXIT_WARNING};

/// `check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// repository or archive to check consistency of
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// only perform repository checks
    #[arg(long = "repository-only")]
    pub repository_only: bool,
    /// only perform archives checks
    #[arg(long = "archives-only")]
    pub archives_only: bool,
    /// perform cryptographic archive data integrity verification
    #[arg(long = "verify-data")]
    pub verify_data: bool,
    /// attempt to repair any inconsistencies found
    #[arg(long)]
    pub repair: bool,
    /// work slower, but using less space
    #[arg(long = "save-space")]
    pub save_space: bool,
    /// do only a partial repo check for max. SECONDS seconds (Default: unlimited); with
    /// --verify-data, also verify data for at most SECONDS seconds, least recently verified
    /// segments first (the next run continues)
    #[arg(long = "max-duration", value_name = "SECONDS", default_value_t = 0)]
    pub max_duration: u64,
    /// report how much of the repository's data --verify-data verified within the last
    /// --coverage-days days (bytes, percent, segments); checks nothing
    #[arg(long, conflicts_with_all = ["repair", "max_duration"])]
    pub coverage: bool,
    /// the window of --coverage (and of the coverage line --verify-data logs), days
    #[arg(long = "coverage-days", value_name = "DAYS", default_value_t = commands::verify_state::DEFAULT_COVERAGE_DAYS)]
    pub coverage_days: u64,
    /// tests: with --verify-data --max-duration, also stop after N segments (objects over
    /// borg serve), a limit that does not depend on the clock
    #[arg(
        long = "hoard-verify-max-segments",
        value_name = "N",
        default_value_t = 0,
        hide = true
    )]
    pub verify_max_segments: u64,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
}

/// Runs `check`; returns the exit code.
pub fn run(a: CheckArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = location(a.location.as_deref(), common)?;
    if a.coverage {
        let c = commands::check::coverage(&loc, common.lock_spec(), a.coverage_days)?;
        print_stdout(&coverage_text(&c));
        return Ok(EXIT_SUCCESS);
    }
    let glob = match (&a.filter.glob_archives, &a.filter.prefix) {
        (Some(g), _) => Some(g.clone()),
        (None, Some(p)) => Some(format!("{p}*")),
        (None, None) => None,
    };
    let opts = commands::check::CheckOptions {
        repository_only: a.repository_only,
        archives_only: a.archives_only,
        verify_data: a.verify_data,
        repair: a.repair,
        save_space: a.save_space,
        max_duration: a.max_duration,
        verify_max_segments: a.verify_max_segments,
        coverage_days: a.coverage_days,
        has_archive_filter: a.filter.first.is_some()
            || a.filter.last.is_some()
            || a.filter.glob_archives.is_some()
            || a.filter.prefix.is_some(),
        selection: commands::check_archives::Selection {
            archive: loc.archive.clone(),
            glob,
            sort_by: a.filter.sort_by.clone(),
            first: a.filter.first,
            last: a.filter.last,
        },
        workers: common.worker_count,
    };
    if opts.repair
            && !ask_yes(
                "This is a potentially dangerous function.\ncheck --repair might lead to data loss (for kinds of corruption it is not\ncapable of dealing with). BE VERY CAREFUL!\n\nType 'YES' if you understand this and want to continue: ",
                "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING",
                &["YES"],
            )
        {
            return Err(cancelled_by_user());
        }
    commands::check::validate(&opts)?;
    let mut print_repository = |report: &crate::repo::CheckReport| {
        // A remote check reports through the server's log lines ("Remote: …").
        if report.messages.is_empty() {
            return;
        }
        log::log(
            log::Level::Info,
            "borg.repository",
            None,
            "Starting repository check",
        );
        let last = report.messages.len().saturating_sub(1);
        for (i, m) in report.messages.iter().enumerate() {
            let level = if i == last && report.errors == 0 {
                log::Level::Info
            } else {
                log::Level::Error
            };
            log::log(level, "borg.repository", None, m);
        }
    };
    // borg's records with -p; hoard's line on a terminal (see `progress_view`)
    let view = View::new(Display::for_process(common.progress), common.iec);
    let mut progress = |ev: &commands::check_archives::ProgressEvent| view.event(ev);
    let outcome = commands::check::run(
        &loc,
        &opts,
        common.lock_spec(),
        &mut print_repository,
        &mut progress,
    )?;
    Ok(if outcome.ok {
        EXIT_SUCCESS
    } else {
        EXIT_WARNING
    })
}

/// The `--coverage` report.
fn coverage_text(c: &commands::verify_state::Coverage) -> String {
    use crate::units::format_file_size;
    let size = |n: u64| format_file_size(n.into(), false);
    let pct = c.ratio() * 100.0;
    let mut lines = Vec::new();
    if c.by_segment {
        lines.push(format!(
            "Verified within the last {} days: {pct:.1} % of the data",
            c.days
        ));
        lines.push(format!(
            "Data verified: {} of {}",
            size(c.recent_bytes),
            size(c.total_bytes)
        ));
        lines.push(format!(
            "Segments verified: {} of {}",
            c.recent_segments, c.total_segments
        ));
        lines.push(format!(
            "Never verified (or changed since): {} segments, {}",
            c.never_segments,
            size(c.never_bytes)
        ));
    } else {
        lines.push(format!(
            "Verified within the last {} days: about {pct:.1} % of the objects",
            c.days
        ));
        lines.push(format!(
            "Objects verified: about {} of {} (borg serve tells no segments: an estimate from object counts)",
            c.recent_objects, c.total_objects
        ));
    }
    if let Some(t) = c.oldest {
        lines.push(format!(
            "Oldest verification on record: {}",
            commands::verify_state::format_time(t)
        ));
    }
    lines.join("\n")
}
