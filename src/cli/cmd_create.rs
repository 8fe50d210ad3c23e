//! `hoard create`: borg 1.2's options, and its output — `--list` status lines, `--stats`
//! block, `--json`, `--progress` — around [`commands::create`].

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::cache::FilesCacheMode;
use crate::chunker::ChunkerParams;
use crate::commands::create::{
    self, ArchiveStats, ArchiveSummary, CreateOptions, MetaOptions, Reporter, StdinOptions,
};
use crate::commands::CommandError;
use crate::compress::Compression;
use crate::patterns::{create_matcher, PatternArgs, PatternMatcher};

use super::options::{argument_error, ArchiveOptions, CommonOptions};
use super::progress_view::{Display, View};
use super::{log, output, EXIT_SUCCESS, EXIT_WARNING};
use crate::progress::eta::{CreateEstimate, Previous};
use crate::progress::Unit;

/// `create`
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// do not create a backup archive
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// print statistics for the created archive
    #[arg(short = 's', long)]
    pub stats: bool,
    /// print statistics for the created archive, without the repository totals (faster)
    #[arg(long = "quick-stats")]
    pub quick_stats: bool,
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// only display items with the given status characters
    ///
    /// STATUSCHARS are the item flags described under "Item flags" below, e.g. --filter=AME.
    #[arg(long, value_name = "STATUSCHARS")]
    pub filter: Option<String>,
    /// output stats as JSON. Implies --stats.
    #[arg(long)]
    pub json: bool,
    /// experimental: do not synchronize the cache. Implies not using the files cache.
    #[arg(long = "no-cache-sync")]
    pub no_cache_sync: bool,
    /// use NAME in archive for stdin data
    #[arg(long = "stdin-name", value_name = "NAME", default_value = "stdin")]
    pub stdin_name: String,
    /// set user USER in archive for stdin data
    #[arg(long = "stdin-user", value_name = "USER")]
    pub stdin_user: Option<String>,
    /// set group GROUP in archive for stdin data
    #[arg(long = "stdin-group", value_name = "GROUP")]
    pub stdin_group: Option<String>,
    /// set mode to M in archive for stdin data
    #[arg(long = "stdin-mode", value_name = "M", default_value = "0660", value_parser = parse_octal_mode)]
    pub stdin_mode: u32,
    /// interpret PATH as command and store its stdout
    ///
    /// The first PATH is the command, the remaining PATHs its arguments (put "--" before them); if the command fails, no archive is made. See "Reading from stdin" below.
    #[arg(long = "content-from-command")]
    pub content_from_command: bool,
    /// read DELIM-separated list of paths to backup from stdin
    ///
    /// Exactly the given paths are stored: nothing is recursed into or excluded.
    #[arg(long = "paths-from-stdin")]
    pub paths_from_stdin: bool,
    /// interpret PATH as command and treat its output as --paths-from-stdin
    #[arg(long = "paths-from-command")]
    pub paths_from_command: bool,
    /// set path delimiter for --paths-from-stdin and --paths-from-command
    ///
    /// Escapes such as \0 and \t are understood (default: \n).
    #[arg(long = "paths-delimiter", value_name = "DELIM")]
    pub paths_delimiter: Option<String>,
    /// exclude paths matching PATTERN
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(
        short = 'e',
        long = "exclude",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    pub exclude: Vec<String>,
    /// read exclude patterns from EXCLUDEFILE, one per line
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "exclude-from", value_name = "EXCLUDEFILE")]
    pub exclude_from: Vec<String>,
    /// include/exclude paths matching PATTERN
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "pattern", value_name = "PATTERN", allow_hyphen_values = true)]
    pub pattern: Vec<String>,
    /// read include/exclude patterns from PATTERNFILE, one per line
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "patterns-from", value_name = "PATTERNFILE")]
    pub patterns_from: Vec<String>,
    /// exclude directories that contain a CACHEDIR.TAG file
    ///
    /// The tag must start with the signature of http://www.bford.info/cachedir/spec.html.
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
    /// exclude files flagged NODUMP
    #[arg(help_heading = "Include/Exclude options")]
    #[arg(long = "exclude-nodump")]
    pub exclude_nodump: bool,
    /// exclude dataless files (macOS; accepted and without effect elsewhere, as in borg)
    #[arg(long = "exclude-dataless")]
    pub exclude_dataless: bool,
    /// stay in the same file system and do not store mount points of other file systems
    ///
    /// This compares device numbers, which is not exactly the same as mount points (bind mounts, btrfs subvolumes): see the description below.
    #[arg(help_heading = "Filesystem options")]
    #[arg(short = 'x', long = "one-file-system")]
    pub one_file_system: bool,
    /// deprecated, use --numeric-ids instead
    #[arg(help_heading = "Filesystem options")]
    #[arg(long = "numeric-owner")]
    pub numeric_owner: bool,
    /// only store numeric user and group identifiers
    #[arg(help_heading = "Filesystem options")]
    #[arg(long = "numeric-ids")]
    pub numeric_ids: bool,
    /// do not store atime into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub noatime: bool,
    /// do store atime into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub atime: bool,
    /// do not store ctime into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub noctime: bool,
    /// do not store birthtime (creation date) into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub nobirthtime: bool,
    /// deprecated, use --noflags instead
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub nobsdflags: bool,
    /// do not read and store flags (e.g. NODUMP, IMMUTABLE) into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub noflags: bool,
    /// do not read and store ACLs into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub noacls: bool,
    /// do not read and store xattrs into archive
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub noxattrs: bool,
    /// detect sparse holes in input (supported only by fixed chunker)
    #[arg(help_heading = "Filesystem options")]
    #[arg(long)]
    pub sparse: bool,
    /// operate files cache in MODE. default: ctime,size,inode
    ///
    /// See "Files cache" below for the modes.
    #[arg(help_heading = "Filesystem options")]
    #[arg(
        long = "files-cache",
        value_name = "MODE",
        default_value = "ctime,size,inode"
    )]
    pub files_cache: String,
    /// specify how to detect if a file has changed during backup (ctime, mtime, disabled). default: ctime
    #[arg(long = "files-changed", value_name = "MODE", default_value = "ctime", value_parser = ["ctime", "mtime", "disabled"])]
    pub files_changed: String,
    /// open and read block and char device files as well as FIFOs as if they were regular files
    ///
    /// Symlinks pointing to such files are followed as well.
    #[arg(help_heading = "Filesystem options")]
    #[arg(long = "read-special")]
    pub read_special: bool,
    /// name of archive to create (must be also a valid directory name)
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
    /// paths to archive
    #[arg(value_name = "PATH")]
    pub paths: Vec<OsString>,
    /// (hoard run) also write the `--json` statistics document to FILE (mode 600)
    #[arg(long = "hoard-stats-file", value_name = "FILE", hide = true)]
    pub hoard_stats_file: Option<std::path::PathBuf>,
    /// archive options (flattened last: a group's heading carries over to the arguments after it)
    #[command(flatten)]
    pub archive: ArchiveOptions,
}

