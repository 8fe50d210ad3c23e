//! `hoard recreate [REPOSITORY_OR_ARCHIVE] [PATH...]`: borg 1.4.5's options and output
//! (`--list` status lines, `Processing NAME`, `--stats` block at INFO) around
//! [`commands::recreate`].

use std::ffi::{OsStr, OsString};

use clap::Args;

use crate::chunker::ChunkerParams;
use crate::commands::create::{ArchiveStats, ArchiveSummary};
use crate::commands::recreate::{self, Recompress, RecreateOptions, Reporter};
use crate::commands::CommandError;
use crate::compress::Compression;

use super::archive_report::{list_status, print_stats, ArchiveProgress};
use super::options::PatternOptions;
use super::options::{argument_error, parse_timestamp, CommonOptions};
use super::progress_view::{Display, View};
use super::{log, EXIT_SUCCESS};

/// `recreate`
#[derive(Debug, Args)]
pub struct RecreateArgs {
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// only display items with the given status characters (listed in borg create --help)
    #[arg(long, value_name = "STATUSCHARS")]
    pub filter: Option<String>,
    /// do not change anything
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// print statistics at end
    #[arg(short = 's', long)]
    pub stats: bool,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
    /// exclude directories that contain a CACHEDIR.TAG file (http://www.bford.info/cachedir/spec.html)
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "exclude-caches")]
    pub exclude_caches: bool,
    /// exclude directories that are tagged by containing a filesystem object with the given NAME
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "exclude-if-present", value_name = "NAME")]
    pub exclude_if_present: Vec<OsString>,
    /// if tag objects are specified with --exclude-if-present, don't omit the tag objects themselves
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "keep-exclude-tags")]
    pub keep_exclude_tags: bool,
    /// create a new archive with the name ARCHIVE, do not replace existing archive (only applies for a single archive)
    #[arg(help_heading = "Archive options")]
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// write checkpoint every SECONDS seconds (Default: 1800)
    #[arg(help_heading = "Archive options")]
    #[arg(
        short = 'c',
        long = "checkpoint-interval",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub checkpoint_interval: u64,
    /// add a comment text to the archive
    #[arg(help_heading = "Archive options")]
    #[arg(long, value_name = "COMMENT", value_parser = super::options::placeholder_spec)]
    pub comment: Option<String>,
    /// manually specify the archive creation date/time (UTC, yyyy-mm-ddThh:mm:ss format). alternatively, give a reference file/directory.
    #[arg(help_heading = "Archive options")]
    #[arg(long, value_name = "TIMESTAMP")]
    pub timestamp: Option<String>,
    /// select compression algorithm, see the output of the "borg help compression" command for details.
    #[arg(help_heading = "Archive options")]
    #[arg(short = 'C', long, value_name = "COMPRESSION", default_value = "lz4")]
    pub compression: String,
    /// recompress data chunks according to MODE and --compression (if-different, always, never; if no MODE is given, if-different)
    #[arg(help_heading = "Archive options")]
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        default_missing_value = "if-different",
        value_parser = ["never", "if-different", "always"]
    )]
    pub recompress: Option<String>,
    /// rechunk using given chunker parameters (ALGO, CHUNK_MIN_EXP, CHUNK_MAX_EXP, HASH_MASK_BITS, HASH_WINDOW_SIZE) or `default` to use the chunker defaults. default: do not rechunk
    #[arg(help_heading = "Archive options")]
    #[arg(long = "chunker-params", value_name = "PARAMS")]
    pub chunker_params: Option<String>,
    /// repository or archive to recreate
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// paths to recreate; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Runs `recreate` and prints its output; returns the exit code.
pub fn run(
    a: RecreateArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    let compression: Compression = a
        .compression
        .parse()
        .map_err(|e| argument_error("-C/--compression", e))?;
    let chunker_params = a
        .chunker_params
        .as_deref()
        .map(str::parse::<ChunkerParams>)
        .transpose()
        .map_err(|e| argument_error("--chunker-params", e))?;
    let recompress = match a.recompress.as_deref() {
        Some("if-different") => Recompress::IfDifferent,
        Some("always") => Recompress::Always,
        _ => Recompress::Never,
    };
    let target = a
        .target
        .as_deref()
        .map(|t| {
            crate::placeholders::validate_archive_name(t).map_err(|e| argument_error("--target", e))
        })
        .transpose()?;
    let timestamp = a.timestamp.as_deref().map(parse_timestamp).transpose()?;
    let loc = crate::location::Location::parse_with(a.location.as_deref(), &common.repo)?;
    let matcher = build_matcher(&a)?;
    let opts = RecreateOptions {
        target,
        comment: a.comment.clone(),
        timestamp,
        compression,
        recompress,
        chunker_params,
        exclude_caches: a.exclude_caches,
        exclude_if_present: a
            .exclude_if_present
            .iter()
            .map(|n| std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()).to_vec())
            .collect(),
        keep_exclude_tags: a.keep_exclude_tags,
        dry_run: a.dry_run,
        cmdline: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        lock_wait: common.lock_wait,
        workers: common.worker_count,
    };
    let _ = a.checkpoint_interval;
    let view = View::new(Display::for_process(common.progress), common.iec);
    let mut reporter = CliReporter {
        list: a.list,
        filter: a.filter.clone(),
        stats: a.stats,
        iec: common.iec,
        progress: ArchiveProgress::new(view, common.iec),
    };
    reporter.progress.interval_from(&common.repo.env);
    recreate::run(&loc, &opts, matcher, &mut reporter, confirm)?;
    Ok(EXIT_SUCCESS)
}

