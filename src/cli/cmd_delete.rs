//! `hoard delete`: clap arguments and borg's messages for deleting archives or a repository.

use clap::{ArgAction, Args};

use crate::commands::delete::{self, DeleteEvent, DeleteOptions, Targets};
use crate::commands::select::Selection;
use crate::commands::CommandError;

use super::options::{ArchiveFilter, CommonOptions};
use super::progress_view::{Display, View};
use super::{log, output};

/// `delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// repository or archive to delete
    #[arg(value_name = "REPOSITORY_OR_ARCHIVE")]
    pub location: Option<String>,
    /// archives to delete
    #[arg(value_name = "ARCHIVE")]
    pub archives: Vec<String>,
    /// do not change repository
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// output verbose list of archives
    #[arg(long = "list")]
    pub output_list: bool,
    /// print statistics for the deleted archive
    #[arg(short = 's', long)]
    pub stats: bool,
    /// print statistics for the deleted archive, without the repository totals (faster)
    #[arg(long = "quick-stats")]
    pub quick_stats: bool,
    /// delete only the local cache for the given repository
    #[arg(long = "cache-only")]
    pub cache_only: bool,
    /// force deletion of corrupted archives, use `--force --force` in case `--force` does not work.
    #[arg(long = "force", action = ArgAction::Count)]
    pub force: u8,
    /// keep the local security info when deleting a repository
    #[arg(long = "keep-security-info")]
    pub keep_security_info: bool,
    /// work slower, but using less space
    #[arg(long = "save-space")]
    pub save_space: bool,
    /// write checkpoint every SECONDS seconds (Default: 1800)
    #[arg(
        short = 'c',
        long = "checkpoint-interval",
        value_name = "SECONDS",
        default_value_t = 1800
    )]
    pub checkpoint_interval: u64,
    /// archive selection
    #[command(flatten)]
    pub filter: ArchiveFilter,
}

/// Runs `delete`.
pub fn run(
    a: DeleteArgs,
    common: &CommonOptions,
    confirm: crate::security::Confirm<'_>,
) -> Result<i32, CommandError> {
    super::options::stats_exclusive(a.stats, a.quick_stats)?;
    if a.dry_run && a.stats {
        log::warning("Ignoring --stats. It is not supported when using --dry-run.");
    }
    if a.dry_run && a.quick_stats {
        log::warning("Ignoring --quick-stats. It is not supported when using --dry-run.");
    }
    let loc = crate::location::Location::parse_with(a.location.as_deref(), &common.repo)?;
    let sel = Selection::new(
        a.filter.prefix.clone(),
        a.filter.glob_archives.clone(),
        &a.filter.sort_by,
        a.filter.first,
        a.filter.last,
        true,
    )?;
    let opts = DeleteOptions {
        dry_run: a.dry_run,
        forced: a.force,
        consider_part_files: common.consider_part_files,
        keep_security_info: a.keep_security_info,
        cache_only: a.cache_only,
        output_list: a.output_list,
        lock_wait: common.lock_wait,
        progress: View::new(Display::for_process(common.progress), common.iec).sink(),
    };
    let explicit = loc.archive.is_some() || !a.archives.is_empty();
    if sel.filters() && explicit {
        return Err(CommandError::new(
            "Mixing archive filters and explicitly named archives is not supported.",
        ));
    }
    if !sel.filters() && !explicit {
        let mut ask =
            |text: &str| super::ask_yes(text, "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", &["YES"]);
        let mut info = |m: &str| log::info(m);
        let done = delete::delete_repository(&loc, &opts, confirm, &mut ask, &mut info)?;
        return if done {
            Ok(super::EXIT_SUCCESS)
        } else {
            Err(super::cancelled_by_user())
        };
    }
    let targets = if explicit {
        let mut names: Vec<Vec<u8>> = Vec::new();
        if let Some(n) = &loc.archive {
            names.push(n.as_bytes().to_vec());
        }
        names.extend(a.archives.iter().map(|n| n.as_bytes().to_vec()));
        Targets::Names(names)
    } else {
        Targets::Selection(sel)
    };
    let dry_run = a.dry_run;
    let forced2 = a.force >= 2;
    let output_list = a.output_list;
    let mut report = |e: DeleteEvent| match e {
        DeleteEvent::Deleting(line, i, n) => {
            if output_list {
                let msg = match (forced2, dry_run) {
                    (true, true) | (false, true) => {
                        if forced2 {
                            format!("Would delete: {line} ({i}/{n})")
                        } else {
                            format!("Would delete archive: {line} ({i}/{n})")
                        }
                    }
                    (true, false) => format!("Deleted archive: {line} ({i}/{n})"),
                    (false, false) => format!("Deleting archive: {line} ({i}/{n})"),
                };
                log::output_line("borg.output.list", &msg, "\n");
            }
        }
        DeleteEvent::NotFound(name, i, n) => {
            log::warning(&format!("Archive {name} not found ({i}/{n})."));
        }
        DeleteEvent::CorruptedArchive => {
            log::warning("forced deletion succeeded, but the deleted archive was corrupted.");
            log::warning("borg check --repair is required to free all space.");
        }
    };
    let outcome = delete::delete_archives(&loc, &targets, &opts, confirm, &mut report)?;
    if forced2 {
        if dry_run {
            log::info("Finished dry-run.");
        } else if outcome.deleted {
            log::warning("Done. Run \"borg check --repair\" to clean up the mess.");
        } else {
            log::warning("Aborted.");
        }
        return Ok(if outcome.warning {
            super::EXIT_WARNING
        } else {
            super::EXIT_SUCCESS
        });
    }
    if (a.stats || a.quick_stats) && !dry_run {
        let size = |v: i128| output::format_file_size(v, common.iec);
        let s = outcome.stats;
        let x = outcome.index;
        let dashes = "-".repeat(78);
        let mut text = format!(
            "{dashes}\n                       Original size      Compressed size    Deduplicated size\n{label:15} {:>20} {:>20} {:>20}",
            size(-(s.osize as i128)),
            size(-(s.csize as i128)),
            size(-(s.ucsize as i128)),
            label = "Deleted data:",
        );
        if !a.quick_stats {
            // the repository totals (borg's `str(cache)`), left out by --quick-stats
            text.push_str(&format!(
                "\nAll archives:   {:>20} {:>20} {:>20}\n\n                       Unique chunks         Total chunks\nChunk index:    {:>20} {:>20}",
                size(x.total_size as i128),
                size(x.total_csize as i128),
                size(x.unique_csize as i128),
                x.total_unique_chunks,
                x.total_chunks,
            ));
        }
        text.push_str(&format!("\n{dashes}"));
        log::output_line("borg.output.stats", &text, "\n");
    }
    Ok(super::EXIT_SUCCESS)
}