fn parse_octal_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("invalid literal for int() with base 8: '{s}'"))
}

/// borg's `--timestamp`: a file's mtime, or one of the UTC formats it accepts.
pub(crate) fn parse_timestamp(s: &str) -> Result<chrono::DateTime<chrono::Utc>, CommandError> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if let Ok(md) = std::fs::metadata(s) {
        use std::os::unix::fs::MetadataExt;
        if let Some(t) = Utc.timestamp_opt(md.mtime(), 0).single() {
            return Ok(t);
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S+00:00",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    for f in ["%Y-%m-%d", "%Y-%j"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            if let Some(t) = d.and_hms_opt(0, 0, 0) {
                return Ok(t.and_utc());
            }
        }
    }
    Err(argument_error(
        "--timestamp",
        format!("invalid timestamp value: '{s}'"),
    ))
}

fn default_name(id: u32, f: fn(u32) -> Option<Vec<u8>>) -> String {
    f(id)
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .unwrap_or_else(|| id.to_string())
}

/// Turns the parsed arguments into [`CreateOptions`].
fn options(
    a: &CreateArgs,
    common: &CommonOptions,
    archive: String,
) -> Result<CreateOptions, CommandError> {
    let compression: Compression = a
        .archive
        .compression
        .parse()
        .map_err(|e| argument_error("-C/--compression", e))?;
    let chunker_params: ChunkerParams = a
        .archive
        .chunker_params
        .parse()
        .map_err(|e| argument_error("--chunker-params", e))?;
    let files_cache: FilesCacheMode = a
        .files_cache
        .parse()
        .map_err(|e| argument_error("--files-cache", e))?;
    let files_cache = if a.no_cache_sync {
        "disabled".parse().unwrap_or(files_cache)
    } else {
        files_cache
    };
    let timestamp = a
        .archive
        .timestamp
        .as_deref()
        .map(parse_timestamp)
        .transpose()?;
    let workers = common.worker_count;
    Ok(CreateOptions {
        archive,
        paths: a.paths.clone(),
        compression,
        chunker_params,
        files_cache,
        meta: MetaOptions {
            numeric_ids: a.numeric_ids || a.numeric_owner,
            atime: a.atime,
            noctime: a.noctime,
            noflags: a.noflags || a.nobsdflags,
            noacls: a.noacls,
            noxattrs: a.noxattrs,
        },
        exclude_caches: a.exclude_caches,
        exclude_if_present: a.exclude_if_present.clone(),
        keep_exclude_tags: a.keep_exclude_tags,
        exclude_nodump: a.exclude_nodump,
        one_file_system: a.one_file_system,
        read_special: a.read_special,
        dry_run: a.dry_run,
        comment: a.archive.comment.clone(),
        timestamp,
        checkpoint_interval: a.archive.checkpoint_interval,
        stdin: StdinOptions {
            name: a.stdin_name.clone(),
            user: a
                .stdin_user
                .clone()
                .unwrap_or_else(|| default_name(0, crate::platform::users::uid2user)),
            group: a
                .stdin_group
                .clone()
                .unwrap_or_else(|| default_name(0, crate::platform::users::gid2group)),
            mode: a.stdin_mode,
        },
        cmdline: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        lock_wait: common.lock_wait,
        progress: common.progress,
        progress_sink: View::new(Display::for_process(common.progress), common.iec).sink(),
        content_from_command: a.content_from_command,
        paths_from_stdin: a.paths_from_stdin,
        paths_from_command: a.paths_from_command,
        sparse: a.sparse,
        paths_delimiter: a
            .paths_delimiter
            .as_deref()
            .map_or_else(|| b"\n".to_vec(), eval_escapes),
        workers,
        files_changed: a
            .files_changed
            .parse()
            .map_err(|e| argument_error("--files-changed", e))?,
    })
}

