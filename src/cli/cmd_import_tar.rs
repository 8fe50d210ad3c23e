//! `import-tar`: clap arguments, the input file and `--tar-filter` process, `--list`,
//! `--stats` / `--quick-stats` / `--json` output, around [`commands::import_tar`].

use std::process::{Command, Stdio};

use clap::Args;

use crate::cache::FilesCacheMode;
use crate::chunker::ChunkerParams;
use crate::commands::create::{CreateOptions, MetaOptions, StdinOptions};
use crate::commands::import_tar;
use crate::commands::CommandError;
use crate::compress::Compression;

use super::archive_report::{json_output, print_stats, ArchiveReporter};
use super::options::CommonOptions;
use super::options::{
    argument_error, new_archive, parse_timestamp, stats_exclusive, ArchiveOptions,
};
use super::progress_view::{Display, View};
use super::{EXIT_SUCCESS, EXIT_WARNING};

/// `import-tar`
#[derive(Debug, Args)]
pub struct ImportTarArgs {
    /// filter program to pipe data through
    #[arg(long = "tar-filter", value_name = "TAR_FILTER", default_value = "auto")]
    pub tar_filter: String,
    /// print statistics for the created archive
    #[arg(short = 's', long)]
    pub stats: bool,
    /// print only archive statistics, skipping repository-wide statistics
    #[arg(long = "quick-stats")]
    pub quick_stats: bool,
    /// output verbose list of items (files, dirs, ...)
    #[arg(long = "list")]
    pub list: bool,
    /// only display items with the given status characters
    #[arg(long, value_name = "STATUSCHARS")]
    pub filter: Option<String>,
    /// output stats as JSON (implies --stats)
    #[arg(long)]
    pub json: bool,
    /// ignore zero-filled blocks in the input tarball
    #[arg(long = "ignore-zeros")]
    pub ignore_zeros: bool,
    /// name of archive to create (must be also a valid directory name)
    #[arg(value_name = "ARCHIVE")]
    pub location: String,
    /// input tar file. "-" to read from stdin instead.
    #[arg(value_name = "TARFILE")]
    pub tarfile: String,
    /// archive options, in borg's import-tar wording (see `Command::ImportTar`); flattened last:
    /// a group's heading carries over to the arguments after it
    #[command(flatten)]
    pub archive: ArchiveOptions,
}

/// borg's `get_tar_filter(fname, decompress=True)`.
pub fn auto_decompress_filter(file: &str) -> Option<String> {
    crate::commands::export_tar::auto_filter(file).map(|c| format!("{c} -d"))
}

fn options(
    a: &ImportTarArgs,
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
    let files_cache: FilesCacheMode = "disabled"
        .parse()
        .map_err(|e| CommandError::new(format!("files cache: {e}")))?;
    Ok(CreateOptions {
        archive,
        paths: Vec::new(),
        compression,
        chunker_params,
        files_cache,
        meta: MetaOptions::default(),
        exclude_caches: false,
        exclude_if_present: Vec::new(),
        keep_exclude_tags: false,
        exclude_nodump: false,
        one_file_system: false,
        read_special: false,
        dry_run: false,
        comment: a.archive.comment.clone(),
        timestamp: a
            .archive
            .timestamp
            .as_deref()
            .map(parse_timestamp)
            .transpose()?,
        checkpoint_interval: a.archive.checkpoint_interval,
        stdin: StdinOptions {
            name: String::new(),
            user: String::new(),
            group: String::new(),
            mode: 0,
        },
        cmdline: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        lock_wait: common.lock_wait,
        // -p, or hoard's line on a terminal (see `progress_view`)
        progress: Display::for_process(common.progress).shown(),
        progress_sink: View::new(Display::for_process(common.progress), common.iec).sink(),
        content_from_command: false,
        paths_from_stdin: false,
        paths_from_command: false,
        sparse: false,
        paths_delimiter: b"\n".to_vec(),
        // members arrive one after another from one stream
        workers: 1,
        files_changed: Default::default(),
    })
}

/// Runs `import-tar` and prints its output; returns the exit code.
pub fn run(
    a: ImportTarArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    stats_exclusive(a.stats, a.quick_stats)?;
    let (_, loc, archive) = new_archive(&a.location, common)?;
    let opts = options(&a, common, archive)?;
    let filter = if a.tar_filter == "auto" {
        auto_decompress_filter(&a.tarfile)
    } else {
        Some(a.tar_filter.clone()).filter(|f| !f.is_empty())
    };
    let mut reporter = ArchiveReporter::new(a.list, a.filter.clone(), opts.progress, common.iec);
    let input: Box<dyn std::io::Read> = if a.tarfile == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&a.tarfile)
                .map_err(|e| CommandError::new(format!("{}: {e}", a.tarfile)))?,
        )
    };
    let outcome = match filter {
        None => import_tar::run(
            &loc,
            &opts,
            std::io::BufReader::with_capacity(1 << 20, input),
            a.ignore_zeros,
            &mut reporter,
            confirm,
        )?,
        Some(cmd) => {
            let argv = shell_words::split(&cmd)
                .map_err(|e| CommandError::new(format!("invalid --tar-filter {cmd:?}: {e}")))?;
            let (prog, args) = argv
                .split_first()
                .ok_or_else(|| CommandError::new("empty --tar-filter"))?;
            let stdin = if a.tarfile == "-" {
                Stdio::inherit()
            } else {
                Stdio::from(
                    std::fs::File::open(&a.tarfile)
                        .map_err(|e| CommandError::new(format!("{}: {e}", a.tarfile)))?,
                )
            };
            drop(input);
            let mut child = Command::new(prog)
                .args(args)
                .stdin(stdin)
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| CommandError::new(format!("filter {cmd} failed to start: {e}")))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| CommandError::new("filter stdout"))?;
            let res = import_tar::run(
                &loc,
                &opts,
                std::io::BufReader::with_capacity(1 << 20, stdout),
                a.ignore_zeros,
                &mut reporter,
                confirm,
            );
            if res.is_err() {
                let _ = child.kill();
            }
            let status = child.wait()?;
            let outcome = res?;
            if !status.success() {
                return Err(CommandError::new(format!(
                    "filter {cmd} failed, rc={}",
                    status.code().unwrap_or(-1)
                )));
            }
            outcome
        }
    };
    if let Some(summary) = &outcome.archive {
        if a.json {
            println!("{}", json_output(summary, common.iec, a.quick_stats));
        } else if a.stats || a.quick_stats {
            print_stats(summary, common.iec, a.quick_stats);
        }
    }
    Ok(if outcome.warning {
        EXIT_WARNING
    } else {
        EXIT_SUCCESS
    })
}
