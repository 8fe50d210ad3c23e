//! `hoard create`: borg 1.2's options, and its output — `--list` status lines, `--stats`
//! block, `--json`, `--progress` — around [`commands::create`].

use std::ffi::OsString;
use std::io::Write;

use clap::Args;

use crate::cache::FilesCacheMode;
use crate::chunker::ChunkerParams;
use crate::commands::create::{self, CreateOptions, MetaOptions, StdinOptions};
use crate::commands::CommandError;
use crate::compress::Compression;
use crate::patterns::{create_matcher, PatternArgs, PatternMatcher};

use super::archive_report::{json_output, print_stats, ArchiveReporter};
use super::options::{
    argument_error, new_archive, parse_timestamp, stats_exclusive, ArchiveOptions, CommonOptions,
};
use super::progress_view::{Display, View};
use super::{log, EXIT_SUCCESS, EXIT_WARNING};

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
    stats_exclusive(a.stats, a.quick_stats)?;
    let (text, loc, archive) = new_archive(&a.location, common)?;
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
    let mut reporter = ArchiveReporter::new(a.list, a.filter.clone(), opts.progress, common.iec);
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