/// borg's `eval_escapes` for `--paths-delimiter` (`\\n`, `\\0`, `\\t`, …).
fn eval_escapes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

/// Runs `create` and prints its output; returns the exit code.
pub fn run(
    a: CreateArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    if a.stats && a.quick_stats {
        // borg's parser.error (exit code 2), before anything is opened
        return Err(CommandError::new(
            "--stats and --quick-stats are mutually exclusive.",
        ));
    }
    let text = crate::placeholders::replace_placeholders(&a.location)
        .map_err(|e| argument_error("ARCHIVE", e))?;
    let loc = crate::location::Location::parse_with(Some(&text), &common.repo)?;
    let Some(archive) = loc.archive.clone() else {
        return Err(argument_error(
            "ARCHIVE",
            format!("\"{}\": No archive specified", a.location),
        ));
    };
    let archive = crate::placeholders::validate_archive_name(&archive)
        .map_err(|e| argument_error("ARCHIVE", e))?;
    let (matcher, roots) = pattern_matcher(&a)?;
    let mut opts = options(&a, common, archive)?;
    opts.paths.extend(roots);
    if !a.paths.is_empty() && a.paths_from_stdin {
        return Err(CommandError::new(
            "Must not pass PATH with ``--paths-from-stdin``.",
        ));
    }
    if opts.paths.is_empty() {
        if a.content_from_command || a.paths_from_command {
            return Err(CommandError::new("No command given."));
        }
        if !a.paths_from_stdin {
            // borg's parser.error: root paths may also come from `R` lines of pattern files
            return Err(CommandError::new("Need at least one PATH argument."));
        }
    }
    if opts.dry_run && a.stats {
        log::warning("Ignoring --stats. It is not supported when using --dry-run.");
    }
    if opts.dry_run && a.quick_stats {
        log::warning("Ignoring --quick-stats. It is not supported when using --dry-run.");
    }
    let stats = (a.stats || a.quick_stats || a.json) && !opts.dry_run;
    // -p, or hoard's line on a terminal
    opts.progress = Display::for_process(common.progress).shown() && !opts.dry_run;
    log::info(&format!("Creating archive at \"{text}\""));
    let mut reporter = CliReporter::new(a.list, a.filter.clone(), opts.progress, common.iec);
    reporter.progress.interval_from(&common.repo.env);
    let outcome = create::run(&loc, &opts, matcher, &mut reporter, confirm)?;
    if let Some(summary) = &outcome.archive {
        if a.json {
            println!("{}", json_output(summary, common.iec, a.quick_stats));
        } else if stats {
            print_stats(summary, common.iec, a.quick_stats);
        }
        if let Some(path) = &a.hoard_stats_file {
            write_stats_file(path, &json_output(summary, common.iec, a.quick_stats));
        }
    }
    // borg 1.4's rule: one kind of warning gives its own (modern) code, several kinds the
    // generic 1; legacy mode makes every warning 1.
    let codes: Vec<i32> = outcome
        .warning_classes
        .iter()
        .map(|c| super::exit_codes::warning_code(c))
        .collect();
    Ok(if outcome.warning {
        let code = super::exit_codes::warnings_code(&codes).max(EXIT_WARNING);
        super::exit_codes::for_mode(code, common.exit_codes)
    } else {
        EXIT_SUCCESS
    })
}

