//! `extract`: clap arguments and the printing side (list lines, warnings, progress).

use clap::Args;

use crate::commands::extract::{self, ExtractOptions};
use crate::commands::CommandError;

use super::extract_report::ExtractReporter;
use super::log;
use super::options::{CommonOptions, PatternOptions, Selector};
use super::progress_view::{Display, View};

/// `extract`
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// archive to extract
    #[arg(value_name = "ARCHIVE")]
    pub location: Option<String>,
    /// paths to extract; patterns are supported
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// do not actually change any files
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// only obey numeric user and group identifiers
    /// (--numeric-owner is the deprecated older name)
    #[arg(long = "numeric-ids", alias = "numeric-owner")]
    pub numeric_ids: bool,
    /// do not extract/set flags (e.g. NODUMP, IMMUTABLE); --nobsdflags is the deprecated older
    /// name
    #[arg(long = "noflags", alias = "nobsdflags")]
    pub noflags: bool,
    /// do not extract/set ACLs
    #[arg(long = "noacls")]
    pub noacls: bool,
    /// do not extract/set xattrs
    #[arg(long = "noxattrs")]
    pub noxattrs: bool,
    /// write all extracted data to stdout
    #[arg(long = "stdout")]
    pub stdout: bool,
    /// create holes in output sparse file from all-zero chunks
    #[arg(long = "sparse")]
    pub sparse: bool,
    /// Remove the specified number of leading path elements. Paths with fewer elements will be silently skipped.
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "strip-components", value_name = "NUMBER", default_value_t = 0)]
    pub strip_components: usize,
    /// exclusion options
    #[command(flatten)]
    pub patterns: PatternOptions,
}

/// Runs `extract` from parsed arguments; returns the exit code.
pub fn run(a: ExtractArgs, common: &CommonOptions) -> Result<i32, CommandError> {
    let loc = crate::location::Location::parse_with(a.location.as_deref(), &common.repo)?;
    let mut selector = Selector::new(&a.paths, &a.patterns)?;
    let display = Display::for_process(common.progress);
    let opts = ExtractOptions {
        strip_components: a.strip_components,
        dry_run: a.dry_run,
        stdout: a.stdout,
        sparse: a.sparse,
        numeric_ids: a.numeric_ids,
        noacls: a.noacls,
        noxattrs: a.noxattrs,
        noflags: a.noflags,
        consider_part_files: common.consider_part_files,
        // -p, or hoard's line on a terminal
        progress: display.shown(),
        lock: common.lock_spec(),
        workers: common.worker_count,
        index_keys: crate::commands::path_index::index_keys(
            &a.paths,
            !(a.patterns.exclude.is_empty()
                && a.patterns.exclude_from.is_empty()
                && a.patterns.pattern.is_empty()
                && a.patterns.patterns_from.is_empty()),
        ),
    };
    let mut reporter =
        ExtractReporter::new(a.list, "Extracting").with_view(View::new(display, common.iec));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let partial = selector.is_partial();
    let mut filter = |p: &[u8]| selector.matches(p);
    let outcome = extract::run(
        &loc,
        std::path::Path::new("."),
        &opts,
        &mut filter,
        partial,
        &mut reporter,
        &mut out,
        &super::confirm,
    )?;
    // borg 1.4's rule for the exit code: one kind of warning gives its class's (modern) code,
    // several kinds the generic 1.
    let mut codes: Vec<i32> = outcome
        .warning_classes
        .iter()
        .map(|c| super::exit_codes::warning_code(c))
        .collect();
    if outcome.warnings && codes.is_empty() {
        codes.push(super::EXIT_WARNING);
    }
    for w in selector.unmatched_warnings() {
        log::log(
            log::Level::Warning,
            "borg.archiver",
            Some("IncludePatternNeverMatchedWarning"),
            &w,
        );
        codes.push(super::exit_codes::warning_code(
            "IncludePatternNeverMatchedWarning",
        ));
    }
    Ok(super::exit_codes::for_mode(
        super::exit_codes::warnings_code(&codes),
        common.exit_codes,
    ))
}