/// borg's `build_matcher(args.patterns, args.paths)`; `R` lines of pattern files count as
/// PATHs.
fn build_matcher(a: &RecreateArgs) -> Result<crate::patterns::PatternMatcher, CommandError> {
    let p = &a.patterns;
    let mut args = crate::patterns::PatternArgs::default();
    let perr = |flag: &'static str| move |e: crate::patterns::PatternError| argument_error(flag, e);
    for e in &p.exclude {
        args.add_exclude(OsStr::new(e))
            .map_err(perr("-e/--exclude"))?;
    }
    for f in &p.exclude_from {
        args.add_exclude_from(std::path::Path::new(f))
            .map_err(perr("--exclude-from"))?;
    }
    for l in &p.pattern {
        args.add_pattern(OsStr::new(l)).map_err(perr("--pattern"))?;
    }
    for f in &p.patterns_from {
        args.add_patterns_from(std::path::Path::new(f))
            .map_err(perr("--patterns-from"))?;
    }
    let mut include: Vec<OsString> = a.paths.iter().map(OsString::from).collect();
    include.extend(args.roots.iter().cloned());
    crate::patterns::build_matcher(args.rules, &include).map_err(perr("PATH"))
}

/// Prints `recreate`'s output as borg does.
struct CliReporter {
    list: bool,
    filter: Option<String>,
    stats: bool,
    iec: bool,
    /// `create`'s progress display, against the source archive's size.
    progress: ArchiveProgress,
}

impl Reporter for CliReporter {
    fn file_status(&mut self, status: char, path: &[u8]) {
        list_status(self.list, self.filter.as_deref(), status, path);
    }

    fn processing(&mut self, name: &[u8]) {
        println!(
            "Processing {}",
            crate::commands::create::remove_surrogates(name)
        );
    }

    fn skipped(&mut self, name: &[u8]) {
        log::log(
            log::Level::Info,
            "borg.archiver",
            None,
            &format!(
                "Skipped archive {}: Nothing to do. Archive was not processed.",
                crate::commands::create::remove_surrogates(name)
            ),
        );
    }

    fn debug(&mut self, message: &str) {
        log::log(log::Level::Debug, "borg.archive", None, message);
    }

    fn source_size(&mut self, size: Option<u64>) {
        self.progress.set_total(size);
    }

    fn progress(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        self.progress.show(stats, path);
    }

    fn archive_done(&mut self, summary: &ArchiveSummary) {
        // borg logs the block with the archive module's logger at INFO (shown with -v).
        if self.stats && log::enabled(log::Level::Info) {
            print_stats(summary, self.iec, false);
        }
    }
}