/// Writes the statistics document for `hoard run` (a failure is a warning: the archive is
/// committed and stays good).
fn write_stats_file(path: &std::path::Path, json: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(json.as_bytes()));
    if let Err(e) = written {
        log::warning(&format!("{}: {e}", path.display()));
    }
}

/// The pattern options in command-line order (borg keeps them in one list), as borg's
/// `create` matcher; `R` lines of pattern files give extra root paths.
fn pattern_matcher(
    a: &CreateArgs,
) -> Result<(Option<PatternMatcher>, Vec<OsString>), CommandError> {
    let sub = super::command_tree()
        .try_get_matches_from(std::env::args_os())
        .ok();
    let create = sub.as_ref().and_then(|m| m.subcommand_matches("create"));
    let mut entries: Vec<(usize, &str, OsString)> = Vec::new();
    for (id, values) in [
        ("exclude", &a.exclude),
        ("exclude_from", &a.exclude_from),
        ("pattern", &a.pattern),
        ("patterns_from", &a.patterns_from),
    ] {
        let indices: Vec<usize> = create
            .and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default();
        for (n, v) in values.iter().enumerate() {
            let at = indices.get(n).copied().unwrap_or(usize::MAX);
            entries.push((at, id, OsString::from(v)));
        }
    }
    if entries.is_empty() {
        return Ok((None, Vec::new()));
    }
    entries.sort_by_key(|e| e.0);
    let mut args = PatternArgs::default();
    for (_, id, v) in entries {
        let result = match id {
            "exclude" => args.add_exclude(&v),
            "exclude_from" => args.add_exclude_from(std::path::Path::new(&v)),
            "pattern" => args.add_pattern(&v),
            _ => args.add_patterns_from(std::path::Path::new(&v)),
        };
        let flag = match id {
            "exclude" => "-e/--exclude",
            "exclude_from" => "--exclude-from",
            "pattern" => "--pattern",
            _ => "--patterns-from",
        };
        result.map_err(|e| argument_error(flag, e))?;
    }
    Ok((Some(create_matcher(args.rules)), args.roots))
}

/// Writes one line at INFO for an output logger that an option switched on (`--list`,
/// `--stats`): plain to stderr, or a `log_message` with `--log-json`.
fn output_line(logger: &str, line: &str) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    if log::json_enabled() {
        let v = json!({
            "type": "log_message",
            "time": now(),
            "message": line,
            "levelname": "INFO",
            "name": logger,
        });
        let _ = writeln!(err, "{v}");
    } else {
        log::clear_line(&mut err);
        let _ = writeln!(err, "{line}");
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Prints `--list` lines, warnings and progress.
pub(super) struct CliReporter {
    pub(super) list: bool,
    pub(super) filter: Option<String>,
    pub(super) progress: ArchiveProgress,
}

impl CliReporter {
    /// A reporter; progress shows when `progress` (`-p`, or hoard's line on a terminal) as
    /// [`Display::for_process`] decides.
    pub(super) fn new(list: bool, filter: Option<String>, progress: bool, iec: bool) -> Self {
        let display = if progress {
            Display::for_process(true)
        } else {
            Display::Off
        };
        CliReporter {
            list,
            filter,
            progress: ArchiveProgress::new(View::new(display, iec), iec),
        }
    }
}

impl Reporter for CliReporter {
    fn file_status(&mut self, status: char, path: &[u8]) {
        self.progress.status(status);
        if !self.list || self.filter.as_ref().is_some_and(|f| !f.contains(status)) {
            return;
        }
        let path = create::remove_surrogates(path);
        if log::json_enabled() {
            // json.dumps keeps borg's insertion order here: type, status, path.
            eprintln!(
                "{{\"type\": \"file_status\", \"status\": {}, \"path\": {}}}",
                output::json_line(&json!(status.to_string())),
                output::json_line(&json!(path))
            );
        } else {
            output_line("borg.output.list", &format!("{status} {path}"));
        }
    }

    fn warning(&mut self, message: &str) {
        log::warning(message);
    }

    fn warning_class(&mut self, class: &'static str, message: &str) {
        log::log(log::Level::Warning, "borg.archiver", Some(class), message);
    }

    fn info(&mut self, message: &str) {
        log::info(message);
    }

    fn previous(&mut self, previous: Previous) {
        self.progress.previous(previous);
    }

    fn item_added(&mut self, size: u64) {
        self.progress.item_added(size);
    }

    fn progress(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        self.progress.show(stats, path);
    }
}

/// The progress of an archive being written (`create`, `recreate`, `import-tar`): with `-p`
/// borg's `archive_progress` records or its `O C D N path` line (every 0.2 s, as borg), on a
/// terminal hoard's line with the total, rate and time to go. `create`'s total is estimated
/// from the previous archive ([`CreateEstimate`], shown with `~`); `recreate`'s is the source
/// archive's size. With `--log-json` the records carry hoard's figures as extra keys
/// (`estimated_original_size`, `estimated_nfiles`, `eta_seconds`, `bytes_per_second`).
pub(super) struct ArchiveProgress {
    view: Arc<View>,
    iec: bool,
    /// Seconds between borg's records (borg: 0.2).
    every: f64,
    last: Option<Instant>,
    estimate: Option<CreateEstimate>,
    /// A known total (original size), instead of an estimate.
    total: Option<u64>,
}

/// The operation number of an archive's progress in hoard's figures (borg's indicators
/// count from 1; `archive_progress` records have none).
const ARCHIVE_OPERATION: u32 = 0;

impl ArchiveProgress {
    /// Progress shown on `view`.
    pub(super) fn new(view: Arc<View>, iec: bool) -> Self {
        ArchiveProgress {
            view,
            iec,
            every: 0.2,
            last: None,
            estimate: None,
            total: None,
        }
    }

    /// Sets the seconds between borg's records from `HOARD_PROGRESS_INTERVAL` in `env` (a
    /// test knob: 0 writes a record after every item; borg's 0.2 otherwise).
    pub(super) fn interval_from(&mut self, env: &crate::options::Env) {
        if let Some(v) = env
            .nonempty("HOARD_PROGRESS_INTERVAL")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            self.every = v;
        }
    }

    /// The previous archive of the same name family: the estimate starts from it.
    pub(super) fn previous(&mut self, previous: Previous) {
        self.estimate = Some(CreateEstimate::new(previous));
    }

    /// A known total original size (`recreate`: the source archive's).
    pub(super) fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
        self.last = None;
    }

    /// A file's status letter (for the estimate).
    pub(super) fn status(&mut self, status: char) {
        if let Some(e) = self.estimate.as_mut() {
            e.status(status);
        }
    }

    /// An item added, its content `size` bytes (for the estimate).
    pub(super) fn item_added(&mut self, size: u64) {
        if let Some(e) = self.estimate.as_mut() {
            e.item(size);
        }
    }

    /// The estimated or known total: (original size, regular files; 0 when unknown).
    fn totals(&self, stats: &ArchiveStats) -> Option<(u64, u64)> {
        if let Some(t) = self.total {
            return Some((t.max(stats.osize), 0));
        }
        let e = self.estimate.as_ref()?.estimate(stats.osize, stats.nfiles);
        Some((e.bytes, e.files))
    }

    /// Progress after an item or a chunk (`path` None: the end).
    pub(super) fn show(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        let display = self.view.display();
        match display {
            Display::Off => return,
            Display::Terminal => return self.terminal(stats, path),
            Display::Borg | Display::Json => {}
        }
        let every = self.every;
        let due = self.last.is_none_or(|t| t.elapsed().as_secs_f64() >= every);
        if path.is_some() && !due {
            return;
        }
        self.last = Some(Instant::now());
        let size = |v: u64| output::format_file_size(v as i128, self.iec);
        let mut err = std::io::stderr().lock();
        if display == Display::Json {
            let line = match path {
                Some(p) => {
                    let totals = self.totals(stats);
                    let f = self.view.figures(
                        ARCHIVE_OPERATION,
                        stats.osize,
                        totals.map_or(0, |t| t.0),
                        Unit::Bytes,
                        None,
                    );
                    let known =
                        |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
                    format!(
                        "{{\"original_size\": {}, \"compressed_size\": {}, \"deduplicated_size\": {}, \"nfiles\": {}, \"path\": {}, \"time\": {}, \"type\": \"archive_progress\", \"finished\": false, \"estimated_original_size\": {}, \"estimated_nfiles\": {}{}}}",
                        stats.osize, stats.csize, stats.usize, stats.nfiles,
                        output::json_line(&json!(create::remove_surrogates(p))),
                        py_float(now()),
                        known(totals.map(|t| t.0)),
                        known(totals.map(|t| t.1).filter(|f| *f > 0)),
                        super::progress_view::json_extra(&f)
                    )
                }
                None => format!(
                    "{{\"time\": {}, \"type\": \"archive_progress\", \"finished\": true}}",
                    py_float(now())
                ),
            };
            let _ = writeln!(err, "{line}");
            return;
        }
        let columns = terminal_columns();
        let msg = match path {
            Some(p) => {
                let mut msg = format!(
                    "{} O {} C {} D {} N ",
                    size(stats.osize),
                    size(stats.csize),
                    size(stats.usize),
                    stats.nfiles
                );
                let mut space = columns.saturating_sub(msg.chars().count());
                if space < 12 {
                    msg.clear();
                    space = columns;
                }
                if space >= 8 {
                    msg.push_str(&ellipsis_truncate(&create::remove_surrogates(p), space));
                }
                msg
            }
            None => " ".repeat(columns),
        };
        let _ = write!(err, "{msg}\r");
        let _ = err.flush();
    }

    /// hoard's terminal line: share done, files, deduplicated size and path, then
    /// done/total, rate and time to go (`~` where the total is an estimate).
    fn terminal(&mut self, stats: &ArchiveStats, path: Option<&[u8]>) {
        let Some(p) = path else {
            return self.view.clear();
        };
        let totals = self.totals(stats);
        let total = totals.map_or(0, |t| t.0);
        let f = self
            .view
            .figures(ARCHIVE_OPERATION, stats.osize, total, Unit::Bytes, None);
        if !self.view.due() {
            return;
        }
        let approx = if self.total.is_none() { "~" } else { "" };
        let size = |v: u64| output::format_file_size(v as i128, self.iec);
        let share = match total {
            0 => String::new(),
            t => format!("{approx}{:.0}% ", stats.osize as f64 * 100.0 / t as f64),
        };
        let files = match totals {
            Some((_, n)) if n > 0 => format!("{}/~{n}", stats.nfiles),
            _ => stats.nfiles.to_string(),
        };
        let message = format!(
            "{share}{files} files, {} deduplicated, {}",
            size(stats.usize),
            create::remove_surrogates(p)
        );
        let figures =
            self.view
                .figures_text(stats.osize, total, Unit::Bytes, self.total.is_none(), &f);
        self.view.draw(&message, &figures, false);
    }
}

/// borg's `ellipsis_truncate`.
fn ellipsis_truncate(msg: &str, space: usize) -> String {
    let chars: Vec<char> = msg.chars().collect();
    if space < 8 {
        return format!("...{}", " ".repeat(space.saturating_sub(3)));
    }
    if space < 3 + chars.len() {
        let head: String = chars[..(space / 2 - 3).min(chars.len())].iter().collect();
        let tail_len = (space / 2 - 1).min(chars.len());
        let tail: String = chars[chars.len() - tail_len..].iter().collect();
        return format!("{head}...{tail}");
    }
    format!("{msg}{}", " ".repeat(space - chars.len()))
}

/// The terminal width (Python's `shutil.get_terminal_size`: `COLUMNS`, stdout, else 80).
fn terminal_columns() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return c;
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct; failure leaves it zeroed.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16.
pub fn py_float(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// borg's `format_timedelta`.
fn format_duration(seconds: f64) -> String {
    let s = seconds % 60.0;
    let m = (seconds / 60.0) as u64 % 60;
    let h = (seconds / 3600.0) as u64 % 24;
    let days = (seconds / 86400.0) as u64;
    let mut txt = format!("{s:.2} seconds");
    if m > 0 {
        txt = format!("{m} minutes {txt}");
    }
    if h > 0 {
        txt = format!("{h} hours {txt}");
    }
    if days > 0 {
        txt = format!("{days} days {txt}");
    }
    txt
}

fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%a, %Y-%m-%d %H:%M:%S")
        .to_string()
}

fn duration_secs(s: &ArchiveSummary) -> f64 {
    (s.end - s.start)
        .num_microseconds()
        .map_or(0.0, |us| us as f64 / 1e6)
}

/// The `--stats` block (borg's `str(archive)`, the stats header, `str(stats)`, `str(cache)`).
/// With `quick` (`--quick-stats`), the repository-wide part is left out.
pub(crate) fn print_stats(s: &ArchiveSummary, iec: bool, quick: bool) {
    let size = |v: u64| output::format_file_size(v as i128, iec);
    let dashes = "-".repeat(78);
    let c = &s.cache_stats;
    let text = format!(
        "{dashes}\nRepository: {}\nArchive name: {}\nArchive fingerprint: {}\nTime (start): {}\nTime (end):   {}\nDuration: {}\nNumber of files: {}\nUtilization of max. archive size: {:.0}%\n{dashes}\n                       Original size      Compressed size    Deduplicated size\n{:15} {:>20} {:>20} {:>20}\nAll archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}\n{dashes}",
        s.location,
        s.name,
        hex::encode(s.id),
        local_time(s.start),
        local_time(s.end),
        format_duration(duration_secs(s)),
        s.stats.nfiles,
        s.max_archive_size * 100.0,
        "This archive:",
        size(s.stats.osize),
        size(s.stats.csize),
        size(s.stats.usize),
        size(c.total_size),
        size(c.total_csize),
        size(c.unique_csize),
        c.total_unique_chunks,
        c.total_chunks,
    );
    let text = if quick {
        let cut = text.find("All archives:").unwrap_or(text.len());
        format!("{}{dashes}", &text[..cut])
    } else {
        text
    };
    for line in text.lines() {
        output_line("borg.output.stats", line);
    }
}

/// The `--json` document (borg's `basic_json_data` with `archive.info()`).
/// With `quick` (`--quick-stats`), there is no `cache` section.
pub(super) fn json_output(s: &ArchiveSummary, _iec: bool, quick: bool) -> String {
    let fmt_ts = |t: chrono::DateTime<chrono::Utc>| {
        output::json_timestamp_seconds(&crate::archive::manifest::format_timestamp(t))
    };
    let mut encryption = json!({"mode": s.key_type.mode_name()});
    if let crate::commands::common::KeyLocation::File(p) = &s.key_location {
        encryption["keyfile"] = json!(p.to_string_lossy());
    }
    let c = &s.cache_stats;
    let mut v = json!({
        "archive": {
            "command_line": s.command_line,
            "duration": "@@FLOAT_DURATION@@",
            "end": fmt_ts(s.end),
            "id": hex::encode(s.id),
            "limits": {"max_archive_size": "@@FLOAT_LIMIT@@"},
            "name": s.name,
            "start": fmt_ts(s.start),
            "stats": {
                "compressed_size": s.stats.csize,
                "deduplicated_size": s.stats.usize,
                "nfiles": s.stats.nfiles,
                "original_size": s.stats.osize,
            },
        },
        "cache": {
            "path": s.cache_path.to_string_lossy(),
            "stats": {
                "total_chunks": c.total_chunks,
                "total_csize": c.total_csize,
                "total_size": c.total_size,
                "total_unique_chunks": c.total_unique_chunks,
                "unique_csize": c.unique_csize,
                "unique_size": c.unique_size,
            },
        },
        "encryption": encryption,
        "repository": {
            "id": hex::encode(s.repository_id),
            "last_modified": output::json_timestamp_seconds(&s.last_modified),
            "location": s.location,
        },
    });
    if quick {
        if let Some(o) = v.as_object_mut() {
            o.remove("cache");
        }
    }
    output::json_pretty(&v)
        .replace("\"@@FLOAT_DURATION@@\"", &py_float(duration_secs(s)))
        .replace("\"@@FLOAT_LIMIT@@\"", &py_float(s.max_archive_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(py_float(2.1314662642534654e-05), "2.1314662642534654e-05");
        assert_eq!(py_float(0.002529), "0.002529");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(0.0001), "0.0001");
    }

    #[test]
    fn durations_like_borg() {
        assert_eq!(format_duration(0.0123), "0.01 seconds");
        assert_eq!(format_duration(125.5), "2 minutes 5.50 seconds");
    }
}
